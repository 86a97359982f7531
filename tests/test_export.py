"""Mesh and .splat export (segmentdreamer/export): known scenes give known surfaces, colours and records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from segmentdreamer.cli import main
from segmentdreamer.export.mesh import EmptyMeshError, MeshSettings, extract_mesh
from segmentdreamer.export.splat import export_splat, read_splat
from segmentdreamer.scene.gaussians import from_points, save_ply

RADIUS = 0.5


def ball(count: int = 12_000, colour=(0.8, 0.3, 0.1), shell: bool = False, seed: int = 0) -> torch.nn.ParameterDict:
    """Opaque Gaussians filling a ball of radius 0.5 (or covering its sphere, ``shell``), one colour or a callable."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(count, 3, generator=generator)
    direction = direction / direction.norm(dim=1, keepdim=True)
    radius = torch.full((count, 1), RADIUS) if shell else RADIUS * torch.rand(count, 1, generator=generator).pow(1 / 3)
    points = direction * radius
    colours = colour(points) if callable(colour) else torch.tensor(colour).expand(count, 3)
    return from_points(points, colors=colours, opacity=0.9)


def radii(mesh) -> np.ndarray:
    return np.linalg.norm(np.asarray(mesh.vertices), axis=1)


def test_a_ball_of_gaussians_gives_a_closed_outward_mesh_of_its_radius_and_colour():
    params = ball()
    sigma = float(params["scales"].exp().mean())
    mesh = extract_mesh(params, MeshSettings(resolution=64))
    r = radii(mesh)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0  # closed, normals point out
    assert RADIUS < r.mean() < RADIUS + 2.5 * sigma and r.std() < 0.02, (r.mean(), r.std(), sigma)
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * r.mean() ** 3, rel=0.05)
    np.testing.assert_allclose(np.asarray(mesh.visual.vertex_colors)[:, :3].mean(0) / 255, (0.8, 0.3, 0.1), atol=0.01)


def test_colours_follow_the_gaussians_and_axes_turn_z_up_into_y_up():
    """Red where x > 0, blue where x < 0; a point at +z (our up) lands at +y (glTF's up)."""
    def halves(points):
        return torch.where(points[:, :1] > 0, torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.1, 0.1, 0.9]))

    mesh = extract_mesh(ball(colour=halves), MeshSettings(resolution=64))
    vertices, colours = np.asarray(mesh.vertices), np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
    right, left = vertices[:, 0] > 0.1, vertices[:, 0] < -0.1
    assert (colours[right, 0] > 0.8).mean() > 0.99 and (colours[left, 2] > 0.8).mean() > 0.99
    tall = ball(count=8000)
    tall["means"].data[:, 2] *= 2.0  # twice as tall (z) as wide
    up = np.asarray(extract_mesh(tall, MeshSettings(resolution=64)).extents)
    assert up[1] > 1.7 * up[0] and up[1] > 1.7 * up[2], up
    kept = np.asarray(extract_mesh(tall, MeshSettings(resolution=64, y_up=False)).extents)
    assert kept[2] > 1.7 * kept[0] and kept[2] > 1.7 * kept[1], kept


def test_a_shell_gives_its_outer_wall_only_and_a_floater_is_dropped():
    params = ball(count=40_000, shell=True)
    floater = from_points(torch.tensor([[1.2, 0.0, 0.0]]) + 0.01 * torch.randn(30, 3, generator=torch.Generator().manual_seed(1)),
                          opacity=0.9)
    for key in params:
        params[key] = torch.nn.Parameter(torch.cat([params[key].data, floater[key].data]))
    raw = extract_mesh(params, MeshSettings(resolution=96, keep_largest=False, fill_cavities=False))
    assert radii(raw).min() < RADIUS - 0.01 and radii(raw).max() > 1.1  # inner wall and floater are there
    kept = extract_mesh(params, MeshSettings(resolution=96))
    assert kept.is_watertight and np.percentile(radii(kept), 1) > RADIUS - 0.005 and radii(kept).max() < 0.7


