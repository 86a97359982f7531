"""The ``.splat`` format of the web splat viewers (antimatter15/splat and the viewers that read it).

32 bytes per Gaussian, little-endian, no header, sorted by decreasing (volume x opacity) so that a viewer
streaming the file shows the big opaque Gaussians first:

    position  3 x float32   world xyz
    scale     3 x float32   per-axis standard deviation (activated: exp of the .ply's scale_*)
    colour    4 x uint8     RGB of the degree-0 SH (0.5 + C0 f_dc, clipped to [0, 1]) and alpha = sigmoid(opacity)
    rotation  4 x uint8     unit quaternion (w, x, y, z) mapped from [-1, 1] to [0, 255] as q * 128 + 128

The higher SH bands are dropped (the format has none); the recipe trains degree 0 only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..scene.gaussians import activate, load_ply

SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])
"""One record of the file (32 bytes)."""


def splat_records(params: torch.nn.ParameterDict) -> np.ndarray:
    """The structured array [N] of SPLAT_DTYPE, in the viewers' order."""
    with torch.no_grad():
        g = {key: value.detach().float().cpu().numpy() for key, value in activate(params).items()}
    order = np.argsort(-(g["scales"].prod(axis=1) * g["opacities"]), kind="stable")
    records = np.empty(len(order), dtype=SPLAT_DTYPE)
    records["position"] = g["means"][order]
    records["scale"] = g["scales"][order]
    rgba = np.concatenate([np.clip(g["colors"][order], 0.0, 1.0), g["opacities"][order, None]], axis=1)
    records["rgba"] = np.round(rgba * 255.0).astype(np.uint8)
    records["rotation"] = np.clip(np.round(g["quats"][order] * 128.0 + 128.0), 0, 255).astype(np.uint8)
    return records


def read_splat(path: str | Path) -> np.ndarray:
    """The records of a ``.splat`` file (for checks and tools)."""
    data = Path(path).read_bytes()
    if len(data) % SPLAT_DTYPE.itemsize:
        raise ValueError(f"{path}: {len(data)} bytes is not a whole number of {SPLAT_DTYPE.itemsize}-byte splat records")
    return np.frombuffer(data, dtype=SPLAT_DTYPE)


def export_splat(ply: str | Path, out: str | Path) -> int:
    """Write the Gaussians of ``ply`` as ``out`` (.splat); returns the number of records."""
    from ..atomic import atomic_target

    records = splat_records(load_ply(ply))
    with atomic_target(out) as temporary:
        Path(temporary).write_bytes(records.tobytes())
    return int(len(records))
