"""The strict typed loader: plain data (YAML, ``--set``, a run config) -> dataclasses, or an error naming the key.

Every setting of the project is a dataclass field with a type and, where a number has a valid range, an
``Annotated[..., Range(...)]`` bound. :func:`from_dict` builds a dataclass from a mapping and rejects

- unknown keys (``train.densify.grad_treshold: unknown key (known: ...)``),
- wrong types (``loss.approx: expected a boolean, got 'false'``; an int is never a bool, 5.0 is not an integer),
- non-finite numbers and out-of-range values (``loss.t_tau: must be <= 999, got 1200``),
- values outside a ``Literal`` (``loss.segmentation: 'unifrom' is not one of uniform, uniform_paper, mono, mono_paper``),

always with the dotted path of the key. A dataclass can add checks that involve several fields with a
``check()`` method raising :class:`ConfigError` (its message starts with the field's name; the loader
prefixes the path); a ``__post_init__`` may raise ConfigError the same way (the training config parses its
``loss`` block there, because its type depends on ``method``).

This module imports nothing heavy (no torch): planning a workflow of hundreds of runs validates every run
config with it in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A malformed config: the message names the offending key."""


@dataclass(frozen=True)
class Range:
    """Closed (or, with ``*_open``, open) bounds of a number; ``None`` leaves a side unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: float, path: str) -> None:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise ConfigError(f"{path}: must be {'>' if self.low_open else '>='} {self.low:g}, got {value!r}")
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise ConfigError(f"{path}: must be {'<' if self.high_open else '<='} {self.high:g}, got {value!r}")


NonNegative = Range(0.0)
Positive = Range(0.0, low_open=True)
Probability = Range(0.0, 1.0)
AtLeastOne = Range(1)
SeedRange = Range(0, 2**32 - 1)
"""Seeds: what every generator of the stack (torch, numpy) accepts."""
Timestep = Range(1, 999)
"""A diffusion timestep of the 1000-step schedule (t = 0 is the clean image and never sampled)."""

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}

T = typing.TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys, wrong types and bad values by dotted path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path.rstrip('.') or '<root>'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise ConfigError(f"{path}{key}: unknown key (known: {', '.join(sorted(names))})")
    values = {key: coerce(hints[key], value, f"{path}{key}") for key, value in data.items()}
    try:
        built = cls(**values)
    except ConfigError as error:  # a __post_init__ check naming its field
        raise ConfigError(f"{path}{error}") from None
    except (TypeError, ValueError) as error:  # any other check of the dataclass itself
        raise ConfigError(f"{path.rstrip('.') or '<root>'}: {error}") from error
    if hasattr(built, "check"):
        try:
            built.check()
        except ConfigError as error:
            raise ConfigError(f"{path}{error}") from None
    return built


def coerce(hint: Any, value: Any, path: str) -> Any:
    """``value`` as type ``hint`` (dataclasses, unions, tuples, Literal, Annotated ranges, scalars) or ConfigError."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        result = coerce(base, value, path)
        for extra in extras:
            if isinstance(extra, Range):
                for index, item in enumerate(result if isinstance(result, tuple) else (result,)):
                    extra.check(item, f"{path}[{index}]" if isinstance(result, tuple) else path)
        return result
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path + ".")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if isinstance(value, bool) or value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(typing.get_args(hint), value, path)
    if origin is tuple:
        return _coerce_tuple(typing.get_args(hint), value, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(hint, value, path)


def _coerce_union(options: tuple, value: Any, path: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return coerce(option, value, path)
        except ConfigError as error:
            errors.append(str(error))
    if len(errors) == 1:
        raise ConfigError(errors[0])
    raise ConfigError(f"{path}: {value!r} is none of: " + "; ".join(e.removeprefix(f"{path}: ") for e in errors))


def _coerce_tuple(args: tuple, value: Any, path: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
    return tuple(coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))


def _coerce_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 1e-7 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{path}: expected a finite number, got {value!r}")
            return float(value)
    elif isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    name = _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))
    hint_text = ""
    if isinstance(value, str) and hint in (int, bool) and re.fullmatch(r"-?\d+|true|false", value, re.I):
        hint_text = " (Snakemake's --config hands values inside mappings over as strings: put typed values in a --configfile)"
    raise ConfigError(f"{path}: expected {name}, got {value!r}{hint_text}")


def to_dict(config: Any) -> dict:
    """A plain, YAML-ready dict (tuples become lists)."""

    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def check_ordered(config: Any, *names: str) -> None:
    """Raise naming the field when a (low, high) pair field has low > high."""
    for name in names:
        low, high = getattr(config, name)
        if low > high:
            raise ConfigError(f"{name}: the first value must not exceed the second, got {[low, high]}")
