"""Typed configuration of a training run: dataclasses with defaults, ranges, strict YAML loading and dumping.

Every setting of a run lives in a dataclass below (defaults: the official recipe, docs/method.md,
"Training recipe"). :func:`load_config` reads YAML into them through the strict loader of
:mod:`segmentdreamer.typed`, which rejects unknown keys, wrong types and out-of-range values with the
dotted key path (``densify.grad_treshold: unknown key``, ``loss.approx: expected a boolean, got 'false'``),
so a typo never silently becomes a default. The ``loss`` block is typed by the method's settings class
(:mod:`segmentdreamer.losses.settings`); this module imports no torch.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from .typed import (
    AtLeastOne,
    ConfigError,
    NonNegative,
    Positive,
    Probability,
    Range,
    SeedRange,
    check_ordered,
    from_dict,
    to_dict,
)

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "TrainConfig", "apply_override", "dump_config", "from_dict", "load_config", "to_dict", "validated"]

PRIOR_KEYS = ("models.sd", "prior_dtype", "device", "compile_prior", "text_cache")
"""Run-config keys that decide the prior: assets trained in one process (multi_asset.py) must agree on them."""


def setting(config: Any, key: str) -> Any:
    """A config's value at a dotted key (``models.sd``)."""
    return functools.reduce(getattr, key.split("."), config)


def prior_settings(config: Any) -> tuple:
    """The values of :data:`PRIOR_KEYS` in a TrainConfig: runs with equal ones can share one prior."""
    return tuple(setting(config, key) for key in PRIOR_KEYS)

DEFAULT_NEGATIVE_PROMPT = (
    "unrealistic, blurry, low quality, out of focus, ugly, low contrast, dull, low-resolution, oversaturation."
)
"""The unconditional branch of CFG (the official code's negative prompt)."""

PositivePair = Annotated[tuple[float, float], Positive]
Fraction = Annotated[float, Range(0.0, 1.0, low_open=True)]
Count = Annotated[int, AtLeastOne]
Iteration = Annotated[int, NonNegative]
FieldOfView = Annotated[tuple[float, float], Range(0.0, math.pi, low_open=True, high_open=True)]


@dataclass
class ModelsConfig:
    """Each entry: a local folder or a hub id already in the local Hugging Face cache."""

    sd: str = "stabilityai/stable-diffusion-2-1-base"
    """Stable Diffusion 2.1-base in diffusers layout."""


@dataclass
class CameraConfig:
    """Training camera sampler (docs/method.md, "Cameras, init and renders"). Angles in degrees, fov in radians (horizontal)."""

    polar_range: Annotated[tuple[float, float], Range(0.0, 180.0)] = (45.0, 105.0)
    azimuth_range: Annotated[tuple[float, float], Range(-360.0, 360.0)] = (-180.0, 180.0)
    radius_range: PositivePair = (5.2, 5.5)
    fov_range: FieldOfView = (0.32, 0.60)
    rand_cam_gamma: Annotated[float, Positive] = 1.0
    jitter_center: Annotated[float, NonNegative] = 0.05
    """Eye jitter U(-j/2, j/2) per axis."""
    jitter_target: Annotated[float, NonNegative] = 0.05
    jitter_up: Annotated[float, NonNegative] = 0.01
    pool_size: Count = 10
    """Cameras drawn together, sharing one field of view; a batch pops views from the pool."""
    widen_every: Count = 500
    radius_shrink: Fraction = 0.95
    radius_limit: PositivePair = (3.5, 5.0)
    fov_low_shrink: Fraction = 0.75
    fov_low_limit: Annotated[float, Range(0.0, math.pi, low_open=True, high_open=True)] = 0.16

    def check(self) -> None:
        check_ordered(self, "polar_range", "azimuth_range", "radius_range", "fov_range", "radius_limit")


@dataclass
class OptimConfig:
    """Per-parameter Adam, learning rates log-linear from first to last over the run (docs/method.md, "Training recipe")."""

    means_lr: PositivePair = (5.6e-4, 5.6e-6)
    colour_lr: PositivePair = (5e-3, 3e-3)
    colour_rest_divisor: Annotated[float, Positive] = 20.0
    opacity_lr: Annotated[float, NonNegative] = 0.05
    scale_lr: PositivePair = (5e-3, 1e-3)
    rotation_lr: PositivePair = (1e-3, 2e-4)
    adam_eps: Annotated[float, Positive] = 1e-15
    clip_start: Annotated[float, Positive] = 2.0
    clip_growth: Annotated[float, NonNegative] = 6.0
    clip_ramp: Count = 1000
    """Each parameter tensor's gradient norm is clipped to clip_start + clip_growth * min(1, it / clip_ramp)."""


