"""``segmentdreamer view RUN_DIR|PLY``: look at trained Gaussians in a web browser (viser).

The Gaussians are sent to viser's client, which splats them itself (WebGL in the browser), so the viewer
needs no GPU on the machine that serves it and works over an SSH tunnel (``ssh -L 8080:localhost:8080``).
The side panel shows the training prompt, the method and the run's numbers (CLIP, ImageReward when
scored), and a button renders the current view with the trainer's own renderer (gsplat on CUDA, the
PyTorch rasteriser on the CPU), to compare what the browser shows with what the losses saw.

The scene's axes are ours: +z up, the front (azimuth 0) on +y (docs/method.md, "Cameras, init and renders").
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .evaluate.metric import METRICS
from .plan.layout import METRIC_FILE, RUN_FILES
from .scene.gaussians import activate, load_ply
from .scene.render import quaternion_to_matrix, to_uint8
from .scene.ring import RING

log = logging.getLogger(__name__)

CAMERA_DISTANCE = RING.radius
"""The viewer opens on the front view at the evaluation ring's distance."""


@dataclass
class ViewedRun:
    """What the viewer shows: the Gaussians' file and what is known about the run that made them."""

    ply: Path
    prompt: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, path: str | Path) -> ViewedRun:
        """A run folder (its ``gaussians.ply``) or a ``.ply``; the run's config and scores are read when present."""
        path = Path(path)
        ply = path / RUN_FILES["ply"] if path.is_dir() else path
        if not ply.is_file():
            raise FileNotFoundError(f"{path}: no {RUN_FILES['ply']} here (give a run folder or a .ply file)")
        run = ply.parent
        config = read_yaml(run / RUN_FILES["resolved_config"]) or read_yaml(run / RUN_FILES["config"])
        details = {"Gaussians": f"{load_ply(ply)['means'].shape[0]:,}"}
        for key in ("method", "iterations", "seed"):
            if key in config:
                details[key] = str(config[key])
        for metric in METRICS.values():  # every registered metric's record the run has
            score = read_json(run / METRIC_FILE.format(metric=metric.name)).get("mean")
            if score is not None:
                details[metric.title] = f"{float(score):.{metric.digits}f}"
        return cls(ply=ply, prompt=str(config.get("prompt", "")), details=details)


def read_yaml(path: Path) -> dict:
    import yaml

    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def splat_arrays(params: torch.nn.ParameterDict) -> dict[str, np.ndarray]:
    """viser's inputs: centers [N, 3], covariances [N, 3, 3] (R S^2 R^T), rgbs [N, 3] in [0, 1], opacities [N, 1]."""
    with torch.no_grad():
        g = activate(params)
        rotation = quaternion_to_matrix(g["quats"].float())
        covariances = rotation @ torch.diag_embed(g["scales"].float() ** 2) @ rotation.transpose(1, 2)
        return {"centers": g["means"].float().numpy(), "covariances": covariances.numpy(),
                "rgbs": g["colors"].clamp(0.0, 1.0).float().numpy(), "opacities": g["opacities"].float()[:, None].numpy()}


def panel_markdown(run: ViewedRun) -> str:
    lines = [f"**Prompt:** {run.prompt or '(not recorded)'}", ""]
    lines += [f"- {key}: {value}" for key, value in run.details.items()]
    return "\n".join(lines)


def start_viewer(path: str | Path, host: str = "127.0.0.1", port: int = 8080, device: str = "auto"):
    """Serve ``path``'s Gaussians; returns the running ``viser.ViserServer`` (``.stop()`` ends it)."""
    import viser

    run = ViewedRun.find(path)
    params = load_ply(run.ply)
    server = viser.ViserServer(host=host, port=port, label=f"segmentdreamer: {run.prompt or run.ply.name}", verbose=False)
    server.scene.set_up_direction("+z")
    server.initial_camera.position = (0.0, CAMERA_DISTANCE, 0.6)
    server.initial_camera.look_at = (0.0, 0.0, 0.0)
    server.scene.add_gaussian_splats("/gaussians", **splat_arrays(params))
    server.gui.add_markdown(panel_markdown(run))
    button = server.gui.add_button("Render this view with the trainer's renderer")

    @button.on_click
    def _render(event) -> None:
        image = render_client_view(params, event.client.camera, device)
        server.gui.add_image(image, label="trainer's renderer (512 px)")

    log.info("viewer at http://%s:%d (%s; Ctrl-C stops it)", host, server.get_port(), run.ply)
    return server


def render_client_view(params: torch.nn.ParameterDict, camera, device: str = "auto", size: int = 512) -> np.ndarray:
    """The browser camera's view [size, size, 3] uint8, rendered by scene.render (white background).

    viser's camera is OpenCV-like (x right, y down, z forward) as ours; ``fov`` is its vertical field of view."""
    from .devices import resolve_device
    from .scene.render import render

    target = resolve_device(device)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = quaternion_to_matrix(torch.tensor(np.asarray(camera.wxyz), dtype=torch.float64))
    c2w[:3, 3] = torch.tensor(np.asarray(camera.position), dtype=torch.float64)
    focal = 0.5 * size / np.tan(0.5 * float(camera.fov))
    intrinsics = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=torch.float32)
    with torch.no_grad():
        gaussians = {key: value.detach().float().to(target) for key, value in activate(params).items()}
        out = render(**gaussians, viewmats=torch.linalg.inv(c2w).float()[None].to(target), Ks=intrinsics[None].to(target),
                     width=size, height=size, backgrounds=torch.ones(1, 3, device=target))
    return to_uint8(out.rgb[0])


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8080, timeout: float | None = None, device: str = "auto") -> None:
    """Run the viewer until Ctrl-C, or for ``timeout`` seconds (then it stops by itself)."""
    server = start_viewer(path, host, port, device)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
