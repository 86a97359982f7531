"""Typed configuration: dataclasses with defaults, strict YAML loading, and dumping.

Every setting of a run lives in a dataclass below (defaults: the official recipe, SPEC 6-7).
``load_config(path)`` reads YAML into them and rejects unknown keys or wrong types with the dotted
key path (``train.densify.grad_treshold: unknown key``), so a typo never silently becomes a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .prior.diffusion_prior import DEFAULT_NEGATIVE_PROMPT


class ConfigError(ValueError):
    """A malformed config: the message names the offending key."""


@dataclass
class ModelsConfig:
    """Each entry: a local folder or a hub id already in the local Hugging Face cache."""

    sd: str = "stabilityai/stable-diffusion-2-1-base"
    """Stable Diffusion 2.1-base in diffusers layout."""


@dataclass
class CameraConfig:
    """Training camera sampler (SPEC 7). Angles in degrees, fov in radians (horizontal)."""

    polar_range: tuple[float, float] = (45.0, 105.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    radius_range: tuple[float, float] = (5.2, 5.5)
    fov_range: tuple[float, float] = (0.32, 0.60)
    rand_cam_gamma: float = 1.0
    jitter_center: float = 0.05
    """Eye jitter U(-j/2, j/2) per axis."""
    jitter_target: float = 0.05
    jitter_up: float = 0.01
    pool_size: int = 10
    """Cameras drawn together, sharing one field of view; a batch pops views from the pool."""
    widen_every: int = 500
    radius_shrink: float = 0.95
    radius_limit: tuple[float, float] = (3.5, 5.0)
    fov_low_shrink: float = 0.75
    fov_low_limit: float = 0.16


@dataclass
class OptimConfig:
    """Per-parameter Adam, learning rates log-linear from first to last over the run (SPEC 6)."""

    means_lr: tuple[float, float] = (5.6e-4, 5.6e-6)
    colour_lr: tuple[float, float] = (5e-3, 3e-3)
    colour_rest_divisor: float = 20.0
    opacity_lr: float = 0.05
    scale_lr: tuple[float, float] = (5e-3, 1e-3)
    rotation_lr: tuple[float, float] = (1e-3, 2e-4)
    adam_eps: float = 1e-15
    clip_start: float = 2.0
    clip_growth: float = 6.0
    clip_ramp: int = 1000
    """Each parameter tensor's gradient norm is clipped to clip_start + clip_growth * min(1, it / clip_ramp)."""


@dataclass
class DensifyConfig:
    """Clone / split / prune / opacity reset (SPEC 6)."""

    start: int = 200
    stop: int = 2900
    every: int = 100
    grad_threshold: float = 7.5e-4
    clone_max_scale: float = 0.0105
    split_count: int = 2
    split_scale_divisor: float = 1.6
    prune_opacity: float = 0.005
    prune_scale_after: int = 300
    prune_max_scale: float = 0.35
    prune_screen_radius: bool = False
    """The official screen-radius prune never fires (its statistic is zeroed just before): off."""
    max_screen_radius: float = 20.0
    reset_every: int = 300
    reset_until: int = 3000
    reset_opacity: float = 0.01
    stats: str = "last_view"
    """last_view: only the batch's last view feeds the statistic (official code); all_views: every view."""


@dataclass
class AugmentConfig:
    """Training-time augmentations (SPEC 6); each can be switched off for an ablation."""

    scale_noise: float = 0.1118
    """s' = max(0, s (1 + scale_noise n)), n ~ N(0, 1) per Gaussian, axis and view; 0 disables."""
    flip: bool = True
    disparity_prob: float = 0.2
    """Probability that the VAE encodes the disparity map instead of RGB."""
    random_background_prob: float = 0.33
    """Per view: a uniform random solid colour instead of black."""


@dataclass
class RegularizerConfig:
    tv_rgb: float = 1.0
    tv_disparity: float = 1.0
    scale: float = 1.0


@dataclass
class TrainConfig:
    """One training run: a prompt, a method, an init, and the 3DGS recipe."""

    prompt: str = ""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    method: str = "sctd"
    loss: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters of the method's loss dataclass (e.g. {segmentation: mono, num_segments: 5})."""
    perp_neg: bool = False
    beg: bool | None = None
    """Brightness-equalized generation; None: on for gcs, off otherwise."""
    init: str = "sphere"
    """Path of an init .ply (Point-E), or "sphere"."""
    sphere_points: int = 100_000
    """Gaussians of the ``sphere`` init (radius U(0, 0.5), uniform angles)."""
    iterations: int = 5000
    views: int = 4
    resolution: int = 512
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    """Log lines are buffered on the device and written every log_every iterations (one host sync)."""
    device: str = "auto"
    prior_dtype: str = "auto"
    """auto: fp16 on CUDA, fp32 on CPU."""
    compile_prior: bool = False
    """torch.compile the UNet and the VAE decoder on CUDA (faster after a few minutes of compiling; BENCHMARKS.md)."""
    text_cache: str | None = None
    models: ModelsConfig = field(default_factory=ModelsConfig)
    cameras: CameraConfig = field(default_factory=CameraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    regularize: RegularizerConfig = field(default_factory=RegularizerConfig)


T = typing.TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types by dotted path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{path}{key}: unknown key (known: {', '.join(sorted(names))})")
    values = {key: _coerce(hints[key], value, f"{path}{key}") for key, value in data.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path + ".")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} is not {hint}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # PyYAML reads 1e-7 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def to_dict(config: Any) -> dict:
    """A plain, YAML-ready dict (tuples become lists)."""

    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def load_config(path: str | Path, cls: type[T] = TrainConfig) -> T:
    """Read a YAML file into ``cls``; a syntax error or a bad key raises ConfigError naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return from_dict(cls, data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def dump_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
