"""The ``gates`` stage: load the shipped models through the pipeline's loaders, measure the gates (:mod:`.gates`),
draw the loss curves and sample grids, write ``gates.json`` and ``MANIFEST.json``; fail when a gate is not met.

Figures (``<out>/figures/``): ``loss_curves.png``; ``sd_samples.png`` (per caption: the ground truth from the
front, side and back | mini-SD samples of the same three view prompts); ``pointe_samples.png`` (per caption: a
Point-E sample and the ground truth's Gaussians, seen from the side and from above).
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from ..atomic import write_json  # noqa: E402
from ..plan.layout import MINIWORLD_WORK_FILES, miniworld_file  # noqa: E402
from ..prior.conditioning import VIEW_SUFFIXES  # noqa: E402
from ..report.figures import save_png  # noqa: E402
from ..scene.cameras import orbit_cameras  # noqa: E402
from ..scene.gaussians import activate  # noqa: E402
from ..scene.render import render  # noqa: E402
from ..typed import to_dict  # noqa: E402
from .dataset import load_renders  # noqa: E402
from .gates import chamfer, retrieval, sd_samples, vae_psnr, view_prompts  # noqa: E402
from .loop import read_curve, read_steps  # noqa: E402
from .scenes import caption_scene, scene_points  # noqa: E402
from .settings import MiniworldSettings  # noqa: E402
from .world import WORLD_VERSION  # noqa: E402

log = logging.getLogger(__name__)

GRID_CAPTIONS = 6
POINTE_CAPTIONS = (12, 6)
"""Held-in and held-out captions Point-E samples for its gate (each sample: 2 x 64 Heun steps)."""
VIEW_AZIMUTHS = {"front": 0.0, "side": 90.0, "back": 180.0}
MODELS = ("clip", "vae", "unet", "pointe_base", "pointe_upsample")
"""The trainings of a build, by their names in the work folder."""
UNITS = {"vae_psnr": " dB", "r_precision": "", "chamfer": " world units"}


class GateError(RuntimeError):
    """A miniworld model below its quality gate (the message lists every failed gate with its value)."""


def evenly(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] if count > 1 else items[0] for i in range(count)]


def truth_views(caption: str, resolution: int, azimuths=tuple(VIEW_AZIMUTHS.values())) -> Tensor:
    """Renders [V, 3, H, W] of the caption's draw 0 from the horizon ring at mid radius and field of view, on black
    (the CPU renderer: a few views, and no CUDA extension to build for them)."""
    device = torch.device("cpu")
    n = len(azimuths)
    cameras = orbit_cameras(torch.full((n,), 75.0), torch.tensor(azimuths), torch.full((n,), 5.35), torch.full((n,), 0.46),
                            resolution, resolution)
    gaussians = {k: v.detach().to(device) for k, v in activate(caption_scene(caption)).items()}
    return render(**gaussians, viewmats=cameras.viewmats.to(device), Ks=cameras.Ks.to(device), width=resolution,
                  height=resolution, backgrounds=torch.zeros(n, 3, device=device)).rgb.clamp(0.0, 1.0).cpu()


def _r_precision(scorer, images: Tensor, captions: list[str]) -> dict:
    similarity = scorer.image_features(images) @ scorer.text_features(captions).T
    strict, blind = retrieval(similarity.cpu(), captions)
    return {"size_blind": float(blind.float().mean()), "strict": float(strict.float().mean()), "captions": len(captions),
            "chance": round(1.0 / len(captions), 4)}


def measure_gates(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool = True) -> dict:
    """Measure every gate on the shipped models; write gates.json, MANIFEST.json and the figures; raise GateError."""
    from diffusers import StableDiffusionPipeline

    from ..evaluate.clip_score import ClipScorer
    train_captions, held_out = settings.captions()
    train_set, held_out_set = load_renders(work)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipeline = StableDiffusionPipeline.from_pretrained(miniworld_file(out, "sd"), torch_dtype=dtype, local_files_only=True).to(device)
    pipeline.set_progress_bar_config(disable=True)
    scorer = ClipScorer.from_pretrained(miniworld_file(out, "clip"), device)
    gate = settings.gates
    results: dict = {}

    stride = max(1, len(train_set) // 256)
    held_in_images = train_set.floats(torch.arange(0, len(train_set), stride)[:256])
    results["vae_psnr_db"] = {"held_in": float(vae_psnr(pipeline.vae, held_in_images).mean()),
                              "held_out": float(vae_psnr(pipeline.vae, held_out_set.floats(torch.arange(len(held_out_set)))).mean())}

    generator = torch.Generator().manual_seed(settings.seed)
    sampled = {"held_in": evenly(train_captions, gate.captions), "held_out": held_out}
    for name, captions in sampled.items():
        images = sd_samples(pipeline, view_prompts(captions, generator), gate.sd_steps, gate.guidance_scale, settings.seed)
        results[f"sd_r_precision_{name}"] = _r_precision(scorer, images, captions)
        truth = torch.stack([truth_views(c, settings.data.resolution, (0.0,))[0] for c in captions])
        results[f"truth_r_precision_{name}"] = _r_precision(scorer, truth, captions)

    results["pointe_chamfer"] = _pointe_gate(settings, out, train_captions, held_out, device)
    measured = {"vae_psnr": results["vae_psnr_db"]["held_in"], "r_precision": results["sd_r_precision_held_in"]["size_blind"],
                "chamfer": results["pointe_chamfer"]["held_in"]}
    results["thresholds"] = {"vae_psnr": gate.vae_psnr, "r_precision": gate.r_precision, "chamfer": gate.chamfer}
    results["passed"] = {name: (value <= results["thresholds"][name]) if name == "chamfer" else (value >= results["thresholds"][name])
                         for name, value in measured.items()}
    write_json(results, Path(miniworld_file(out, "gates")))
    _loss_figure(work, Path(miniworld_file(out, "loss_curves")))
    _sd_grid(pipeline, evenly(train_captions, GRID_CAPTIONS // 2) + held_out[: GRID_CAPTIONS // 2], settings, device,
             Path(miniworld_file(out, "sd_samples")))
    write_json(manifest(settings, work, results, " ".join(["segmentdreamer", *sys.argv[1:]])), miniworld_file(out, "manifest"))
    failed = [f"{name}: {measured[name]:.3g}{UNITS[name]} {'>' if name == 'chamfer' else '<'} {results['thresholds'][name]:g}"
              for name, ok in results["passed"].items() if not ok]
    if failed:
        raise GateError(f"miniworld gates not met: {'; '.join(failed)} (every value: {miniworld_file(out, 'gates')})")
    return results


def _pointe_gate(settings: MiniworldSettings, out: Path, train_captions: list[str], held_out: list[str],
                 device: torch.device) -> dict:
    from ..init import PointE, PointESampling, pointe_frame

    pointe = PointE.from_folder(miniworld_file(out, "pointe"), miniworld_file(out, "pointe_clip"), device=device)
    pointe.sampling = PointESampling(steps=settings.gates.pointe_steps)
    values, figure_rows = {}, []
    for name, captions in (("held_in", evenly(train_captions, POINTE_CAPTIONS[0])), ("held_out", evenly(held_out, POINTE_CAPTIONS[1]))):
        distances, floors = [], []
        for index, caption in enumerate(captions):
            xyz, rgb = pointe.sample(caption, seed=settings.seed + index, progress=False)
            sample, truth = pointe_frame(xyz), caption_scene(caption, 0)["means"].detach()
            distances.append(chamfer(sample, truth))
            floors.append(chamfer(caption_scene(caption, 1)["means"].detach(), truth))
            if len(figure_rows) < GRID_CAPTIONS:
                figure_rows.append((caption, sample, rgb, *scene_points(caption, 0, len(xyz))))
        values[name] = sum(distances) / len(distances)
        values[f"{name}_truth_to_truth"] = sum(floors) / len(floors)
        values[f"{name}_captions"] = len(captions)
    _pointe_figure(figure_rows, Path(miniworld_file(out, "pointe_samples")))
    return values


def _loss_figure(work: Path, path: Path) -> None:
    names = MODELS
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), layout="constrained")
    for ax, name in zip(axes, names):
        curve = read_curve(work, name)
        ax.plot([r["step"] for r in curve], [r["loss"] for r in curve], linewidth=0.8)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0].set_ylabel("training loss")
    save_png(figure, path)


def _sd_grid(pipeline, captions: list[str], settings: MiniworldSettings, device: torch.device, path: Path) -> None:
    views = list(VIEW_AZIMUTHS)
    prompts = [caption + VIEW_SUFFIXES[view] for caption in captions for view in views]
    samples = sd_samples(pipeline, prompts, settings.gates.sd_steps, settings.gates.guidance_scale, settings.seed)
    figure, axes = plt.subplots(len(captions), 2 * len(views), figsize=(2 * len(views) * 1.6, len(captions) * 1.75),
                                squeeze=False, layout="constrained")
    for row, caption in enumerate(captions):
        truth = truth_views(caption, settings.data.resolution)
        for column, view in enumerate(views):
            for offset, image, label in ((0, truth[column], f"truth, {view}"), (len(views), samples[row * len(views) + column], f"mini-SD, {view}")):
                ax = axes[row, column + offset]
                ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(label, fontsize=7)
        axes[row, 0].set_ylabel(caption, fontsize=6, rotation=0, ha="right", va="center")
    save_png(figure, path)


def _pointe_figure(rows: list[tuple], path: Path) -> None:
    figure, axes = plt.subplots(len(rows), 4, figsize=(4 * 1.8, len(rows) * 1.9), squeeze=False, layout="constrained")
    for row, (caption, sample, sample_rgb, truth, truth_rgb) in enumerate(rows):
        for column, (points, colours, label) in enumerate(((sample, sample_rgb, "Point-E"), (truth, truth_rgb, "truth"))):
            for view, (a, b) in enumerate(((0, 2), (0, 1))):
                ax = axes[row, 2 * column + view]
                ax.scatter(points[:, a], points[:, b], c=colours.clamp(0, 1).numpy(), s=0.5)
                ax.set_xlim(-0.6, 0.6)
                ax.set_ylim(-0.45 if b == 2 else -0.6, 0.75 if b == 2 else 0.6)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{label}, {'side (x-z)' if b == 2 else 'top (x-y)'}", fontsize=7)
        axes[row, 0].set_ylabel(caption, fontsize=6, rotation=0, ha="right", va="center")
    save_png(figure, path)


def manifest(settings: MiniworldSettings, work: Path, gates: dict, command: str) -> dict:
    """What the shipped folder holds and how it was made (MANIFEST.json)."""
    times_path = work / MINIWORLD_WORK_FILES["times"]
    return {
        "world_version": WORLD_VERSION,
        "command": command,
        "commit": _commit(),
        "machine": {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu",
                    "torch": torch.__version__},
        "seconds_per_stage": json.loads(times_path.read_text()) if times_path.is_file() else {},
        "final_losses": {name: (read_curve(work, name) or [{"loss": None}])[-1]["loss"] for name in MODELS},
        "steps": {name: read_steps(work, name) for name in MODELS},
        "gates": gates,
        "settings": to_dict(settings),
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


__all__ = ["GateError", "manifest", "measure_gates"]
