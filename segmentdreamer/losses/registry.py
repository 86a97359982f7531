"""The method registry: method name -> settings class (torch-free) -> loss class (imported when training).

The five methods of the paper are registered here. A loss of your own registers in one line from any
module (README "Adding a loss"), and configs name that module under ``plugins:``:

    register_loss(ScaledSDSLoss)        # the loss class; its ``Settings`` class variable names its settings
"""

from __future__ import annotations

import importlib

from ..plugins import load_plugins  # noqa: F401 - re-exported: the loss API's one place to load plugins
from ..typed import ConfigError
from .base import LossSettings
from .settings import BUILTIN_SETTINGS

LOSSES: dict[str, type[LossSettings]] = {}
"""Method name -> its settings class (the class's ``loss`` trait leads to the loss class)."""


def register_loss(loss_or_settings: type) -> type:
    """Register a method under its ``method`` name; returns the argument (usable as a class decorator).

    Pass the loss class (its class variable ``Settings`` is its settings dataclass, and its ``method``,
    ``display_name``, ... traits are inherited from there) or a settings class whose ``loss`` trait names
    the loss class. Registering a name twice with a different class is an error.
    """
    settings = getattr(loss_or_settings, "Settings", loss_or_settings)
    if not (isinstance(settings, type) and issubclass(settings, LossSettings)) or not settings.method:
        raise TypeError(f"{loss_or_settings!r}: a loss needs a LossSettings dataclass with a `method` name (see losses/base.py)")
    if loss_or_settings is not settings:  # a loss class: its settings class leads to it from now on
        own = settings.__dict__.get("loss")
        if own is not None and not _same_class(own, loss_or_settings):
            raise ValueError(f"{settings.__qualname__}'s `loss` trait names {_import_path(own)}, not "
                             f"{_import_path(loss_or_settings)}: drop the trait (registering the loss class sets it), or "
                             f"give {loss_or_settings.__qualname__} its own Settings subclass with a new `method` name")
        settings.loss = loss_or_settings
    known = LOSSES.get(settings.method)
    if known is not None and known is not settings:
        raise ValueError(f"method {settings.method!r} is already registered by {known.__module__}.{known.__qualname__}")
    LOSSES[settings.method] = settings
    return loss_or_settings


def _same_class(named: type | str, cls: type) -> bool:
    """Whether a ``loss`` trait (a class or an import path) is ``cls`` (a path that does not import is not)."""
    if not isinstance(named, str):
        return named is cls
    if named == _import_path(cls):
        return True
    module, _, name = named.partition(":")
    try:
        return getattr(importlib.import_module(module), name, None) is cls
    except ImportError:
        return False


def _import_path(target: type | str) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


for _settings in BUILTIN_SETTINGS:
    register_loss(_settings)


def settings_class(method: str, key: str = "method") -> type[LossSettings]:
    """The settings class of ``method``; an unknown name fails naming ``key`` and the known methods."""
    if method not in LOSSES:
        raise ConfigError(f"{key}: unknown method {method!r} (known: {', '.join(sorted(LOSSES))}; "
                          "a loss of your own is registered by a module listed under `plugins`)")
    return LOSSES[method]


def loss_class(method: str) -> type:
    """The loss class of ``method`` (imports its module, and torch, on first use)."""
    target = settings_class(method).loss
    if isinstance(target, str):
        module, _, name = target.partition(":")
        target = getattr(importlib.import_module(module), name)
    return target
