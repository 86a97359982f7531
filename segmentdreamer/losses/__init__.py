"""Distillation losses: SCTD (the paper's) and the baselines of Table 1, behind one contract (:mod:`.base`).

``LOSSES`` maps a method name to its settings class (torch-free); :func:`loss_class` gives the loss class
(importing torch). Build a loss with its hyperparameters and the run seed, call it once per iteration with
the prior and a :class:`LossInput`. Loss classes are importable from here too (``from
segmentdreamer.losses import SCTDLoss``); they load on first access, so planning never imports torch.
"""

from __future__ import annotations

import importlib

from .base import DistillationLoss, LossInput, LossOut, LossSettings
from .registry import LOSSES, load_plugins, loss_class, register_loss, settings_class
from .settings import BUILTIN_SETTINGS, CDSSettings, GCSSettings, ISMSettings, SCTDSettings, SDSSettings

_LAZY = {settings.loss.rpartition(":")[2]: settings.loss.partition(":")[0] for settings in BUILTIN_SETTINGS}
"""Loss class name -> its module, read from each built-in settings class's ``loss`` trait (imported on first access)."""


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LOSSES", "CDSSettings", "DistillationLoss", "GCSSettings", "ISMSettings", "LossInput", "LossOut", "LossSettings",
           "SCTDSettings", "SDSSettings", "load_plugins", "loss_class", "register_loss", "settings_class", *_LAZY]
