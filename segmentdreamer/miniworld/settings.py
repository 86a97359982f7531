"""Settings of the miniworld's models: data, the three architectures, their training and the quality gates.

Loaded from the ``miniworld:`` block of ``workflow/miniworld.yaml`` by the strict typed loader (unknown keys, wrong
types and out-of-range values are refused naming the dotted key). Sizes are chosen so that all three models ship in
the repository (fp16 safetensors, each file < 16 MiB, about 45 MB in all): renders at 128 px, a VAE that downsamples
4x (latents 4 x 32 x 32), text towers of width 64 (their 49,408-row token table is most of a text tower's bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import yaml

from ..init.settings import PointESampling
from ..typed import AtLeastOne, ConfigError, NonNegative, Positive, Probability, Range, SeedRange, from_dict
from .world import held_out_captions, training_captions

Count = Annotated[int, AtLeastOne]
Rate = Annotated[float, Positive]


@dataclass
class DataSettings:
    """The image-text set every model trains on (:func:`~.dataset.render_set`)."""

    resolution: Annotated[int, Range(32, 512)] = 128
    draws: Count = 1
    """Draws (seeds) of each training caption."""
    views: Count = 12
    """Cameras per draw, from the trainer's camera distribution."""
    degrade_prob: Annotated[float, Probability] = 0.1
    point_draws: Count = 8
    """Point clouds per training caption for Point-E (one per draw)."""


@dataclass
class TrainingSettings:
    """One model's optimisation: AdamW, linear warm-up then cosine decay to a tenth."""

    steps: Count = 2000
    batch: Count = 64
    lr: Rate = 3e-4
    warmup: Annotated[int, NonNegative] = 100
    weight_decay: Annotated[float, NonNegative] = 0.0
    checkpoint_every: Count = 500


@dataclass
class ClipSettings:
    """A CLIP (transformers layout) trained contrastively on (render, text) pairs; its text tower is also the mini-SD's
    text encoder and, converted, Point-E's CLIP."""

    text_width: Count = 64
    text_layers: Count = 4
    vision_width: Count = 128
    vision_layers: Count = 4
    patch: Count = 8
    head_width: Count = 16
    projection: Count = 64
    caption_only_prob: Annotated[float, Probability] = 0.5
    """Per pair: the bare caption instead of the view prompt (CLIP scores bare captions; the SD conditioning views)."""
    training: TrainingSettings = field(default_factory=lambda: TrainingSettings(steps=3000, batch=256, lr=5e-4, weight_decay=0.1))


@dataclass
class VaeSettings:
    """An AutoencoderKL that downsamples 2^(len(channels) - 1) times."""

    channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: Count = 2
    kl_weight: Annotated[float, NonNegative] = 1e-6
    training: TrainingSettings = field(default_factory=lambda: TrainingSettings(steps=3000, batch=32, lr=2e-4))


@dataclass
class UnetSettings:
    """A UNet2DConditionModel on the VAE's latents, SD 2.1-base's noise schedule, epsilon prediction."""

    channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: Count = 1
    head_width: Count = 32
    caption_dropout: Annotated[float, Probability] = 0.1
    """Per example: the empty prompt instead of its own, so classifier-free guidance has an unconditional branch."""
    ema: Annotated[float, Range(0.0, 1.0, high_open=True)] = 0.999
    training: TrainingSettings = field(default_factory=lambda: TrainingSettings(steps=6000, batch=128, lr=3e-4))


@dataclass
class PointESettings:
    """Point-E's two transformers at a small width (the official module layout, :mod:`~segmentdreamer.init.transformer`)."""

    width: Count = 128
    layers: Count = 4
    heads: Count = 4
    grid_dim: Count = 64
    """The upsampler's image-grid feature size (its grid is zeros in text mode)."""
    text_dropout: Annotated[float, Probability] = 0.1
    base: TrainingSettings = field(default_factory=lambda: TrainingSettings(steps=3000, batch=64, lr=3e-4))
    upsampler: TrainingSettings = field(default_factory=lambda: TrainingSettings(steps=1500, batch=32, lr=3e-4))


@dataclass
class GateSettings:
    """Quality gates: the build fails (after writing every measured value) when one is not met."""

    vae_psnr: Rate = 30.0
    """dB, mean over held-in renders."""
    r_precision: Annotated[float, Probability] = 0.8
    """Mini-SD samples of held-in captions retrieved by the mini-CLIP (R@1, size-blind)."""
    chamfer: Rate = 0.06
    """World units: Point-E samples against the ground truth's Gaussians (symmetric mean nearest distance)."""
    captions: Count = 48
    """Held-in captions sampled per gate (and every held-out caption)."""
    sd_steps: Count = 50
    guidance_scale: Rate = 7.5
    pointe_steps: Count = PointESampling.steps


@dataclass
class MiniworldSettings:
    """Everything ``segmentdreamer miniworld`` builds."""

    seed: Annotated[int, SeedRange] = 0
    training_captions: Count = 320
    held_out_captions: Count = 40
    data: DataSettings = field(default_factory=DataSettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    vae: VaeSettings = field(default_factory=VaeSettings)
    unet: UnetSettings = field(default_factory=UnetSettings)
    pointe: PointESettings = field(default_factory=PointESettings)
    gates: GateSettings = field(default_factory=GateSettings)

    def captions(self) -> tuple[list[str], list[str]]:
        """(training captions, held-out captions)."""
        return training_captions(self.training_captions), held_out_captions(self.held_out_captions)

    def check(self) -> None:
        if self.clip.text_width % self.clip.head_width or self.clip.vision_width % self.clip.head_width:
            raise ConfigError("clip.head_width: must divide clip.text_width and clip.vision_width")
        if any(c % self.unet.head_width for c in self.unet.channels):
            raise ConfigError("unet.head_width: must divide every unet.channels entry")
        if self.data.resolution % 2 ** (len(self.vae.channels) - 1) or self.data.resolution % self.clip.patch:
            raise ConfigError("data.resolution: must be a multiple of the VAE's downsampling and of clip.patch")
        if self.pointe.width % self.pointe.heads:
            raise ConfigError("pointe.heads: must divide pointe.width")


def load_settings(path: str | Path) -> MiniworldSettings:
    """The ``miniworld:`` block of a workflow config file (all defaults when the block is absent)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return from_dict(MiniworldSettings, data.get("miniworld") or {}, "miniworld.")
