"""CPU (pure PyTorch) renderer vs gsplat's CUDA rasterizer on the same random scene.

    python benchmarks/render_parity.py [--gaussians 20000] [--size 128] [--json OUT.json]

Prints a table of mean / max absolute differences per output (rgb, alpha, depth, disparity) and per
gradient (means, scales, opacities, colours), and writes them as JSON. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse

import torch
from bench_common import Column, machine, report

from segmentdreamer.scene.cameras import evaluation_ring
from segmentdreamer.scene.gaussians import activate, from_points, sphere_points
from segmentdreamer.scene.render import render


def random_scene(count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = from_points(sphere_points(count, generator=gen))
    params["quats"].data = torch.randn(count, 4, generator=gen)
    params["scales"].data += 0.3 * torch.randn(count, 3, generator=gen)
    params["opacities"].data = 2.0 * torch.randn(count, generator=gen)
    params["sh0"].data = torch.randn(count, 1, 3, generator=gen)
    return {k: v.detach().double() for k, v in activate(params).items()}


def compare(count: int, size: int, views: int = 4) -> dict[str, dict[str, float]]:
    scene = random_scene(count)
    cams = evaluation_ring(views, elevation_deg=15.0, width=size, height=size)
    background = torch.rand(views, 3, generator=torch.Generator().manual_seed(1))
    results, grads = {}, {}
    for backend, device, dtype in (("torch", "cpu", torch.float64), ("gsplat", "cuda", torch.float32)):
        inputs = {k: v.detach().to(device, dtype).clone().requires_grad_() for k, v in scene.items()}
        out = render(**inputs, viewmats=cams.viewmats.to(device, dtype), Ks=cams.Ks.to(device, dtype), width=size, height=size,
                     backgrounds=background.to(device, dtype), backend=backend)
        weights = torch.linspace(0.5, 1.5, size * size, device=device, dtype=dtype).reshape(size, size)
        ((out.rgb * weights).sum() + (out.alpha * weights).sum()).backward()
        results[backend] = {name: getattr(out, name).detach().double().cpu() for name in ("rgb", "alpha", "depth", "disparity")}
        grads[backend] = {name: inputs[name].grad.double().cpu() for name in ("means", "scales", "opacities", "colors")}
    table = {}
    for name in results["torch"]:
        diff = (results["torch"][name] - results["gsplat"][name]).abs()
        table[name] = {"mean_abs_diff": diff.mean().item(), "max_abs_diff": diff.max().item()}
    for name in grads["torch"]:
        a, b = grads["torch"][name], grads["gsplat"][name]
        table[f"grad_{name}"] = {"mean_abs_diff": (a - b).abs().mean().item(),
                                 "relative_l2": ((a - b).norm() / b.norm().clamp_min(1e-30)).item()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaussians", type=int, default=20000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    table = compare(args.gaussians, args.size)
    rows = [{"output": name, **row} for name, row in table.items()]
    columns = [Column("output", "output", "{}", 16), Column("mean_abs_diff", "mean |diff|", "{:.3e}", 14),
               Column("max_abs_diff", "max |diff|", "{:.3e}", 14), Column("relative_l2", "relative L2", "{:.3e}", 14)]
    report(f"render parity, {args.gaussians} Gaussians, 4 views {args.size}x{args.size}; {machine()}", columns, rows,
           args.json, gaussians=args.gaussians, size=args.size)


if __name__ == "__main__":
    main()
