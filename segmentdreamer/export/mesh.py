"""A triangle mesh with vertex colours from trained Gaussians: density grid -> marching cubes -> trimesh.

The density of the Gaussians at x is d(x) = sum_i o_i exp(-1/2 (x - mu_i)^T Sigma_i^-1 (x - mu_i)) (o_i the
opacity, Sigma_i = R_i S_i^2 R_i^T), sampled on a cube grid around the object; each Gaussian is splatted onto
the grid cells within 3 standard deviations of its largest axis. The surface is the level set d = ``level``
(1.0 by default: as dense as one opaque Gaussian's centre, DreamGaussian's choice), by scikit-image's marching
cubes; each vertex takes the density-weighted mean colour of the Gaussians there (a second grid of
d-weighted colours, read trilinearly). By default cavities (cells below the level that the outside cannot
reach, e.g. inside a closed shell of Gaussians) are filled first, so a shell gives its outer wall only, and
only the largest connected piece is kept, which drops floaters. A faint scene whose density never reaches the
level (a diffuse or half-transparent result) is not an error by default: its surface is taken at
``faint_fraction`` of the density's peak instead, and the level used is returned and logged.

Axes: our scenes are +z up (docs/method.md, "Cameras"); glTF and most tools are +y up, so the mesh is written
with (x, y, z) -> (x, z, -y) unless ``y_up`` is off.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..scene.gaussians import activate, load_ply
from ..scene.render import quaternion_to_matrix

MESH_SUFFIXES = (".glb", ".obj", ".ply")
"""The mesh formats ``export_mesh`` writes (trimesh picks the writer by suffix)."""


@dataclass(frozen=True)
class MeshSettings:
    """How the surface is extracted.

    Attributes:
        resolution: grid cells per side of the bounding cube.
        level: the density of the surface (units of one opaque Gaussian's peak).
        padding: fraction of the object's extent added on each side of the grid.
        fill_cavities: fill enclosed empty regions before extracting (no inner walls).
        keep_largest: keep only the largest connected component.
        min_opacity: Gaussians below it are ignored (nearly transparent ones carry no surface).
        y_up: rotate +z up (ours) to +y up (glTF's).
        faint_fraction: where the density peaks below ``level``, the surface is the level set at this fraction
            of the peak instead (the shape of a faint scene); 0 makes such a scene an ``EmptyMeshError``. A dense
            scene's level 1.0 lies near a tenth of its peak; a faint scene's peak is a noisy maximum of its interior,
            and a quarter of it is the boundary (tests/test_export.py: a ball's radius within one cell).
    """

    resolution: int = 192
    level: float = 1.0
    padding: float = 0.05
    fill_cavities: bool = True
    keep_largest: bool = True
    min_opacity: float = 0.01
    y_up: bool = True
    faint_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 16 <= self.resolution <= 1024:
            raise ValueError(f"mesh resolution must be in [16, 1024], got {self.resolution}")
        if not self.level > 0:
            raise ValueError(f"mesh level must be > 0, got {self.level}")
        if not 0.0 <= self.faint_fraction < 1.0:
            raise ValueError(f"mesh faint_fraction must be in [0, 1), got {self.faint_fraction}")


class EmptyMeshError(RuntimeError):
    """The density never reaches the level: no surface to extract."""


def bounding_cube(means: Tensor, scales: Tensor, padding: float) -> tuple[Tensor, float]:
    """(corner [3], side): a cube holding every Gaussian's 3-sigma extent, padded."""
    reach = 3.0 * scales.max(dim=1).values[:, None]
    low, high = (means - reach).min(dim=0).values, (means + reach).max(dim=0).values
    side = float((high - low).max()) * (1.0 + 2.0 * padding)
    centre = (low + high) / 2.0
    return centre - side / 2.0, side


def density_grids(gaussians: dict[str, Tensor], corner: Tensor, side: float, resolution: int,
                  chunk_cells: int = 4_000_000) -> tuple[Tensor, Tensor]:
    """(density [R, R, R], colour sum [R, R, R, 3]) on the grid of cell centres corner + (i + 1/2) side / R.

    Gaussians are grouped by their window radius k (cells within 3 sigma of the largest axis, capped at R/4)
    and each group is splatted with one (2k + 1)^3 offset stencil, in chunks of about ``chunk_cells`` cells.
    """
    r = resolution
    cell = side / r
    means, colours, opacities = gaussians["means"], gaussians["colors"].clamp(0.0, 1.0), gaussians["opacities"]
    rotations = quaternion_to_matrix(gaussians["quats"])  # [N, 3, 3]
    inverse_scales = 1.0 / gaussians["scales"]  # [N, 3]
    density = torch.zeros(r**3, dtype=torch.float32)
    colour_sum = torch.zeros(r**3, 3, dtype=torch.float32)
    centre_index = torch.floor((means - corner) / cell).long()  # [N, 3]
    radius = torch.ceil(3.0 * gaussians["scales"].max(dim=1).values / cell).long().clamp(1, max(r // 4, 1))
    for k in radius.unique().tolist():
        chosen = torch.nonzero(radius == k).flatten()
        axis = torch.arange(-k, k + 1)
        stencil = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)  # [S, 3]
        per_chunk = max(1, chunk_cells // len(stencil))
        for start in range(0, len(chosen), per_chunk):
            index = chosen[start:start + per_chunk]
            cells = centre_index[index, None, :] + stencil[None]  # [n, S, 3]
            inside = ((cells >= 0) & (cells < r)).all(dim=-1)  # [n, S]
            offset = corner + (cells.float() + 0.5) * cell - means[index, None, :]  # [n, S, 3]
            local = torch.einsum("nsj,nji->nsi", offset, rotations[index]) * inverse_scales[index, None, :]
            weight = opacities[index, None] * torch.exp(-0.5 * local.pow(2).sum(-1)) * inside  # [n, S]
            flat = (cells[..., 0].clamp(0, r - 1) * r + cells[..., 1].clamp(0, r - 1)) * r + cells[..., 2].clamp(0, r - 1)
            density.index_add_(0, flat.flatten(), weight.flatten())
            colour_sum.index_add_(0, flat.flatten(), (weight[..., None] * colours[index, None, :]).reshape(-1, 3))
    return density.reshape(r, r, r), colour_sum.reshape(r, r, r, 3)


def cavities(solid: np.ndarray, pore: int = 2) -> np.ndarray:
    """Cells of the boolean grid ``solid`` that are empty and enclosed, through pores up to ``pore`` cells wide.

    The solid is dilated by ``pore`` cells (closing pores), its enclosed holes are found, and grown back by
    ``pore`` cells to reach the inner wall (solid cells excluded)."""
    from scipy.ndimage import binary_dilation, binary_fill_holes

    closed = binary_dilation(solid, iterations=pore)
    inside = binary_fill_holes(closed) & ~closed
    return binary_dilation(inside, iterations=pore) & ~solid


def surface_level(peak: float, settings: MeshSettings) -> float:
    """The density at which the surface is extracted: ``settings.level``, or for a faint scene (``peak`` at or
    below it) ``faint_fraction`` of the peak; raises ``EmptyMeshError`` where there is none."""
    if peak > settings.level:
        return settings.level
    if settings.faint_fraction > 0.0 and peak > 0.0:
        return settings.faint_fraction * peak
    raise EmptyMeshError(f"the density peaks at {peak:.3g}, below the surface level {settings.level}; lower --level")


GRID_BYTES_PER_CELL = 24
"""Host memory one grid cell costs at least: density and colour sums (16 B) plus the field's copies (~8 B)."""


def check_grid_memory(resolution: int) -> None:
    """Refuse, before allocating, a grid that needs more host memory than is available now (``ValueError`` with
    both numbers: a 1024^3 grid wants ~24 GiB)."""
    need = GRID_BYTES_PER_CELL * resolution**3
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux: nothing to compare with
        return
    if need > available:
        raise ValueError(f"mesh resolution {resolution}: its grids need about {need / 2**30:.1f} GiB of memory and "
                         f"{available / 2**30:.1f} GiB are available; lower --resolution (192 needs {GRID_BYTES_PER_CELL * 192**3 / 2**30:.2f} GiB)")


def extract_mesh(params: torch.nn.ParameterDict, settings: MeshSettings = MeshSettings()):
    """The surface of the Gaussians as a ``trimesh.Trimesh`` with per-vertex RGBA colours (uint8); the density of
    the level set used is ``mesh.metadata["level"]`` (``settings.level`` unless the scene is faint)."""
    import trimesh
    from scipy.ndimage import map_coordinates
    from skimage.measure import marching_cubes

    check_grid_memory(settings.resolution)
    with torch.no_grad():
        gaussians = {key: value.detach().float().cpu() for key, value in activate(params).items()}
        keep = gaussians["opacities"] >= settings.min_opacity
        gaussians = {key: value[keep] for key, value in gaussians.items()}
        if not len(gaussians["means"]):
            raise EmptyMeshError(f"no Gaussian has opacity >= {settings.min_opacity}")
        corner, side = bounding_cube(gaussians["means"], gaussians["scales"], settings.padding)
        density, colour_sum = density_grids(gaussians, corner, side, settings.resolution)
    field = density.numpy()
    peak = float(field.max())
    level = surface_level(peak, settings)
    cell = side / settings.resolution
    if settings.fill_cavities:
        field = np.where(cavities(field > level), 2.0 * level, field)
    # pad with empty cells so that surfaces touching the grid's border still close
    field = np.pad(field, 1)
    vertices, faces, _, _ = marching_cubes(field, level=level)
    grid_coordinates = vertices - 1.0  # back to unpadded cell indices (cell centres at integers)
    mean_colour = (colour_sum / density.clamp_min(1e-8)[..., None]).numpy()
    colours = np.stack([map_coordinates(mean_colour[..., c], grid_coordinates.T, order=1, mode="nearest") for c in range(3)], axis=1)
    positions = corner.numpy()[None, :] + (grid_coordinates + 0.5) * cell
    rgba = np.concatenate([np.clip(colours, 0.0, 1.0) * 255.0, np.full((len(colours), 1), 255.0)], axis=1).round().astype(np.uint8)
    # marching_cubes orients faces towards increasing values; flip so normals point out of the object
    mesh = trimesh.Trimesh(vertices=positions, faces=faces[:, ::-1], vertex_colors=rgba, process=True)
    if settings.keep_largest:
        pieces = mesh.split(only_watertight=False)
        if len(pieces) > 1:
            mesh = max(pieces, key=lambda piece: piece.area)
    if settings.y_up:
        mesh.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2.0, [1.0, 0.0, 0.0]))
    mesh.metadata["level"] = level
    mesh.metadata["peak_density"] = peak
    return mesh


def export_mesh(ply: str | Path, out: str | Path, settings: MeshSettings = MeshSettings()) -> dict:
    """Write the mesh of a Gaussians ``.ply`` to ``out`` (.glb, .obj or .ply); returns a summary for the log."""
    from ..atomic import atomic_target

    out = Path(out)
    if out.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"{out}: mesh format must be one of {', '.join(MESH_SUFFIXES)}")
    mesh = extract_mesh(load_ply(ply), settings)
    with atomic_target(out) as temporary:
        mesh.export(str(temporary), file_type=out.suffix.lower().lstrip("."))
    return {"vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces)), "watertight": bool(mesh.is_watertight),
            "extent": [float(v) for v in mesh.extents], "level": mesh.metadata["level"],
            "peak_density": mesh.metadata["peak_density"]}
