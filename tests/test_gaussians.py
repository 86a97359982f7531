"""Gaussian parameters: 3-NN init, activations, .ply round trip in the standard 3DGS layout."""

import math

import numpy as np
import pytest
import torch

from segmentdreamer.scene.gaussians import SH_C0, activate, from_points, load_ply, save_ply, sphere_points


def test_from_points_uses_3nn_scale_and_recipe_defaults():
    grid = torch.tensor([[x, y, 0.0] for x in range(4) for y in range(4)], dtype=torch.float32) * 0.1
    params = from_points(grid)
    g = activate(params)
    corner_scale = math.sqrt((0.1**2 + 0.1**2 + 2 * 0.1**2) / 3)  # corner (0,0): nearest are 0.1, 0.1, sqrt(2)*0.1
    assert g["scales"][0, 0].item() == pytest.approx(corner_scale, rel=1e-5)
    torch.testing.assert_close(g["opacities"], torch.full((16,), 0.1))
    torch.testing.assert_close(g["colors"], torch.full((16, 3), 127 / 255))
    torch.testing.assert_close(g["quats"], torch.tensor([[1.0, 0, 0, 0]]).repeat(16, 1))


def test_coincident_points_get_the_minimum_scale():
    params = from_points(torch.zeros(5, 3))
    assert torch.allclose(params["scales"].exp(), torch.full((5, 3), math.sqrt(1e-7)))


def test_colour_is_sh_dc_clamped_below_only():
    params = from_points(torch.rand(8, 3))
    params["sh0"].data[:] = torch.tensor([10.0, -10.0, 0.0])
    colours = activate(params)["colors"][0]
    assert colours[0].item() == pytest.approx(SH_C0 * 10 + 0.5) and colours[1].item() == 0.0


def test_ply_round_trip_is_exact(tmp_path):
    params = from_points(sphere_points(500, generator=torch.Generator().manual_seed(0)))
    for value in params.values():
        value.data += 0.01 * torch.randn_like(value)
    params["shN"] = torch.nn.Parameter(torch.randn(500, 3, 3))
    save_ply(params, tmp_path / "g.ply")
    loaded = load_ply(tmp_path / "g.ply")
    for key in params:
        assert torch.equal(params[key].data, loaded[key].data), key


def test_ply_uses_the_standard_3dgs_property_names(tmp_path):
    from plyfile import PlyData

    save_ply(from_points(torch.rand(10, 3)), tmp_path / "g.ply")
    names = PlyData.read(str(tmp_path / "g.ply"))["vertex"].data.dtype.names
    assert names == ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                     "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


def test_load_rejects_a_ply_that_is_not_3dgs(tmp_path):
    from plyfile import PlyData, PlyElement

    points = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(points, "vertex")]).write(str(tmp_path / "cloud.ply"))
    with pytest.raises(ValueError, match="not a 3DGS"):
        load_ply(tmp_path / "cloud.ply")


def test_sphere_points_lie_in_the_ball():
    points = sphere_points(1000, generator=torch.Generator().manual_seed(1))
    assert points.shape == (1000, 3) and points.norm(dim=-1).max() <= 0.5
