"""Build the miniworld's models, one resumable stage at a time (``segmentdreamer miniworld STAGE``; the workflow's
``miniworld_models`` target runs them in order):

====================  ==========================================================  ==============================
stage                 does                                                        writes
====================  ==========================================================  ==============================
``renders``           renders the training set and the held-out captions' views   ``<work>/renders.pt``
``clip``              trains the mini-CLIP                                        ``<out>/clip/``
``vae``               trains the VAE, measures its latent scale                   ``<work>/vae/``
``unet``              trains the UNet on the VAE's latents and CLIP's text states ``<out>/sd/``
``pointe``            trains Point-E's base and upsampler                         ``<out>/pointe/``
``gates``             loads the three through the pipeline's loaders, measures    ``<out>/gates.json``,
                      the gates, draws loss curves and sample grids, writes the   ``<out>/MANIFEST.json``,
                      manifest; fails when a gate is not met                      ``<out>/figures/``
====================  ==========================================================  ==============================

Stages after ``renders`` read what earlier ones wrote: the UNet and Point-E train on the shipped (fp16) CLIP, so
what they learn from is what users load. Each trainer resumes from its checkpoint in ``<work>``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..atomic import write_json
from ..plan.layout import MINIWORLD_WORK_FILES, miniworld_file
from .dataset import RenderedSet, load_renders, render_set, save_renders
from .settings import MiniworldSettings

log = logging.getLogger(__name__)

STAGES = ("renders", "clip", "vae", "unet", "pointe", "gates")
HELD_OUT_VIEWS = 4


def stage_renders(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    if (work / MINIWORLD_WORK_FILES["renders"]).is_file():
        return
    train, held_out = settings.captions()
    data = settings.data
    sets = {"train": render_set(train, data.draws, data.views, data.resolution, settings.seed, device, data.degrade_prob, progress),
            "held_out": render_set(held_out, 1, HELD_OUT_VIEWS, data.resolution, settings.seed + 1, device, 0.0, progress)}
    save_renders(sets, work / MINIWORLD_WORK_FILES["renders"])


def stage_clip(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .formats import write_clip
    from .train_clip import train_clip

    train, _ = load_renders(work)
    clip = train_clip(_on(train, device), settings, work, device, progress)
    write_clip(clip, Path(miniworld_file(out, "clip")), settings.data.resolution)


def stage_vae(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .train_vae import train_vae

    train, _ = load_renders(work)
    train_vae(_on(train, device), settings, work, device, progress).save_pretrained(work / MINIWORLD_WORK_FILES["vae"])


def stage_unet(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from diffusers import AutoencoderKL

    from .formats import write_stable_diffusion
    from .train_unet import train_unet

    train, _ = load_renders(work)
    clip = load_clip(Path(miniworld_file(out, "clip")), device)
    vae = AutoencoderKL.from_pretrained(work / MINIWORLD_WORK_FILES["vae"], torch_dtype=torch.float32).to(device).eval().requires_grad_(False)
    unet = train_unet(_on(train, device), vae, clip, settings, work, device, progress)
    write_stable_diffusion(unet, vae, clip, Path(miniworld_file(out, "sd")))


def stage_pointe(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .formats import write_pointe
    from .train_pointe import train_pointe

    train, _ = settings.captions()
    clip = load_clip(Path(miniworld_file(out, "clip")), device)
    base, upsampler = train_pointe(train, text_features(clip, train), settings, work, device, progress)
    write_pointe(base, upsampler, clip, Path(miniworld_file(out, "pointe")))


def stage_gates(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .report import measure_gates

    measure_gates(settings, out, work, device, progress)


def load_clip(folder: Path, device: torch.device):
    """The shipped mini-CLIP (fp32 on ``device``, eval, no grad)."""
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(folder, dtype=torch.float32).to(device).eval().requires_grad_(False)


@torch.no_grad()
def text_features(clip, captions: list[str]) -> torch.Tensor:
    """L2-normalised projected text features [C, D] of bare captions."""
    from .train_clip import clip_processor

    ids = clip_processor(clip.config.vision_config.image_size).tokenizer(
        captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids.to(clip.device)
    features = clip.get_text_features(input_ids=ids)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    return torch.nn.functional.normalize(features.float(), dim=-1)


def _on(data: RenderedSet, device: torch.device) -> RenderedSet:
    data.images = data.images.to(device)
    return data


STAGE_FUNCTIONS = {"renders": stage_renders, "clip": stage_clip, "vae": stage_vae, "unet": stage_unet,
                   "pointe": stage_pointe, "gates": stage_gates}


def run_stage(stage: str, settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool = True) -> float:
    """Run one stage; returns its wall time (seconds), also appended to ``<work>/times.json``."""
    import json

    started = time.perf_counter()
    STAGE_FUNCTIONS[stage](settings, Path(out), Path(work), device, progress)
    seconds = round(time.perf_counter() - started, 1)
    times_path = Path(work) / MINIWORLD_WORK_FILES["times"]
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    times[stage] = seconds
    write_json(times, times_path)
    log.info("miniworld %s: %.0f s", stage, seconds)
    return seconds
