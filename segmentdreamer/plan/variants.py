"""Variants and ablation grids: named TrainConfig overrides, and the grid points an ablation expands into.

A *variant* is a mapping of :class:`~segmentdreamer.config.TrainConfig` overrides (Table 1's methods,
the gallery's Perp-Neg setting). An ablation *grid* crosses dotted keys (``loss.num_segments: [2, 5]``)
over a base variant; each point becomes a variant named after it, unless it trains exactly what its base
does, in which case it is the base (its runs are shared, not repeated).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, TrainConfig, from_dict, to_dict


@dataclass(frozen=True)
class Ablation:
    """A figure comparing variants on one prompt set; ``params`` holds each variant's grid values."""

    name: str
    title: str
    prompt_set: str
    variants: list[str]
    labels: dict[str, str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    plot: dict[str, Any] | None = None
    columns: int = 0
    """Variants per grid row: a grid puts its first axis on rows; a variant list is one row."""
    prompt_ids: list[str] | None = None
    """The prompts of ``prompt_set`` it runs on (None: all)."""


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively by ``override`` (new dicts; lists and scalars replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_dotted(data: dict, dotted: str, value: Any) -> dict:
    """A copy of ``data`` with ``a.b.c`` set to ``value``."""
    *parents, leaf = dotted.split(".")
    patch: dict = {leaf: value}
    for part in reversed(parents):
        patch = {part: patch}
    return deep_merge(data, patch)


def grid_variant_name(ablation: str, point: dict[str, Any]) -> str:
    """Deterministic variant name of a grid point, e.g. ``segments__segmentation=mono__num_segments=5``."""

    def text(value):
        return str(value).lower() if isinstance(value, bool) else str(value)

    return "__".join([ablation] + [f"{key.split('.')[-1]}={text(value)}" for key, value in point.items()])


def effective_settings(shared: dict, overrides: dict) -> dict | None:
    """What a variant trains with: its full TrainConfig as a dict (every loss setting spelled out).

    None when the settings do not build (the run-config check then reports the error with its run).
    """
    try:
        return to_dict(from_dict(TrainConfig, deep_merge({"prompt": "-", **shared}, overrides)))
    except ConfigError:
        return None


def expand_grid(name: str, spec: dict, variants: dict[str, dict], shared: dict, key: str):
    """The grid's variants (new ones added to ``variants``), their labels and their grid values."""
    base = spec.get("base")
    if base not in variants:
        raise ConfigError(f"{key}.base: unknown variant {base!r} (known: {', '.join(variants)})")
    grid = spec["grid"]
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{key}.grid: expected a mapping of dotted keys to non-empty lists")
    names, labels, params = [], {}, {}
    base_settings = effective_settings(shared, variants[base])
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        variant = grid_variant_name(name, point)
        overrides = variants[base]
        for dotted, value in point.items():
            overrides = set_dotted(overrides, dotted, value)
        if base_settings is not None and effective_settings(shared, overrides) == base_settings:
            variant = base  # the point trains exactly what its base does: reuse the base's runs
        else:
            variants[variant] = overrides
        names.append(variant)
        labels[variant] = "\n".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
        params[variant] = point
    return names, labels, params
