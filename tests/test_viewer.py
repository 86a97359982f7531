"""``segmentdreamer view``: the web viewer served on loopback, loaded in headless Chromium (software WebGL)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import yaml

from segmentdreamer.scene.gaussians import save_ply
from segmentdreamer.scene.known_scenes import build_scene
from segmentdreamer.viewer import ViewedRun, panel_markdown, splat_arrays

from .browser import CHROMIUM, browser_page

PROMPT = "a totem with a red head and a blue base"


@pytest.fixture
def run_folder(tmp_path):
    """A finished run's folder as the workflow leaves it: the Gaussians, the run config and a CLIP score."""
    save_ply(build_scene("totem", points_per_part=200), tmp_path / "gaussians.ply")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"prompt": PROMPT, "method": "sds", "iterations": 200}), encoding="utf-8")
    (tmp_path / "clip.json").write_text(json.dumps({"mean": 27.25}), encoding="utf-8")
    return tmp_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_panel_names_the_prompt_and_scores_and_covariances_are_the_gaussians(run_folder):
    run = ViewedRun.find(run_folder)
    text = panel_markdown(run)
    assert PROMPT in text and "CLIP-L: 27.25" in text and "Gaussians: 1,200" in text and "method: sds" in text
    arrays = splat_arrays(build_scene("totem", points_per_part=200))
    np.testing.assert_allclose(arrays["covariances"][0], np.eye(3) * 0.04**2, rtol=1e-5)  # isotropic 0.04, identity rotation
    assert arrays["opacities"].shape == (1200, 1) and np.allclose(arrays["opacities"], 0.95)
    with pytest.raises(FileNotFoundError, match="no gaussians.ply"):
        ViewedRun.find(run_folder / "missing")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it: .ci/run)")
def test_the_viewer_shows_the_gaussians_and_the_prompt_in_chromium_and_stops_by_itself(run_folder, tmp_path):
    import imageio.v3 as iio

    port, timeout = free_port(), 35.0
    server = subprocess.Popen([sys.executable, "-m", "segmentdreamer.cli", "view", str(run_folder), "--port", str(port),
                               "--timeout", str(timeout), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() - started < 30, server.communicate()[0]
                time.sleep(0.3)
        with browser_page(width=1200, height=800, webgl=True) as page:
            page.goto(url)
            page.get_by_text(f"Prompt: {PROMPT}").wait_for(timeout=20_000)
            page.locator("canvas").first.wait_for(timeout=20_000)
            page.wait_for_timeout(4000)  # splats sorted and drawn
            shot = tmp_path / "viewer.png"
            print("browser ready after", round(time.monotonic() - started, 1), "s")
            page.screenshot(path=str(shot))
            page.get_by_text("Render this view with the trainer's renderer").click()
            page.locator("img").last.wait_for(timeout=30_000)
            rendered = page.locator("img").last.evaluate("image => image.complete ? image.naturalWidth : 0")
        pixels = iio.imread(shot)[..., :3].astype(int)
        red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
        blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 110) & (pixels[..., 1] < 130)
        assert red.sum() > 200 and blue.sum() > 200, (red.sum(), blue.sum())  # the head and the base are on screen
        assert rendered == 512
        output, _ = server.communicate(timeout=timeout + 30)  # stops by itself at --timeout
        assert server.returncode == 0, output
        assert time.monotonic() - started < timeout + 30
    finally:
        if server.poll() is None:
            server.kill()
