"""Distillation losses: SCTD (the paper's) and the baselines of Table 1.

``LOSSES`` maps a method name to its dataclass; build one with its hyperparameters, call it once per
iteration with the prior and a :class:`LossInput` (see :mod:`.base`).
"""

from .base import LossInput, LossOut
from .beg import BrightnessEqualizer
from .cds import CDSLoss
from .gcs import GCSLoss
from .ism import ISMLoss
from .sctd import SCTDLoss
from .sds import SDSLoss

LOSSES = {"sctd": SCTDLoss, "sds": SDSLoss, "ism": ISMLoss, "cds": CDSLoss, "gcs": GCSLoss}

__all__ = ["LOSSES", "BrightnessEqualizer", "CDSLoss", "GCSLoss", "ISMLoss", "LossInput", "LossOut", "SCTDLoss", "SDSLoss"]
