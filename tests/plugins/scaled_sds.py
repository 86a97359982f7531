"""A loss from outside the package, as README "Adding a loss" shows: SDS with its gradient scaled.

The whole extension: a settings dataclass (hyperparameters + traits), a loss class, one line to register.
"""

from dataclasses import dataclass
from typing import Annotated, ClassVar

from segmentdreamer.losses import LossOut, SDSSettings, register_loss
from segmentdreamer.losses.common import inject_gradient
from segmentdreamer.losses.sds import SDSLoss
from segmentdreamer.typed import Positive


@dataclass
class ScaledSDSSettings(SDSSettings):
    method: ClassVar[str] = "scaled_sds"
    display_name: ClassVar[str] = "SDS x scale"

    scale: Annotated[float, Positive] = 2.0
    """Factor on the SDS gradient."""


@dataclass
class ScaledSDSLoss(ScaledSDSSettings, SDSLoss):
    Settings: ClassVar[type] = ScaledSDSSettings

    def __call__(self, prior, batch) -> LossOut:
        out = super().__call__(prior, batch)
        grad = self.scale * out.grad
        return LossOut(loss=inject_gradient(batch.latents, grad), grad=grad, logs=out.logs)


register_loss(ScaledSDSLoss)