def test_a_faint_ball_gives_its_surface_at_a_quarter_of_its_peak_density_or_fails_when_asked_to():
    """Nearly transparent Gaussians never reach the level: the mesh is the level set at faint_fraction x the peak
    (recorded), at the ball's radius; with faint_fraction 0 the scene has no surface."""
    params = ball()
    params["opacities"].data.fill_(-3.0)  # logit: opacity 0.047, the ball's density peaks far below 1.0
    sigma = float(params["scales"].exp().mean())
    mesh = extract_mesh(params, MeshSettings(resolution=64))
    assert 0.0 < mesh.metadata["level"] < 1.0
    assert mesh.metadata["level"] == pytest.approx(0.25 * mesh.metadata["peak_density"])
    r = radii(mesh)
    assert mesh.is_watertight and RADIUS < r.mean() < RADIUS + 2.5 * sigma and r.std() < 0.02, (r.mean(), r.std(), sigma)
    opaque = extract_mesh(ball(), MeshSettings(resolution=64))
    assert opaque.metadata["level"] == 1.0 and opaque.metadata["peak_density"] > 1.0
    with pytest.raises(EmptyMeshError, match="lower --level"):
        extract_mesh(params, MeshSettings(resolution=64, faint_fraction=0.0))


def test_no_surface_and_bad_settings_fail_with_a_clear_message():
    with pytest.raises(EmptyMeshError, match="lower --level"):
        extract_mesh(ball(count=200), MeshSettings(resolution=32, level=50.0, faint_fraction=0.0))
    with pytest.raises(ValueError, match="faint_fraction"):
        MeshSettings(faint_fraction=1.0)
    with pytest.raises(ValueError, match="resolution"):
        MeshSettings(resolution=4)


def test_splat_records_round_trip_the_gaussians(tmp_path):
    params = ball(count=500, colour=(0.2, 0.6, 1.0))
    params["scales"].data[:10] += 1.0  # ten big ones must come first
    params["quats"].data[:] = torch.tensor([0.0, 0.0, 0.0, 2.0])  # unnormalised: a half turn about z
    save_ply(params, tmp_path / "g.ply")
    assert export_splat(tmp_path / "g.ply", tmp_path / "g.splat") == 500
    records = read_splat(tmp_path / "g.splat")
    assert (tmp_path / "g.splat").stat().st_size == 500 * 32
    big = set(map(tuple, params["means"].data[:10].numpy().round(5)))
    assert set(map(tuple, records["position"][:10].round(5))) == big
    np.testing.assert_allclose(np.sort(records["scale"].prod(1)), np.sort(params["scales"].data.exp().prod(1).numpy()), rtol=1e-5)
    np.testing.assert_array_equal(records["rgba"][0], [51, 153, 255, 230])  # 0.9 opacity -> 230
    np.testing.assert_array_equal(records["rotation"][0], [128, 128, 128, 255])  # (0, 0, 0, 1) -> 255 clipped


def test_the_cli_writes_a_glb_and_an_obj_that_trimesh_reads_back(tmp_path):
    import trimesh

    save_ply(ball(count=6000), tmp_path / "g.ply")
    for suffix in ("glb", "obj"):
        out = tmp_path / f"mesh.{suffix}"
        assert main(["export-mesh", "--ply", str(tmp_path / "g.ply"), "--out", str(out), "--resolution", "48"]) == 0
        loaded = trimesh.load(out, force="mesh")
        assert len(loaded.faces) > 1000 and abs(float(np.linalg.norm(loaded.vertices, axis=1).mean()) - 0.52) < 0.03
    assert main(["export-mesh", "--ply", str(tmp_path / "g.ply"), "--out", str(tmp_path / "m.stl")]) == 2


