"""The five losses distilling a latent under the analytic prior, at several guidance scales.

Under :class:`~segmentdreamer.prior.analytic.AnalyticPrior` the text condition is a known Gaussian mixture, so
what each loss converges to can be scored exactly: the distance to the nearest text mode, the log-likelihood
under the text mixture, the latent's norm (the analogue of over-saturation: CFG's fixed point extrapolates
away from the negative condition) and the diversity across seeds (mean pairwise distance of the results).

Each run: B = 4 latents (the "views", one text condition) from N(0, 0.1^2), Adam (lr 0.01) on the loss's own
gradient for ``iterations`` steps with the loss's step schedule compressed onto them (step = i x 5000 /
iterations), the loss's official settings but the guidance scale; ``seeds`` runs per (method, g), the loss
and the start seeded alike.

The same through a 3D scene (``subject`` "3DGS via a linear map"): 48 Gaussians in a ball, rendered from 4
fixed views (the evaluation ring at 15 degrees, 8 x 8 pixels, white background), each view's image mapped to
its latent by one fixed linear map (4 x 192, random, seeded: a stand-in for the VAE encoder that keeps the
prior exact); the loss's gradient flows through the map and the renderer into the scene (Adam on means,
colours, opacities, scales). The four views must then reach the text modes with one scene.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..losses import LOSSES, LossInput, loss_class
from ..prior.analytic import AnalyticPrior, GaussianMixture
from ..prior.conditioning import view_conditioning

TEXT = GaussianMixture.of([[1.0, 0.5, -0.5, 0.0], [-0.5, 1.0, 0.5, 0.5]], [0.3, 0.3])
"""Two text modes in 4 dimensions."""
NEGATIVE = GaussianMixture.of([[0.5, 0.5, 0.0, 0.5]], [0.5])
"""The negative prompt's distribution, between the text modes and wider."""
SCENE_SUBJECT = "3DGS via a linear map"


def distil(method: str, guidance_scale: float, seed: int, iterations: int, prior: AnalyticPrior) -> torch.Tensor:
    """The B = 4 latents [4, D] one run ends with."""
    cond = view_conditioning(prior.prompt_embeddings(), torch.zeros(4))
    loss = loss_class(method)(seed=seed, guidance_scale=guidance_scale)
    start = torch.Generator().manual_seed(seed)
    z0 = (0.1 * torch.randn((4, *prior.shape), generator=start, dtype=torch.float64)).requires_grad_()
    optimizer = torch.optim.Adam([z0], lr=0.01)
    for i in range(iterations):
        optimizer.zero_grad()
        step = i * 5000 // iterations
        loss(prior, LossInput(latents=z0, cond=cond, step=step, total_steps=5000, images=z0)).loss.backward()
        optimizer.step()
    return z0.detach().reshape(4, -1)


SCENE_VIEWS, SCENE_PIXELS, SCENE_GAUSSIANS = 4, 8, 48
"""The 3D setting: views, image size, Gaussians."""


def scene_encoder(dim: int) -> torch.Tensor:
    """The fixed linear map [dim, 3 x 8 x 8] from a view's (image - white) to its latent."""
    generator = torch.Generator().manual_seed(7)
    return torch.randn(dim, 3 * SCENE_PIXELS**2, generator=generator, dtype=torch.float64) * (6.0 / math.sqrt(3 * SCENE_PIXELS**2))


