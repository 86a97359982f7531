"""The known-answer demo (workflow/demo.yaml) through the real workflow: every method from a grey sphere,
scored against the ground truth; its report in headless Chromium; a job killed with SIGKILL and resumed.

Measured on the 2-core CI machine (200 iterations, 2 views at 64 px, 2000 Gaussians, the 120-view ring at
64 px; docs/method.md, "Known-answer distillation"): see MEASURED, the mean and spread over three seeds; seed 0's
PSNR must lie within 3 standard deviations (+ 0.5 dB) of the mean; the start (the grey sphere) is 13.1 dB.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from .browser import CHROMIUM, browser_page, open_report_entry
from .test_workflow import ROOT, snakemake

pytestmark = pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                                reason="snakemake is not installed beside this Python")

MEASURED = {"DreamFusion (SDS)": (38.13, 0.58), "LucidDreamer (ISM)": (37.34, 0.67), "Connect3D (GCS)": (30.77, 0.79),
            "SegmentDreamer (SCTD): sctd_no_noise_offset": (26.22, 0.07), "SegmentDreamer (SCTD)": (22.51, 3.68),
            "Consistent3D (CDS)": (12.67, 0.05)}
"""Ring PSNR (dB) per method label of the demo table: (mean, sample std) over seeds 0, 1, 2, measured on the CI
machine (docs/method.md, "The demo"). The test runs seed 0 only: three seeds would add ~9 minutes to CI."""
START_PSNR = 13.1


def margin(std: float) -> float:
    """How far one seed's PSNR may lie from the mean of three: 3 standard deviations of the measured spread, plus
    0.5 dB for a standard deviation estimated from three seeds."""
    return 3.0 * std + 0.5


def demo_config(tmp_path: Path, **train) -> Path:
    """workflow/demo.yaml with ``train`` keys replaced, written next to the test's results."""
    config = yaml.safe_load((ROOT / "workflow" / "demo.yaml").read_text(encoding="utf-8"))
    config["train"].update(train)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_demo(config: Path, results: Path, *extra: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    return snakemake("--configfile", str(config), "--cores", "2", "demo", "--config",
                     f'pathvars={{"results": "{results}"}}', *extra, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("demo") / "results"
    run = run_demo(ROOT / "workflow" / "demo.yaml", results)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return results


@pytest.mark.slow
def test_every_method_recovers_the_ground_truth_in_the_demo(demo_run):
    table = pd.read_csv(demo_run / "known_answer" / "demo.csv")
    psnr = dict(zip(table["method"], table["psnr"]))
    print(json.dumps({m: round(v, 2) for m, v in psnr.items()}))
    assert set(psnr) == set(MEASURED)
    for method, (mean, std) in MEASURED.items():
        assert abs(psnr[method] - mean) <= margin(std), (method, psnr[method], mean, margin(std))
    assert table["start_psnr"].round(1).eq(START_PSNR).all()
    for method in ("DreamFusion (SDS)", "LucidDreamer (ISM)", "Connect3D (GCS)", "SegmentDreamer (SCTD): sctd_no_noise_offset"):
        # the floor: 20 dB from a 13 dB start
        assert psnr[method] >= 20.0
    assert "| DreamFusion (SDS) |" in (demo_run / "known_answer" / "demo.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_demo_draws_learning_curves_and_side_by_side_turntables(demo_run):
    import imageio.v3 as iio

    curve = iio.imread(demo_run / "known_answer" / "demo_curve.png")
    assert curve.shape[0] > 200 and curve[..., :3].std() > 20  # a drawn plot, not an empty canvas
    run = demo_run / "runs" / "demo" / "sds" / "totem" / "seed0"
    progress = [json.loads(line) for line in (run / "progress.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["iteration"] for p in progress] == list(range(0, 201, 25))
    assert progress[0]["psnr"] < progress[-1]["psnr"] - 15  # SDS climbs from the sphere to the scene
    frames = iio.imread(run / "ground_truth_vs_learned.gif", index=None)
    assert frames.shape[0] == 40 and frames.shape[2] == 2 * frames.shape[1]  # every 3rd ring view: ground truth | learned
    left, right = frames[..., : frames.shape[1], :].astype(float), frames[..., frames.shape[1]:, :].astype(float)
    assert np.abs(left - right).mean() < 8  # SDS's learned turntable looks like the ground truth's


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it: .ci/run)")
def test_the_demo_report_shows_table_curves_and_turntables_in_chromium(demo_run):
    """``--report``, opened in headless Chromium: Results -> Known answer -> Overview shows the table with every
    method, the learning curves and each method's turntable (decoded images), and the screenshot is not blank."""
    import imageio.v3 as iio

    report = demo_run / "report.html"
    made = snakemake("demo", "--configfile", "workflow/demo.yaml", "--config", f'pathvars={{"results": "{demo_run}"}}',
                     "--report", str(report))
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    with browser_page() as page:
        frame = open_report_entry(page, report, "Known answer", "Overview", "table, curves, turntables")
        table = frame.locator("table#known-answer").inner_text()
        assert all(method in table for method in MEASURED), table
        frame.locator("img#curve").wait_for()
        widths = frame.locator("#turntables img").evaluate_all("images => images.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == len(MEASURED) and all(w == 128 for w in widths), widths  # 64 px ground truth | 64 px learned
        shot = demo_run / "report_overview.png"
        page.screenshot(path=str(shot))
    pixels = iio.imread(shot)[..., :3].astype(float)
    assert pixels.std() > 20  # table, plot and turntables drawn (a blank or error page is one flat colour)
    right = pixels[:, pixels.shape[1] // 3 :]
    assert (right.min(axis=-1) < 200).mean() > 0.02  # the overview panel itself is not empty


@pytest.mark.slow
def test_meshes_target_exports_the_learned_totem_with_its_shape_and_colours(demo_run):
    """`snakemake meshes` on the demo's runs: the SDS run's mesh has the ground truth's extent (within 0.1 per
    axis, +y up) and colours: red head on top, blue base at the bottom; its .splat holds every Gaussian."""
    import trimesh

    from segmentdreamer.export.mesh import MeshSettings, extract_mesh
    from segmentdreamer.export.splat import read_splat
    from segmentdreamer.scene.gaussians import load_ply
    from segmentdreamer.scene.known_scenes import build_scene

    coarser = demo_run.parent / "mesh96.yaml"  # merged over demo.yaml (--config would pass 96 as a string)
    coarser.write_text("export: {mesh_resolution: 96}\n", encoding="utf-8")
    made = snakemake("meshes", "--configfile", "workflow/demo.yaml", str(coarser), "--cores", "2", "--config",
                     f'pathvars={{"results": "{demo_run}"}}')
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    run = demo_run / "runs" / "demo" / "sds" / "totem" / "seed0"
    learned = trimesh.load(run / "mesh.glb", force="mesh")
    truth = extract_mesh(build_scene("totem"), MeshSettings(resolution=96))
    np.testing.assert_allclose(learned.extents, truth.extents, atol=0.1)
    vertices, colours = np.asarray(learned.vertices), np.asarray(learned.visual.vertex_colors)[:, :3].astype(float)
    top, bottom = vertices[:, 1] > vertices[:, 1].max() - 0.05, vertices[:, 1] < vertices[:, 1].min() + 0.05
    assert (colours[top, 0] > colours[top, 2] + 60).mean() > 0.8  # the red head
    assert (colours[bottom, 2] > colours[bottom, 0] + 60).mean() > 0.8  # the blue base
    assert len(read_splat(run / "gaussians.splat")) == load_ply(run / "gaussians.ply")["means"].shape[0]
    assert len(list(demo_run.glob("runs/demo/*/totem/seed0/mesh.glb"))) == len(MEASURED)


@pytest.mark.slow
def test_a_demo_job_killed_with_sigkill_resumes_to_the_same_psnr(tmp_path):
    """kill -9 the whole workflow mid-training (densification included), unlock, rerun: the same PSNR."""
    config = demo_config(tmp_path, iterations=40, checkpoint_every=10, log_every=10,
                         densify={"start": 10, "stop": 30, "every": 10, "grad_threshold": 0.0002})
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["table1"]["variants"] = ["sds"]
    data["eval"]["views"] = 24  # the equality of the scores is the point here, not their precision
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    killed = tmp_path / "killed"

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(Path(sys.executable).parent / "snakemake"), "--configfile", str(config), "--cores", "2", "demo",
               "--config", f'pathvars={{"results": "{killed}"}}']
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    progress = killed / "runs" / "demo" / "sds" / "totem" / "seed0" / "progress.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and (not progress.is_file() or progress.read_text().count("\n") < 3):
        time.sleep(0.1)  # iterations 0, 10, 20 recorded: the checkpoint of 20 is on disk or being written
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (progress.parent / "finished.json").exists()
    assert snakemake("--configfile", str(config), "--unlock", "--config", f'pathvars={{"results": "{killed}"}}').returncode == 0
    rerun = run_demo(config, killed)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    log = (progress.parent / "logs" / "train.log").read_text(encoding="utf-8")
    resumed_at = re.search(r"resuming \S+ at iteration (\d+)", log)  # the rerun continued from a checkpoint
    assert resumed_at and 10 <= int(resumed_at.group(1)) < 40, log
    # the same run config trained without interruption, in-process, scored the same way
    from segmentdreamer.config import load_config
    from segmentdreamer.evaluate.known_answer import evaluate_run
    from segmentdreamer.training.trainer import Trainer

    run_dir = progress.parent
    threads = torch.get_num_threads()
    # train and score with one thread, as the workflow's jobs (OMP_NUM_THREADS=1): the same reduction order, the
    # same bits (scoring the same scene with 2 threads moves the PSNR in its 7th digit)
    torch.set_num_threads(1)
    try:
        whole = Trainer(load_config(run_dir / "config.yaml"), tmp_path / "whole").run()
        views = data["eval"]["views"]
        uninterrupted = evaluate_run(run_dir / "config.yaml", whole, tmp_path / "whole.json", views=views, resolution=64)
    finally:
        torch.set_num_threads(threads)
    resumed = json.loads((run_dir / "known_answer.json").read_text(encoding="utf-8"))
    assert resumed["psnr"] == uninterrupted["psnr"] and resumed["iou"] == uninterrupted["iou"]