@dataclass
class DensifyConfig:
    """Clone / split / prune / opacity reset (docs/method.md, "Training recipe")."""

    start: Iteration = 200
    stop: Iteration = 2900
    every: Count = 100
    grad_threshold: Annotated[float, NonNegative] = 7.5e-4
    clone_max_scale: Annotated[float, Positive] = 0.0105
    split_count: Count = 2
    split_scale_divisor: Annotated[float, Positive] = 1.6
    prune_opacity: Annotated[float, Probability] = 0.005
    prune_scale_after: Iteration = 300
    prune_max_scale: Annotated[float, Positive] = 0.35
    prune_screen_radius: bool = False
    """The official screen-radius prune never fires (its statistic is zeroed just before): off."""
    max_screen_radius: Annotated[float, Positive] = 20.0
    reset_every: Count = 300
    reset_until: Iteration = 3000
    reset_opacity: Annotated[float, Probability] = 0.01
    stats: Literal["last_view", "all_views"] = "last_view"
    """last_view: only the batch's last view feeds the statistic (official code); all_views: every view."""


@dataclass
class AugmentConfig:
    """Training-time augmentations (docs/method.md, "Training recipe"); each can be switched off for an ablation."""

    scale_noise: Annotated[float, NonNegative] = 0.1118
    """s' = max(0, s (1 + scale_noise n)), n ~ N(0, 1) per Gaussian, axis and view; 0 disables."""
    flip: bool = True
    disparity_prob: Annotated[float, Probability] = 0.2
    """Probability that the VAE encodes the disparity map instead of RGB."""
    random_background_prob: Annotated[float, Probability] = 0.33
    """Per view: a uniform random solid colour instead of black."""


@dataclass
class RegularizerConfig:
    tv_rgb: Annotated[float, NonNegative] = 1.0
    tv_disparity: Annotated[float, NonNegative] = 1.0
    scale: Annotated[float, NonNegative] = 1.0


@dataclass
class DivergenceConfig:
    """What counts as a diverged run, and what a non-finite iteration does (segmentdreamer/training/divergence.py)."""

    on_nan: Literal["stop", "skip"] = "stop"
    """stop: a non-finite loss fails the run (found at the next log flush, no per-iteration sync); skip: an
    iteration whose loss is non-finite makes no update (costs one device-to-host read per iteration). A loss is
    non-finite also where the prior's prediction was: the losses' nan_to_num would otherwise train on zeros."""
    max_skipped_fraction: Annotated[float, Range(0.0, 1.0)] = 0.1
    """With on_nan: skip, a run that skipped more than this share of its iterations was not trained: it
    diverges instead of becoming a result."""
    max_position: Annotated[float, Positive] = 1000.0
    """A Gaussian farther than this from the origin on any axis (world units; the cameras sit within 5.5)
    means the optimisation blew up: the run fails at the next check."""


