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
import platform
import subprocess
import time
from pathlib import Path

import torch

from ..atomic import atomic_target, write_json
from ..typed import to_dict
from .dataset import RenderedSet, render_set
from .loop import read_curve
from .settings import MiniworldSettings
from .world import WORLD_VERSION, held_out_captions, training_captions

log = logging.getLogger(__name__)

STAGES = ("renders", "clip", "vae", "unet", "pointe", "gates")
HELD_OUT_VIEWS = 4


def captions_of(settings: MiniworldSettings) -> tuple[list[str], list[str]]:
    """(training captions, held-out captions) of the settings."""
    return training_captions(settings.training_captions), held_out_captions(settings.held_out_captions)


def _renders(work: Path) -> tuple[RenderedSet, RenderedSet]:
    path = work / "renders.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the `renders` stage first")
    stored = torch.load(path, weights_only=False)
    return stored["train"], stored["held_out"]


def stage_renders(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    if (work / "renders.pt").is_file():
        return
    train, held_out = captions_of(settings)
    data = settings.data
    sets = {"train": render_set(train, data.draws, data.views, data.resolution, settings.seed, device, data.degrade_prob, progress),
            "held_out": render_set(held_out, 1, HELD_OUT_VIEWS, data.resolution, settings.seed + 1, device, 0.0, progress)}
    for rendered in sets.values():
        rendered.images = rendered.images.cpu()
    with atomic_target(work / "renders.pt") as tmp:
        torch.save(sets, tmp)


def stage_clip(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .formats import write_clip
    from .train_clip import train_clip

    train, _ = _renders(work)
    clip = train_clip(_on(train, device), settings, work, device, progress)
    write_clip(clip, out / "clip", settings.data.resolution)


def stage_vae(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .train_vae import train_vae

    train, _ = _renders(work)
    train_vae(_on(train, device), settings, work, device, progress).save_pretrained(work / "vae")


def stage_unet(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from diffusers import AutoencoderKL

    from .formats import write_stable_diffusion
    from .train_unet import train_unet

    train, _ = _renders(work)
    clip = load_clip(out / "clip", device)
    vae = AutoencoderKL.from_pretrained(work / "vae", torch_dtype=torch.float32).to(device).eval().requires_grad_(False)
    unet = train_unet(_on(train, device), vae, clip, settings, work, device, progress)
    write_stable_diffusion(unet, vae, clip, out / "sd")


def stage_pointe(settings: MiniworldSettings, out: Path, work: Path, device: torch.device, progress: bool) -> None:
    from .formats import write_pointe
    from .train_pointe import train_pointe

    train, _ = captions_of(settings)
    clip = load_clip(out / "clip", device)
    base, upsampler = train_pointe(train, text_features(clip, train), settings, work, device, progress)
    write_pointe(base, upsampler, clip, out / "pointe")


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
    times_path = Path(work) / "times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    times[stage] = seconds
    write_json(times, times_path)
    log.info("miniworld %s: %.0f s", stage, seconds)
    return seconds


def manifest(settings: MiniworldSettings, work: Path, gates: dict, command: str) -> dict:
    """What the shipped folder holds and how it was made (MANIFEST.json)."""
    import json

    times_path = work / "times.json"
    return {
        "world_version": WORLD_VERSION,
        "command": command,
        "commit": _commit(),
        "machine": {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu",
                    "torch": torch.__version__},
        "seconds_per_stage": json.loads(times_path.read_text()) if times_path.is_file() else {},
        "final_losses": {name: (read_curve(work, name) or [{"loss": None}])[-1]["loss"]
                         for name in ("clip", "vae", "unet", "pointe_base", "pointe_upsample")},
        "gates": gates,
        "settings": to_dict(settings),
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
