"""Divergence guards: a run whose Gaussians went non-finite (or flew off) never becomes a result.

The trainer checks its parameters and its last renders before every checkpoint and before the final
``.ply`` (:func:`health_problems`: all tests on the device, one small device-to-host copy, so the hot loop
never syncs). A failed check stops the run with the iteration and the first bad tensor named, keeps the
last finite checkpoint (a non-finite state is never written), and leaves a ``diverged.json`` marker so
that a retry with the same settings fails at once with the same message instead of repeating the same
divergence (a resumed run is bitwise the same run) and never resumes a bad state.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from ..atomic import write_json

DIVERGED = "diverged.json"


class TrainingDiverged(RuntimeError):
    """The run's loss, parameters or renders became non-finite (or its Gaussians left the scene)."""


def health_problems(params: dict[str, Tensor], renders: Tensor | None, max_position: float) -> list[str]:
    """What is wrong with the training state, as readable lines (empty: healthy).

    Args:
        params: the Gaussians' raw parameters (``means`` [N, 3], ``scales``, ``quats``, ``opacities``, ``sh0``, ...).
        renders: the last iteration's RGB renders [B, 3, H, W] (or None).
        max_position: largest |coordinate| a Gaussian may have (world units; cameras sit within ~5.5).
    """
    names, flags, fractions = [], [], []
    tensors = {name: value for name, value in params.items()} | ({"renders": renders} if renders is not None else {})
    for name, tensor in tensors.items():
        data = tensor.detach()
        finite = torch.isfinite(data)
        names.append(f"{name} is not finite")
        flags.append(finite.all())
        fractions.append(1.0 - finite.float().mean() if data.numel() else data.new_zeros(()))
    means = params.get("means")
    if means is not None and means.numel():
        far = means.detach().abs().amax(dim=-1) > max_position
        names.append(f"means: Gaussians beyond |x| = {max_position:g} (the scene diverged)")
        flags.append(~far.any())
        fractions.append(far.float().mean())
    if not flags:
        return []
    ok = torch.stack([f.reshape(()).float() for f in flags]).cpu()
    share = torch.stack([f.reshape(()).float() for f in fractions]).cpu()
    return [f"{name} ({100 * float(s):.3g} % of its entries)" for name, good, s in zip(names, ok.tolist(), share) if not good]


def write_marker(out_dir: Path, iteration: int, message: str, config: dict) -> Path:
    """Record the divergence beside the run (read by the next attempt)."""
    path = Path(out_dir) / DIVERGED
    write_json({"iteration": iteration, "message": message, "config": config}, path)
    return path


def check_marker(out_dir: Path, config: dict) -> None:
    """Fail at once if this run already diverged with these settings; forget a marker of other settings."""
    path = Path(out_dir) / DIVERGED
    if not path.is_file():
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("config") != config:
        path.unlink()
        return
    raise TrainingDiverged(f"this run already diverged with these settings: {record['message']} "
                           f"Change its settings (e.g. a learning rate, or on_nan) or delete {path} to try again.")
