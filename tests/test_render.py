"""Renderer (PyTorch path): closed-form single Gaussian, gradcheck, camera convention, disparity."""

import math

import pytest
import torch

from segmentdreamer.scene.cameras import evaluation_ring, intrinsics, look_at_c2w
from segmentdreamer.scene.render import _composite_torch, normalized_disparity, project, render

from .reference import composite_dense

W = H = 32


def camera_at(distance: float, fovx: float = 0.6, dtype=torch.float64):
    eye = torch.tensor([[0.0, -distance, 0.0]], dtype=dtype)
    c2w = look_at_c2w(eye, torch.zeros_like(eye), torch.tensor([[0.0, 0.0, 1.0]], dtype=dtype))
    return torch.linalg.inv(c2w), intrinsics(torch.tensor([fovx], dtype=dtype), W, H)


def one_gaussian(std=0.05, opacity=0.7, colour=(0.9, 0.2, 0.1)):
    d = torch.float64
    return dict(means=torch.zeros(1, 3, dtype=d), quats=torch.tensor([[1.0, 0, 0, 0]], dtype=d),
                scales=torch.full((1, 3), std, dtype=d), opacities=torch.tensor([opacity], dtype=d),
                colors=torch.tensor([colour], dtype=d))


def test_single_gaussian_matches_closed_form():
    viewmats, Ks = camera_at(3.0)
    g = one_gaussian()
    background = torch.tensor([[0.1, 0.3, 0.5]], dtype=torch.float64)
    out = render(**g, viewmats=viewmats, Ks=Ks, width=W, height=H, backgrounds=background, backend="torch")
    f = float(Ks[0, 0, 0])
    var2d = (f * 0.05 / 3.0) ** 2 + 0.3  # J Sigma J^T + eps2d on the optical axis
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    sigma = 0.5 * ((xs - W / 2) ** 2 + (ys - H / 2) ** 2) / var2d
    alpha = (0.7 * torch.exp(-sigma)).clamp_max(0.999)
    alpha = torch.where(alpha >= 1 / 255, alpha, torch.zeros_like(alpha))
    expected = alpha[None] * torch.tensor([0.9, 0.2, 0.1], dtype=torch.float64)[:, None, None] + (1 - alpha[None]) * background[0, :, None, None]
    torch.testing.assert_close(out.rgb[0], expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.alpha[0, 0], alpha)
    torch.testing.assert_close(out.depth[0, 0], 3.0 * alpha)  # D = sum z alpha T
    assert out.radii[0, 0] == math.ceil(3.33 * math.sqrt(var2d))


def test_opacity_is_capped_at_0_99():
    viewmats, Ks = camera_at(3.0)
    black = torch.zeros(1, 3, dtype=torch.float64)
    full = render(**one_gaussian(opacity=1.0), viewmats=viewmats, Ks=Ks, width=W, height=H, backgrounds=black, backend="torch")
    capped = render(**one_gaussian(opacity=0.99), viewmats=viewmats, Ks=Ks, width=W, height=H, backgrounds=black, backend="torch")
    torch.testing.assert_close(full.rgb, capped.rgb, rtol=0, atol=0)


def test_compositing_stops_before_transmittance_reaches_1e_4():
    """Three layers of alpha 0.995 at a pixel centre: the second would leave T = 2.5e-5 < 1e-4, so only the first counts."""
    d = torch.float64
    means2d = torch.full((3, 2), 4.5, dtype=d)
    conics = torch.tensor([[1.0, 0.0, 1.0]] * 3, dtype=d)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=d)
    image, transmittance = _composite_torch(means2d, conics, torch.full((3,), 0.995, dtype=d), features,
                                            torch.tensor([1.0, 2.0, 3.0], dtype=d), torch.full((3, 2), 3.0, dtype=d), 8, 8)
    torch.testing.assert_close(image[4, 4], torch.tensor([0.995, 0.0], dtype=d))
    assert transmittance[4, 4].item() == pytest.approx(0.005)


def random_scene(count: int, spread: float, seed: int = 0, d=torch.float64) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return dict(means=(torch.rand(count, 3, generator=gen, dtype=d) - 0.5) * spread,
                quats=torch.nn.functional.normalize(torch.randn(count, 4, generator=gen, dtype=d), dim=-1),
                scales=0.01 + 0.05 * torch.rand(count, 3, generator=gen, dtype=d),
                opacities=0.05 + 0.9 * torch.rand(count, generator=gen, dtype=d), colors=torch.rand(count, 3, generator=gen, dtype=d))