def test_the_cli_meshes_a_faint_scene_saying_at_which_level_or_fails_with_faint_fraction_0(tmp_path, caplog):
    faint = ball(count=6000)
    faint["opacities"].data.fill_(-3.0)
    save_ply(faint, tmp_path / "faint.ply")
    command = ["export-mesh", "--ply", str(tmp_path / "faint.ply"), "--resolution", "48"]
    assert main([*command, "--out", str(tmp_path / "strict.glb"), "--faint-fraction", "0"]) == 3
    assert not (tmp_path / "strict.glb").exists() and "below the surface level 1" in caplog.text
    assert main([*command, "--out", str(tmp_path / "faint.glb")]) == 0
    assert (tmp_path / "faint.glb").is_file() and "a faint scene" in caplog.text and "--faint-fraction 0.25" in caplog.text


def test_benchmark_normals_of_a_ball_point_out_of_it_in_world_space():
    """Front view at 15 degrees elevation: where the ball is opaque, the depth-derived normal equals the radial
    direction of the surface point the pixel sees (mean cosine > 0.97), and the centre pixel faces the camera."""
    from segmentdreamer.export.gpteval3d import GPTEVAL3D_ELEVATION, depth_normals
    from segmentdreamer.scene.cameras import evaluation_ring
    from segmentdreamer.scene.gaussians import activate
    from segmentdreamer.scene.render import render

    cams = evaluation_ring(4, GPTEVAL3D_ELEVATION, width=96, height=96)[:1]
    out = render(**activate(ball(count=20_000)), viewmats=cams.viewmats, Ks=cams.Ks, width=96, height=96,
                 backgrounds=torch.ones(1, 3))
    with torch.no_grad():
        normals = depth_normals(out.depth, out.alpha, cams.Ks, cams.viewmats)[0]  # [3, H, W]
        z = (out.depth / out.alpha.clamp_min(1e-6))[0, 0]
        v, u = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
        k = cams.Ks[0]
        camera_points = torch.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z, torch.ones_like(z)])
        world = torch.einsum("ij,jhw->ihw", torch.linalg.inv(cams.viewmats[0]), camera_points)[:3]
        radial = torch.nn.functional.normalize(world, dim=0)
        inside = out.alpha[0, 0] > 0.99
        inner = inside & torch.nn.functional.max_pool2d((~inside).float()[None, None], 5, 1, 2)[0, 0].eq(0)  # off the rim
        cosine = (normals * radial).sum(0)[inner]
    assert inner.sum() > 500 and float(cosine.mean()) > 0.97, float(cosine.mean())
    towards_camera = torch.linalg.inv(cams.viewmats[0])[:3, 3]
    centre = normals[:, 48, 48]
    assert float(centre @ torch.nn.functional.normalize(towards_camera, dim=0)) > 0.97
    assert normals[:, ~(out.alpha[0, 0] >= 0.5)].abs().max() == 0  # no normal off the object


def test_gpteval3d_layout_files_and_prompts(tmp_path):
    import imageio.v3 as iio

    from segmentdreamer.export.gpteval3d import render_benchmark_views

    save_ply(ball(count=3000), tmp_path / "g.ply")
    folder = tmp_path / "root" / "methods" / "sctd" / "0" / "0"
    written = render_benchmark_views(tmp_path / "g.ply", folder, views=4, resolution=32)
    assert sorted(p.name for p in written) == sorted([f"rgb_{i}.png" for i in range(4)] + [f"normal_{i}.png" for i in range(4)])
    rgb, normal = iio.imread(folder / "rgb_0.png"), iio.imread(folder / "normal_0.png")
    assert rgb.shape == normal.shape == (32, 32, 3) and rgb[0, 0].tolist() == [255, 255, 255] and normal[0, 0].tolist() == [0, 0, 0]
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\nb\tA bee\ta bee.\na\tAn ant\tan ant.\n", encoding="utf-8")
    assert main(["gpteval3d-prompts", "--prompts", str(prompts), "--out", str(tmp_path / "root" / "prompts.json")]) == 0
    assert json.loads((tmp_path / "root" / "prompts.json").read_text(encoding="utf-8")) == ["A bee", "An ant"]  # file order