@dataclass
class TrainConfig:
    """One training run: a prompt, a method and its loss settings, an init, and the 3DGS recipe."""

    prompt: str = ""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    method: str = "sctd"
    """A registered method (segmentdreamer.losses.LOSSES: sctd, sds, ism, cds, gcs, and any plugin's)."""
    loss: Any = None
    """The method's settings (losses/settings.py): a mapping in YAML, checked key by key against the
    method's settings class; unset keys take its defaults (with Perp-Neg, its ``perp_neg_overrides``)."""
    plugins: tuple[str, ...] = ()
    """Modules (``mylab.losses``) or ``.py`` files imported first; each registers its own losses."""
    perp_neg: bool = False
    beg: bool | None = None
    """Brightness-equalized generation; None: the method's default (on for gcs, off otherwise)."""
    init: str = "sphere"
    """Path of an init .ply (Point-E), or "sphere"."""
    sphere_points: Count = 100_000
    """Gaussians of the ``sphere`` init (radius U(0, 0.5), uniform angles)."""
    iterations: Annotated[int, Range(1, 10_000_000)] = 5000
    """The paper trains 5000; the bound catches a typo (1e20) before a job that would never end."""
    views: Annotated[int, Range(1, 1024)] = 4
    resolution: Annotated[int, Range(8, 8192)] = 512
    seed: Annotated[int, SeedRange] = 0
    checkpoint_every: Count = 500
    log_every: Count = 50
    """Log lines are buffered on the device and written every log_every iterations (one host sync)."""
    device: str = "auto"
    """auto (CUDA if available), cpu, cuda or cuda:N."""
    prior_dtype: Literal["auto", "fp16", "bf16", "fp32"] = "auto"
    """auto: fp16 on CUDA, fp32 on CPU."""
    compile_prior: bool | None = None
    """torch.compile the UNet, the VAE encoder and the decoder (``DiffusionPrior.compile``); None: on when the
    device is CUDA, off on the CPU. Same math up to fp16 rounding; the first iterations pay a few minutes of
    compiling (BENCHMARKS.md)."""
    text_cache: str | None = None
    models: ModelsConfig = field(default_factory=ModelsConfig)
    cameras: CameraConfig = field(default_factory=CameraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    regularize: RegularizerConfig = field(default_factory=RegularizerConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)

    def __post_init__(self) -> None:
        """Type the ``loss`` block by the method (loading plugins first); see the field's docstring."""
        from .losses.base import LossSettings
        from .losses.registry import load_plugins, settings_class

        load_plugins(self.plugins)
        settings = settings_class(self.method)
        if self.loss is None or isinstance(self.loss, dict):
            given = dict(self.loss or {})
            overrides = settings.perp_neg_overrides if self.perp_neg else {}
            self.loss = from_dict(settings, {**overrides, **given}, "loss.")
        elif not isinstance(self.loss, LossSettings):
            raise ConfigError(f"loss: expected a mapping of {settings.__name__} fields, got {self.loss!r}")
        self.check_loss_matches_method()

    def check_loss_matches_method(self) -> None:
        if type(self.loss).method != self.method:
            raise ConfigError(f"loss: holds the settings of {type(self.loss).method!r} but method is {self.method!r} "
                              "(in Python, change both: dataclasses.replace(config, method=..., loss=None))")

    def check(self) -> None:
        """Checks across fields; the loader calls it, and so does the trainer."""
        self.check_loss_matches_method()
        if not self.prompt.strip():
            raise ConfigError("prompt: empty")
        if self.resolution % 8:
            raise ConfigError(f"resolution: must be a multiple of 8 (the VAE's factor), got {self.resolution}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device: {self.device!r} is not one of auto, cpu, cuda, cuda:N")
        if self.perp_neg and not type(self.loss).supports_perp_neg:
            raise ConfigError(f"perp_neg: {type(self.loss).display_name or self.method} has no Perp-Neg form; "
                              f"set perp_neg: false for method {self.method}")
        if self.densify.start > self.densify.stop:
            raise ConfigError(f"densify.start: must not exceed densify.stop ({self.densify.stop}), got {self.densify.start}")


def load_config(path: str | Path, cls: type = TrainConfig, overrides: list[str] | tuple[str, ...] = ()):
    """Read a YAML file into ``cls``, after applying ``KEY.SUB=VALUE`` overrides (values parsed as YAML).

    File and overrides go through the strict loader together, so ``--set method=ism`` takes ISM's loss
    defaults and ``--set loss.approx=\"false\"`` fails as a file would. Errors name the file (or ``--set``).
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    source = f"{path}" + (f" with --set {' '.join(overrides)}" if overrides else "")
    method = data.get("method")
    for override in overrides:
        data = apply_override(data, override)
    if data.get("method") != method and isinstance(data.get("loss"), dict) and not any(o.startswith("loss.") for o in overrides):
        log.warning("%s: --set method=%s replaces %s; its loss block is dropped (the new method's defaults apply)",
                    path, data.get("method"), method or "the default method")
        data["loss"] = {}
    try:
        return from_dict(cls, data)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def apply_override(data: dict, override: str) -> dict:
    """A copy of ``data`` with ``key.sub=value`` set (the value parsed as YAML: ``8``, ``false``, ``[1, 2]``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. --set loss.num_segments=8")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {override!r}: the value is not valid YAML: {error}") from None
    *parents, leaf = key.split(".")
    data = dict(data)
    node = data
    for part in parents:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[leaf] = value
    return data


def validated(config: TrainConfig) -> TrainConfig:
    """``config`` checked like a file would be (types, ranges, Literal values): a round trip through the loader."""
    config.check()
    return from_dict(TrainConfig, to_dict(config))


def dump_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
