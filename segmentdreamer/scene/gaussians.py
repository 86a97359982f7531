"""3D Gaussians: parameters, activations, initialisation from points, and standard 3DGS ``.ply`` I/O.

Parameters follow gsplat's names, each an ``nn.Parameter`` in a ``ParameterDict`` (one Adam per entry):

    means     [N, 3]      world positions
    quats     [N, 4]      rotations (w, x, y, z), unnormalised
    scales    [N, 3]      log of the per-axis standard deviations
    opacities [N]         logits of the opacities
    sh0       [N, 1, 3]   SH DC colour coefficients (f_dc); rgb = 0.28209479 f_dc + 0.5, clamped >= 0
    shN       [N, K, 3]   higher SH bands (f_rest; K = 0 at degree 0, the recipe's default)

The ``.ply`` layout is the one of the original 3DGS code (x, y, z, nx, ny, nz, f_dc_*, f_rest_*,
opacity, scale_*, rot_*), which common splat viewers open.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_target
from ..errors import PlyError

SH_C0 = 0.28209479177387814


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Tensor) -> Tensor:
    """Colour of degree-0 SH [..., 3], clamped at 0 below only (as the official code)."""
    return (SH_C0 * sh0 + 0.5).clamp_min(0.0)


def activate(params: torch.nn.ParameterDict) -> dict[str, Tensor]:
    """Activated values: means [N, 3], quats [N, 4] normalised, scales [N, 3], opacities [N], colours [N, 3]."""
    return {
        "means": params["means"],
        "quats": torch.nn.functional.normalize(params["quats"], dim=-1),
        "scales": params["scales"].exp(),
        "opacities": torch.sigmoid(params["opacities"]),
        "colors": sh0_to_rgb(params["sh0"][:, 0]),
    }


def nearest_neighbour_scale(points: np.ndarray, k: int = 3, min_squared: float = 1e-7) -> np.ndarray:
    """sqrt(mean squared distance to the k nearest other points), squared value clamped >= min_squared."""
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(points).query(points, k=k + 1)
    squared = np.maximum((distances[:, 1:] ** 2).mean(axis=1), min_squared)
    return np.sqrt(squared)


def opaque_gaussians(means: Tensor, colours: Tensor, scale: float = 0.04, opacity: float = 0.95) -> torch.nn.ParameterDict:
    """Raw parameters (the trainer's layout) of small isotropic blobs at ``means`` [N, 3] with ``colours`` [N, 3] in
    [0, 1]: the ground-truth scenes built in code (``known_scenes``, ``miniworld``) are made of these."""
    count = len(means)
    quats = torch.zeros(count, 4)
    quats[:, 0] = 1.0
    return torch.nn.ParameterDict({
        "means": torch.nn.Parameter(means),
        "quats": torch.nn.Parameter(quats),
        "scales": torch.nn.Parameter(torch.full((count, 3), math.log(scale))),
        "opacities": torch.nn.Parameter(torch.full((count,), math.log(opacity / (1.0 - opacity)))),
        "sh0": torch.nn.Parameter(rgb_to_sh0(colours)[:, None, :]),
        "shN": torch.nn.Parameter(torch.zeros(count, 0, 3)),
    })


def from_points(points: Tensor, colors: Tensor | None = None, opacity: float = 0.1) -> torch.nn.ParameterDict:
    """Gaussians at ``points`` [N, 3] with isotropic 3-NN scales, identity rotation, the given opacity.

    ``colors`` [N, 3] in [0, 1]; default 127/255 grey (the recipe's initial colour).
    """
    points = points.detach().float().cpu()
    count = points.shape[0]
    if colors is None:
        colors = torch.full((count, 3), 127.0 / 255.0)
    scale = torch.from_numpy(nearest_neighbour_scale(points.numpy().astype(np.float64))).float()
    quats = torch.zeros(count, 4)
    quats[:, 0] = 1.0
    return torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(points.clone()),
            "quats": torch.nn.Parameter(quats),
            "scales": torch.nn.Parameter(scale.log()[:, None].repeat(1, 3)),
            "opacities": torch.nn.Parameter(torch.full((count,), math.log(opacity / (1.0 - opacity)))),
            "sh0": torch.nn.Parameter(rgb_to_sh0(colors.float())[:, None, :]),
            "shN": torch.nn.Parameter(torch.zeros(count, 0, 3)),
        }
    )


def sphere_points(count: int = 100_000, radius: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """``count`` points with radius U(0, radius) and uniform angles (``init: sphere``, docs/method.md, "Cameras, init and renders") [count, 3]."""
    r = torch.rand(count, generator=generator) * radius
    polar = torch.acos(1.0 - 2.0 * torch.rand(count, generator=generator))
    azimuth = 2.0 * math.pi * torch.rand(count, generator=generator)
    return torch.stack(
        [r * torch.sin(polar) * torch.cos(azimuth), r * torch.sin(polar) * torch.sin(azimuth), r * torch.cos(polar)], dim=-1
    )


def _ply_fields(num_rest: int) -> list[str]:
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(num_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def save_ply(params: torch.nn.ParameterDict, path: str | Path) -> None:
    """Write the standard 3DGS ``.ply`` (float32, binary little-endian), atomically."""
    from plyfile import PlyData, PlyElement

    p = {k: v.detach().float().cpu() for k, v in params.items()}
    count = p["means"].shape[0]
    rest = p["shN"].transpose(1, 2).reshape(count, -1)  # 3DGS stores f_rest channel-major
    columns = [p["means"], torch.zeros(count, 3), p["sh0"][:, 0], rest, p["opacities"][:, None], p["scales"], p["quats"]]
    data = torch.cat(columns, dim=1).numpy()
    names = _ply_fields(rest.shape[1])
    vertices = np.empty(count, dtype=[(name, "f4") for name in names])
    for i, name in enumerate(names):
        vertices[name] = data[:, i]
    with atomic_target(path) as tmp:
        PlyData([PlyElement.describe(vertices, "vertex")]).write(str(tmp))


def load_ply(path: str | Path) -> torch.nn.ParameterDict:
    """Read a standard 3DGS ``.ply`` into parameters (the inverse of :func:`save_ply`).

    Raises:
        PlyError: naming ``path``, if it cannot be read, lacks a 3DGS field, holds no Gaussian or holds a NaN / inf
            (a diverged scene must never be rendered, scored or exported as if it were one).
    """
    from plyfile import PlyData

    try:
        vertex = PlyData.read(str(path))["vertex"]
    except KeyError:
        raise PlyError(f"{path}: a .ply without a 'vertex' element is not a 3DGS scene") from None
    except Exception as error:  # plyfile raises several kinds (PlyParseError, ValueError, UnicodeDecodeError, OSError)
        raise PlyError(f"{path}: cannot read it as a .ply ({type(error).__name__}: {error})") from None
    names = vertex.data.dtype.names
    missing = [n for n in ("x", "y", "z", "f_dc_0", "opacity", "scale_0", "rot_0") if n not in names]
    if missing:
        raise PlyError(f"{path}: not a 3DGS .ply (missing {', '.join(missing)})")
    count = len(vertex.data)
    if count == 0:
        raise PlyError(f"{path}: holds no Gaussian (0 vertices)")
    bad = [n for n in names if not np.isfinite(np.asarray(vertex[n], dtype=np.float64)).all()]
    if bad:
        raise PlyError(f"{path}: non-finite values (NaN or inf) in {', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}: "
                       f"a diverged scene, not a result")

    def stack(fields: list[str]) -> Tensor:
        return torch.from_numpy(np.stack([np.asarray(vertex[f], dtype=np.float32) for f in fields], axis=1))

    rest_names = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n.split("_")[-1]))
    rest = stack(rest_names) if rest_names else torch.zeros(count, 0)
    return torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(stack(["x", "y", "z"])),
            "quats": torch.nn.Parameter(stack([f"rot_{i}" for i in range(4)])),
            "scales": torch.nn.Parameter(stack([f"scale_{i}" for i in range(3)])),
            "opacities": torch.nn.Parameter(stack(["opacity"])[:, 0].contiguous()),
            "sh0": torch.nn.Parameter(stack([f"f_dc_{i}" for i in range(3)])[:, None, :].contiguous()),
            "shN": torch.nn.Parameter(rest.reshape(count, 3, -1).transpose(1, 2).contiguous()),
        }
    )