def distil_scene(method: str, guidance_scale: float, seed: int, iterations: int, prior: AnalyticPrior) -> torch.Tensor:
    """The 4 view latents [4, D] of a small 3DGS distilled through the fixed linear map (module docstring)."""
    from ..scene.cameras import evaluation_ring
    from ..scene.gaussians import activate, from_points, sphere_points
    from ..scene.render import render

    cameras = evaluation_ring(SCENE_VIEWS, 15.0, width=SCENE_PIXELS, height=SCENE_PIXELS)
    encoder = scene_encoder(math.prod(prior.shape))
    points = sphere_points(SCENE_GAUSSIANS, radius=0.4, generator=torch.Generator().manual_seed(seed))
    params = from_points(points, colors=torch.full((SCENE_GAUSSIANS, 3), 0.5), opacity=0.5)
    optimizer = torch.optim.Adam([{"params": [params[name]], "lr": lr}
                                  for name, lr in (("means", 0.01), ("sh0", 0.05), ("opacities", 0.05), ("scales", 0.01))])
    loss = loss_class(method)(seed=seed, guidance_scale=guidance_scale)
    cond = view_conditioning(prior.prompt_embeddings(), torch.zeros(SCENE_VIEWS))
    white = torch.ones(SCENE_VIEWS, 3)
    for i in range(iterations):
        optimizer.zero_grad()
        images = render(**activate(params), viewmats=cameras.viewmats, Ks=cameras.Ks, width=SCENE_PIXELS, height=SCENE_PIXELS,
                        backgrounds=white).rgb
        latents = ((images.double() - 1.0).flatten(1) @ encoder.T).reshape(SCENE_VIEWS, *prior.shape)
        loss(prior, LossInput(latents=latents, cond=cond, step=i * 5000 // iterations, total_steps=5000, images=latents)).loss.backward()
        optimizer.step()
    return latents.detach().reshape(SCENE_VIEWS, -1)


def score(latents: torch.Tensor, text: GaussianMixture) -> dict[str, float]:
    """Metrics of the final latents [N, D] of one (method, g): see the module docstring."""
    nearest = (latents[:, None] - text.means[None]).norm(dim=-1).min(dim=1).values
    pairwise = torch.pdist(latents) if latents.shape[0] > 1 else torch.zeros(1)
    return {"distance_to_mode": float(nearest.mean()), "log_likelihood": float(text.log_prob(latents).mean()),
            "norm": float(latents.norm(dim=1).mean()), "diversity": float(pairwise.mean())}


def measure(methods: tuple[str, ...] | None = None, guidance_scales=(1.0, 3.0, 7.5), seeds: int = 4, iterations: int = 1000,
            scene_guidance_scales=(1.0, 7.5), scene_seeds: int = 2, scene_iterations: int = 200) -> pd.DataFrame:
    """One row per (subject, method, g); diversity over the first latent (view) of every seed's run.
    ``methods``: None for every registered method (a plugin's loss too); ``scene_iterations`` 0 leaves the 3D
    setting out."""
    methods = tuple(LOSSES) if methods is None else methods
    prior = AnalyticPrior(TEXT, NEGATIVE, shape=(4, 1, 1))
    settings = [("latent", distil, guidance_scales, seeds, iterations)]
    if scene_iterations:
        settings.append((SCENE_SUBJECT, distil_scene, scene_guidance_scales, scene_seeds, scene_iterations))
    rows = []
    for subject, run, scales, count, steps in settings:
        for method, g in itertools.product(methods, scales):
            runs = [run(method, g, seed, steps, prior) for seed in range(count)]
            metrics = score(torch.cat(runs), TEXT)
            metrics["diversity"] = score(torch.stack([r[0] for r in runs]), TEXT)["diversity"]
            rows.append({"subject": subject, "method": method, "guidance_scale": g, **metrics})
    reference = score(TEXT.sample(4 * seeds, torch.Generator().manual_seed(0)), TEXT)
    rows.append({"subject": "reference", "method": "samples of the text mixture", "guidance_scale": float("nan"), **reference})
    return pd.DataFrame(rows)


def write_analytic_losses(prefix: str | Path, **settings) -> list[Path]:
    """PREFIX.csv, PREFIX.md and PREFIX.png (each metric against g, one line per method)."""
    import matplotlib.pyplot as plt

    from ..atomic import write_text
    from ..report.figures import save_png  # importing it sets the Agg backend

    table = measure(**settings)
    prefix = Path(prefix)
    paths = [prefix.with_name(prefix.name + suffix) for suffix in (".csv", ".md", ".png")]
    write_text(table.to_csv(index=False, float_format="%.4g"), paths[0])
    columns = ("subject", "method", "guidance_scale", "distance_to_mode", "log_likelihood", "norm", "diversity")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(row[c]) if c in ("subject", "method") else f"{row[c]:.3g}" for c in columns) + " |")
    write_text("\n".join(lines) + "\n", paths[1])
    metrics = columns[3:]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.4), dpi=110)
    reference = table[table["guidance_scale"].isna()].iloc[0]
    for axis, metric in zip(axes, metrics):
        for (subject, method), group in table.dropna(subset=["guidance_scale"]).groupby(["subject", "method"], sort=False):
            scene = subject == SCENE_SUBJECT
            axis.plot(group["guidance_scale"], group[metric], "s--" if scene else "o-", label=f"{method} (3DGS)" if scene else method,
                      color=f"C{list(LOSSES).index(method) % 10}" if method in LOSSES else None, alpha=0.6 if scene else 1.0)
        axis.axhline(reference[metric], color="grey", linestyle="--", linewidth=1, label="text samples")
        axis.set(xlabel="guidance scale", title=metric.replace("_", " "))
        if metric == "log_likelihood":
            axis.set_yscale("symlog")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    save_png(figure, paths[2])
    return paths


def summary(table: pd.DataFrame, subject: str = "latent") -> dict[str, np.ndarray]:
    """method -> norms in guidance-scale order for one subject (what the tests read)."""
    runs = table[table["subject"] == subject].dropna(subset=["guidance_scale"])
    return {method: group.sort_values("guidance_scale")["norm"].to_numpy() for method, group in runs.groupby("method")}
