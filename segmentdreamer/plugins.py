"""Plugins: the modules a config names under ``plugins:``, imported once before anything is planned or trained.

A plugin registers what it brings when imported: a loss (``register_loss``), a prior kind (``register_prior``),
a metric (``register_metric``). It is a module name (``mylab.losses``) or a ``.py`` file path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .typed import ConfigError


def load_plugins(plugins: tuple[str, ...] | list[str], key: str = "plugins") -> None:
    """Import each plugin (a module name such as ``mylab.losses``, or a ``.py`` file path) once.

    A plugin registers its losses, prior kinds and metrics when imported; one that cannot be imported fails naming
    its key (``plugins[0]: cannot import ...``).
    """
    for index, plugin in enumerate(plugins):
        try:
            _import_plugin(plugin)
        except Exception as error:  # noqa: BLE001 - any import failure is a config error naming the entry
            raise ConfigError(f"{key}[{index}]: cannot import {plugin!r}: {type(error).__name__}: {error}") from error


def _import_plugin(plugin: str) -> None:
    if not plugin.endswith(".py"):
        if str(Path.cwd()) not in sys.path and "" not in sys.path:  # a console script's path lacks the working folder
            sys.path.append(str(Path.cwd()))                         # that `python -m` would search: a module of the checkout
        importlib.import_module(plugin)
        return
    path = Path(plugin).resolve()
    name = f"segmentdreamer_plugin_{path.stem}_{abs(hash(str(path))):x}"
    if name in sys.modules:
        return
    if not path.is_file():
        raise FileNotFoundError(f"{plugin} does not exist")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