def test_tiled_compositing_equals_the_dense_reference_with_its_gradients():
    """300 overlapping Gaussians (some partly off-screen, some culled), a 37 x 29 image (not a multiple of the
    tile): the tiled compositor gives every pixel and every gradient of the dense one."""
    width, height = 37, 29
    viewmats, Ks = camera_at(1.6)
    Ks[0, 0, 2], Ks[0, 1, 2] = width / 2, height / 2
    scene = random_scene(300, spread=1.4)
    # the nearest Gaussian, large and faint, lies over every tile
    scene["means"][0], scene["scales"][0], scene["opacities"][0] = torch.tensor([0.0, -0.9, 0.0]), 0.3, 0.3
    means2d, conics, depths, radii, radius_xy = project(scene["means"], scene["quats"], scene["scales"], viewmats[0], Ks[0], width, height)
    features = torch.cat([scene["colors"], depths[:, None]], dim=-1)
    inputs = [x.detach().clone().requires_grad_() for x in (means2d, conics, scene["opacities"], features)]
    weights = torch.rand(height, width, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    results = []
    for composite in (lambda m, c, o, f: _composite_torch(m, c, o, f, depths, radius_xy, width, height),
                      lambda m, c, o, f: composite_dense(m, c, o, f, depths, radii > 0, width, height)):
        image, transmittance = composite(*inputs)
        gradients = torch.autograd.grad((image * weights[..., :4]).sum() + (transmittance * weights[..., 4]).sum(), inputs)
        results.append((image, transmittance, gradients))
    (image, transmittance, gradients), (image_ref, transmittance_ref, gradients_ref) = results
    assert 0.2 < (transmittance_ref < 0.5).double().mean() < 0.99 and (radii == 0).sum() > 10  # dense, and some culled
    torch.testing.assert_close(image, image_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(transmittance, transmittance_ref, rtol=0, atol=1e-12)
    for gradient, reference in zip(gradients, gradients_ref):
        torch.testing.assert_close(gradient, reference, rtol=1e-10, atol=1e-10)


def test_an_empty_scene_renders_the_background():
    viewmats, Ks = camera_at(3.0)
    empty = {key: value[:0] for key, value in one_gaussian().items()}
    background = torch.tensor([[0.1, 0.3, 0.5]], dtype=torch.float64)
    out = render(**empty, viewmats=viewmats, Ks=Ks, width=W, height=H, backgrounds=background, backend="torch")
    torch.testing.assert_close(out.rgb[0], background[0, :, None, None].expand(3, H, W))
    assert (out.alpha == 0).all()


def test_gradcheck_on_a_tiny_scene():
    viewmats, Ks = camera_at(2.5)
    gen = torch.Generator().manual_seed(0)
    d = torch.float64
    means = (torch.rand(4, 3, generator=gen, dtype=d) - 0.5) * 0.3
    quats = torch.nn.functional.normalize(torch.randn(4, 4, generator=gen, dtype=d), dim=-1)
    scales = 0.05 + 0.05 * torch.rand(4, 3, generator=gen, dtype=d)
    opacities = 0.3 + 0.4 * torch.rand(4, generator=gen, dtype=d)
    colors = torch.rand(4, 3, generator=gen, dtype=d)
    background = torch.tensor([[0.2, 0.4, 0.6]], dtype=d)

    def image(means, scales, opacities, colors):
        out = render(means, quats, scales, opacities, colors, viewmats, Ks, 12, 12, background, backend="torch")
        return out.rgb, out.alpha

    inputs = tuple(x.clone().requires_grad_() for x in (means, scales, opacities, colors))
    assert torch.autograd.gradcheck(image, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_camera_convention_opencv():
    viewmats, Ks = camera_at(4.0)
    c2w = torch.linalg.inv(viewmats[0])
    right_point = (c2w @ torch.tensor([1.0, 0.0, 5.0, 1.0], dtype=torch.float64))[:3]
    below_point = (c2w @ torch.tensor([0.0, 1.0, 5.0, 1.0], dtype=torch.float64))[:3]
    d = torch.float64
    for point, axis in ((right_point, 0), (below_point, 1)):
        means2d, *_ = project(point[None], torch.tensor([[1.0, 0, 0, 0]], dtype=d), torch.full((1, 3), 0.01, dtype=d), viewmats[0], Ks[0], W, H)
        assert means2d[0, axis] > Ks[0, axis, 2] + 1  # +x projects right of centre, +y below
        assert means2d[0, 1 - axis] == pytest.approx(float(Ks[0, 1 - axis, 2]))
    # world up (+z) is image up: a point above the origin lands in the upper half
    means2d, *_ = project(torch.tensor([[0.0, 0.0, 0.5]], dtype=d), torch.tensor([[1.0, 0, 0, 0]], dtype=d), torch.full((1, 3), 0.01, dtype=d), viewmats[0], Ks[0], W, H)
    assert means2d[0, 1] < H / 2


def test_evaluation_ring():
    ring = evaluation_ring()
    assert len(ring) == 120
    c2w = torch.linalg.inv(ring.viewmats)
    eyes = c2w[:, :3, 3]
    torch.testing.assert_close(eyes.norm(dim=-1), torch.full((120,), 3.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(eyes[:, 2], torch.zeros(120), atol=1e-5, rtol=0)
    steps = torch.diff(torch.atan2(eyes[:, 0], eyes[:, 1]).rad2deg()) % 360
    torch.testing.assert_close(steps, torch.full((119,), 3.0), atol=1e-3, rtol=0)
    assert ring.azimuths[0] == 0 and ring.Ks[0, 0, 0].item() == pytest.approx(256 / math.tan(0.275), rel=1e-5)
    assert eyes[0, 1] > 3.4  # the front view looks from +y


def test_disparity_normalisation():
    depth = torch.tensor([[[[2.0, 4.0], [0.0, 1.0]]]])
    transmittance = torch.tensor([[[[0.0, 0.05], [1.0, 0.5]]]])
    disp = normalized_disparity(depth, transmittance, torch.tensor([1.0]))
    raw = 1.0 / (depth + 10 * transmittance + 1e-5)
    low, high = raw[transmittance <= 0.1].min(), raw.max()
    torch.testing.assert_close(disp, ((raw - low) / (high - low)).clamp(0, 1))
