"""Cameras: the training sampler of the official recipe and the evaluation ring (docs/method.md, "Cameras, init and renders").

World: z up; azimuth 0 is the front, on +y; polar angle from +z (90 deg = horizon). Cameras follow
OpenCV: x right, y down, z forward; ``viewmats`` map world to camera, ``c2w`` camera to world.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import CameraConfig
from .ring import RING


@dataclass
class Cameras:
    """B pinhole cameras.

    Attributes:
        viewmats: [B, 4, 4] world-to-camera.   Ks: [B, 3, 3] intrinsics in pixels.
        azimuths: [B] degrees (0 = front), for view-dependent prompts.   fovx: [B] radians.
    """

    viewmats: Tensor
    Ks: Tensor
    azimuths: Tensor
    fovx: Tensor

    def to(self, device) -> Cameras:
        return Cameras(self.viewmats.to(device), self.Ks.to(device), self.azimuths, self.fovx)

    def __len__(self) -> int:
        return int(self.viewmats.shape[0])

    def __getitem__(self, index) -> Cameras:
        return Cameras(self.viewmats[index], self.Ks[index], self.azimuths[index], self.fovx[index])


def turned_about_z(cameras: Cameras, degrees: Tensor) -> Cameras:
    """The cameras carried around the world's z axis (through the origin) by ``degrees`` [B] of azimuth (positive:
    from the front, +y, toward +x), each keeping its view of the object; ``azimuths`` move with them.

    With R the rotation taking (sin a, cos a) to (sin(a + d), cos(a + d)) in the xy-plane, camera-to-world becomes
    R c2w, so world-to-camera becomes viewmat R^T.
    """
    d = torch.deg2rad(degrees.to(cameras.viewmats.dtype)).to(cameras.viewmats.device)
    rotation = torch.zeros(len(d), 4, 4, dtype=cameras.viewmats.dtype, device=cameras.viewmats.device)
    rotation[:, 0, 0], rotation[:, 0, 1] = torch.cos(d), torch.sin(d)
    rotation[:, 1, 0], rotation[:, 1, 1] = -torch.sin(d), torch.cos(d)
    rotation[:, 2, 2] = rotation[:, 3, 3] = 1.0
    azimuths = (cameras.azimuths + degrees.to(cameras.azimuths) + 180.0) % 360.0 - 180.0
    return Cameras(cameras.viewmats @ rotation.transpose(1, 2), cameras.Ks, azimuths, cameras.fovx)


def look_at_c2w(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """OpenCV camera-to-world [B, 4, 4] for eyes [B, 3] looking at targets [B, 3]."""
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.cross(forward, up, dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    c2w = torch.eye(4, dtype=eye.dtype).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, down, forward, eye
    return c2w


def intrinsics(fovx: Tensor, width: int, height: int) -> Tensor:
    """Ks [B, 3, 3]: fx = fy = W / (2 tan(fovx / 2)), principal point at the image centre."""
    focal = width / (2.0 * torch.tan(fovx / 2.0))
    K = torch.zeros(fovx.shape[0], 3, 3, dtype=fovx.dtype)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = focal, focal, width / 2.0, height / 2.0, 1.0
    return K


def spherical_to_position(polar_deg: Tensor, azimuth_deg: Tensor, radius: Tensor) -> Tensor:
    """Points [B, 3] at the given polar (from +z) and azimuth (0 on +y) angles."""
    polar, azimuth = torch.deg2rad(polar_deg), torch.deg2rad(azimuth_deg)
    return torch.stack(
        [radius * torch.sin(polar) * torch.sin(azimuth), radius * torch.sin(polar) * torch.cos(azimuth), radius * torch.cos(polar)], dim=-1
    )


def orbit_cameras(polar_deg: Tensor, azimuth_deg: Tensor, radius: Tensor, fovx: Tensor, width: int, height: int) -> Cameras:
    """Cameras on a sphere around the origin looking at it, z up, no jitter."""
    eye = spherical_to_position(polar_deg, azimuth_deg, radius)
    up = torch.tensor([0.0, 0.0, 1.0]).expand_as(eye)
    c2w = look_at_c2w(eye, torch.zeros_like(eye), up)
    return Cameras(torch.linalg.inv(c2w), intrinsics(fovx, width, height), azimuth_deg, fovx)


def evaluation_ring(
    count: int = RING.views, elevation_deg: float = RING.elevation, radius: float = RING.radius, fovx: float = RING.fovx,
    width: int = RING.resolution, height: int = RING.resolution,
) -> Cameras:
    """The evaluation orbit: ``count`` views 360/count degrees apart from the front, at one elevation."""
    azimuths = torch.arange(count, dtype=torch.float32) * (360.0 / count)
    azimuths = (azimuths + 180.0) % 360.0 - 180.0
    full = lambda value: torch.full((count,), float(value))  # noqa: E731
    return orbit_cameras(full(90.0 - elevation_deg), azimuths, full(radius), full(fovx), width, height)


class TrainingCameraSampler:
    """The official training sampler: pools of ``pool_size`` random cameras sharing one field of view.

    Views are popped at random, without replacement, and the pool is refilled when empty (a batch can
    straddle two pools). Every ``widen_every`` iterations the radius range shrinks by ``radius_shrink``
    toward ``radius_limit`` and the low end of the fov range by ``fov_low_shrink`` (>= ``fov_low_limit``),
    taking effect at the next pool. All draws come from one CPU generator (saved in checkpoints).
    """

    def __init__(self, config: CameraConfig, width: int, height: int, seed: int):
        self.config, self.width, self.height = config, width, height
        self.generator = torch.Generator().manual_seed(seed)
        self.radius_range = list(config.radius_range)
        self.fov_range = list(config.fov_range)
        self.pool: list[Cameras] = []

    def _uniform(self, low: float, high: float, count: int, gamma: float = 1.0) -> Tensor:
        return torch.rand(count, generator=self.generator) ** gamma * (high - low) + low

    def _refill(self) -> None:
        c, n = self.config, self.config.pool_size
        polar = self._uniform(*c.polar_range, n, c.rand_cam_gamma)
        azimuth = self._uniform(*c.azimuth_range, n, c.rand_cam_gamma)
        radius = self._uniform(*self.radius_range, n)
        fovx = self._uniform(*self.fov_range, 1).expand(n).clone()
        eye = spherical_to_position(polar, azimuth, radius)
        eye = eye + torch.rand(eye.shape, generator=self.generator) * c.jitter_center - c.jitter_center / 2.0
        target = torch.randn(eye.shape, generator=self.generator) * c.jitter_target
        up = torch.tensor([0.0, 0.0, 1.0]) + torch.randn(eye.shape, generator=self.generator) * c.jitter_up
        c2w = look_at_c2w(eye, target, up)
        cams = Cameras(torch.linalg.inv(c2w), intrinsics(fovx, self.width, self.height), azimuth, fovx)
        self.pool = [cams[i : i + 1] for i in range(n)]

    def widen(self, step: int) -> None:
        """Apply the every-``widen_every`` schedule (call once per iteration with the iteration number)."""
        c = self.config
        if step == 0 or step % c.widen_every:
            return
        self.radius_range = [max(c.radius_limit[0], self.radius_range[0] * c.radius_shrink),
                             max(c.radius_limit[1], self.radius_range[1] * c.radius_shrink)]
        self.fov_range[0] = max(c.fov_low_limit, self.fov_range[0] * c.fov_low_shrink)

    def sample(self, count: int) -> Cameras:
        views = []
        for _ in range(count):
            if not self.pool:
                self._refill()
            index = int(torch.randint(len(self.pool), (1,), generator=self.generator))
            views.append(self.pool.pop(index))
        return Cameras(*(torch.cat([getattr(v, f) for v in views]) for f in ("viewmats", "Ks", "azimuths", "fovx")))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "radius_range": list(self.radius_range),
                "fov_range": list(self.fov_range), "pool": [vars(c) for c in self.pool]}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.radius_range, self.fov_range = list(state["radius_range"]), list(state["fov_range"])
        self.pool = [Cameras(**c) for c in state["pool"]]
