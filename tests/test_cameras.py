"""The training camera sampler of docs/method.md, "Cameras, init and renders"."""

import torch

from segmentdreamer.config import CameraConfig
from segmentdreamer.scene.cameras import TrainingCameraSampler


def eyes_of(cameras):
    return torch.linalg.inv(cameras.viewmats)[:, :3, 3]


def test_sampled_cameras_stay_in_their_ranges():
    sampler = TrainingCameraSampler(CameraConfig(), 64, 64, seed=0)
    for _ in range(20):
        cams = sampler.sample(4)
        eyes = eyes_of(cams)
        radius = eyes.norm(dim=-1)
        assert ((radius > 5.2 - 0.05) & (radius < 5.5 + 0.05)).all()
        polar = torch.rad2deg(torch.acos(eyes[:, 2] / radius))
        assert ((polar > 45 - 1) & (polar < 105 + 1)).all()
        assert ((cams.fovx >= 0.32) & (cams.fovx <= 0.60)).all()
        assert ((cams.azimuths >= -180) & (cams.azimuths <= 180)).all()


def test_a_pool_of_ten_shares_one_fov_and_batches_straddle_pools():
    sampler = TrainingCameraSampler(CameraConfig(), 64, 64, seed=3)
    fovs = torch.cat([sampler.sample(4).fovx for _ in range(5)])  # 20 views = two pools exactly
    assert len(set(fovs[:8].tolist())) == 1  # first two batches from pool 1
    assert set(fovs[8:10].tolist()) == {fovs[0].item()} and set(fovs[10:12].tolist()) != {fovs[0].item()}


def test_widening_every_500_iterations():
    sampler = TrainingCameraSampler(CameraConfig(), 64, 64, seed=0)
    for step in range(0, 501):
        sampler.widen(step)
    assert sampler.radius_range == [5.2 * 0.95, 5.5 * 0.95]
    assert abs(sampler.fov_range[0] - 0.32 * 0.75) < 1e-12 and sampler.fov_range[1] == 0.60
    for step in range(501, 20001):
        sampler.widen(step)
    assert sampler.radius_range == [3.5, 5.0] and sampler.fov_range[0] == 0.16


def test_state_dict_restores_the_stream():
    a = TrainingCameraSampler(CameraConfig(), 64, 64, seed=0)
    a.sample(3)
    state = a.state_dict()
    expected = a.sample(6)
    b = TrainingCameraSampler(CameraConfig(), 64, 64, seed=99)
    b.load_state_dict(state)
    got = b.sample(6)
    assert torch.equal(expected.viewmats, got.viewmats) and torch.equal(expected.azimuths, got.azimuths)
