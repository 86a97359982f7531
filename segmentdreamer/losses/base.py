"""The loss contract: what every distillation loss declares and provides (docs/method.md, "Losses").

A method is two classes in one file (or one module of yours, see README "Adding a loss"):

1. Its **settings**, a dataclass derived from :class:`LossSettings`: typed, range-checked hyperparameters
   (the ``loss:`` block of a run config, loaded by :mod:`segmentdreamer.typed`) plus the method's traits
   as class variables, which the trainer and the planner read instead of testing method names:

   ===================== ==========================================================================
   ``method``            the name in configs (``method: sctd``) and the registry key
   ``display_name``      the row label in Table 1 and the figures
   ``loss``              the loss class, or ``"module:Class"`` (imported only when training)
   ``supports_perp_neg`` False: ``perp_neg: true`` with this method is a config error
   ``beg_default``       whether BEG runs when the config leaves ``beg`` unset
   ``perp_neg_overrides`` settings that change when Perp-Neg is on (unless the config sets them)
   ``unet_calls``        the UNet evaluations per iteration, in words (for benchmarks and docs)
   ===================== ==========================================================================

2. The **loss**: a dataclass derived from its settings (so ``SCTDLoss(num_segments=8, seed=1)`` works),
   adding ``seed`` (the run seed) and its random state, and implementing :class:`DistillationLoss`:

       out = loss(prior, LossInput(latents=z0, images=rgb, cond=cond, step=it, total_steps=5000))
       out.loss.backward()     # dL/dz0 is the method's gradient (or the gradient of its objective)
       loss.state_dict() / loss.load_state_dict(state)   # generators + fixed noise, for bitwise resume

``prior`` follows the prior contract (:mod:`segmentdreamer.prior.base`); a loss reads its ``schedule``, calls
``predict_noise(x, t, embedding)`` and, for GCS, ``decode(latents)``.

This module imports no torch (tensor types only for annotations): the planner reads the traits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..typed import from_dict

if TYPE_CHECKING:
    from torch import Tensor

    from ..prior.base import Prior
    from ..prior.conditioning import ViewConditioning


@dataclass
class LossSettings:
    """Base of every method's settings dataclass: its traits (class variables) and cross-field checks."""

    method: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    loss: ClassVar[Any] = None
    """The loss class, or its import path ``"package.module:Class"``."""
    supports_perp_neg: ClassVar[bool] = True
    beg_default: ClassVar[bool] = False
    perp_neg_overrides: ClassVar[dict[str, Any]] = {}
    unet_calls: ClassVar[str] = ""

    def check(self) -> None:
        """Checks that involve several fields; raise ``ConfigError("field: why")``. None by default."""

    def validate_settings(self) -> None:
        """Run the loader's type and range checks on this object's settings fields (for losses built in
        Python rather than from a config); raises ConfigError naming ``loss.<field>``."""
        settings_cls = getattr(type(self), "Settings", type(self))
        names = [f.name for f in dataclasses.fields(settings_cls)]
        from_dict(settings_cls, {name: getattr(self, name) for name in names}, "loss.")


@dataclass
class LossInput:
    """One iteration's inputs.

    Attributes:
        latents: z0 [B, 4, h, w], differentiable (the VAE encoding of the rendered views).
        cond: the views' text conditioning.
        step: the training iteration (0-based).
        total_steps: the run's iteration budget (annealing schedules use step / total_steps).
        images: [B, 3, H, W] rendered images in [0, 1], differentiable (only GCS's pixel term reads them).
    """

    latents: Tensor
    cond: ViewConditioning
    step: int
    total_steps: int
    images: Tensor | None = None


@dataclass
class LossOut:
    """One iteration's result.

    Attributes:
        loss: scalar to call ``backward()`` on.
        grad: the gradient handed to z0 ([B, 4, h, w]) for score-style losses, None for objectives.
        logs: named diagnostics (timesteps as ints, norms as 0-dim tensors: read them rarely).
    """

    loss: Tensor
    grad: Tensor | None
    logs: dict[str, float | Tensor] = field(default_factory=dict)


class DistillationLoss(Protocol):
    """What the trainer calls: a loss built as ``LossClass(**settings_fields, seed=run_seed)``."""

    seed: int

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
