"""Every method's hyperparameters: types, defaults (the official code's), valid ranges and traits.

One dataclass per method, derived from :class:`~.base.LossSettings`. These are what a run config's
``loss:`` block holds; the loss class of each method (``sctd.py``, ...) derives from its settings and adds
the run seed and random state. The equations each field enters are in docs/method.md, "Losses"; where the
paper and the official code differ, the default is the code's and the switch is named in docs/method.md,
"Paper vs official code".

No torch here: the workflow validates hundreds of run configs with these classes before any job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from ..typed import AtLeastOne, ConfigError, NonNegative, Range, Timestep
from .base import LossSettings
from .segments import MIN_EDGE, Segmentation, segment_edges

Scale = Annotated[float, NonNegative]
Steps = Annotated[int, AtLeastOne]
Seed = Annotated[int, NonNegative]
TimestepIndex = Annotated[int, Timestep]


@dataclass
class SCTDSettings(LossSettings):
    """SCTD, the paper's loss (Sec. 4, Eq. 9-11)."""

    method: ClassVar[str] = "sctd"
    display_name: ClassVar[str] = "SegmentDreamer (SCTD)"
    loss: ClassVar[str] = "segmentdreamer.losses.sctd:SCTDLoss"
    perp_neg_overrides: ClassVar[dict] = {"noise_offset": 0.05}  # the official Perp-Neg path's offset
    unet_calls: ClassVar[str] = "4 per iteration (3 when t < t_tau), the guided one batched 2B (4B with Perp-Neg); +1 with backward when approx is off"

    guidance_scale: Scale = 7.5
    """g, the CFG scale."""
    segmentation: Segmentation = "uniform"
    """Trajectory segmentation (Sec. 4.3)."""
    num_segments: Steps = 5
    """Ns."""
    t_tau: Annotated[int, Range(0, 999)] = 150
    """Threshold of Eq. 11: two inversion steps from t_tau on, one below (0: always two)."""
    inversion_threshold: Literal["ge", "gt"] = "ge"
    """ge: two steps when t >= t_tau (official code); gt: when t > t_tau (paper Eq. 11)."""
    approx: bool = True
    """Approximate G^m(z~_t, t, ∅) by z_sm (Sec. 4.4); False computes it with the UNet Jacobian."""
    t_schedule: Literal["shift_both", "shift_upper"] = "shift_both"
    """shift_both: t index ~ U[20 + 480r, 500 + 480r) (code); shift_upper: U[20, 500 + 480r) (paper)."""
    weighting: Literal["code", "paper"] = "code"
    """code: residual x 0.1 s_t/a_t (official); paper: Eq. 10 as a loss with b(t)."""
    guided_cross_term: bool = True
    """True: B uses the guided eps_cfg (code); False: B uses eps(z~_t, t, y) (paper's G(., y))."""
    grad_scale: Scale = 0.1
    """lambda, the code weighting's scale."""
    min_gap: Steps = 80
    """t is raised to at least s_m + min_gap."""
    s_margin: Annotated[int, NonNegative] = 10
    """s ~ U[s_m + s_margin, t - s_margin)."""
    warmup_steps: Steps = 1500
    noise_offset: Scale = 0.1
    """Offset-noise scale of eps* (the official Perp-Neg path uses 0.05)."""
    noise_seed: Seed = 0

    def check(self) -> None:
        if self.segmentation == "mono" and self.t_tau <= MIN_EDGE:
            raise ConfigError(f"t_tau: mono segmentation starts with a segment of t_tau - {MIN_EDGE} steps, so t_tau must exceed "
                              f"{MIN_EDGE}, got {self.t_tau}")
        try:
            segment_edges(self.segmentation, self.num_segments, self.t_tau)
        except ValueError as error:
            raise ConfigError(f"num_segments: {error}") from None
        if self.min_gap <= 2 * self.s_margin:
            raise ConfigError(f"min_gap: must exceed 2 x s_margin ({2 * self.s_margin}) so that s can be drawn, got {self.min_gap}")


@dataclass
class SDSSettings(LossSettings):
    """SDS (DreamFusion) as threestudio implements it."""

    method: ClassVar[str] = "sds"
    display_name: ClassVar[str] = "DreamFusion (SDS)"
    loss: ClassVar[str] = "segmentdreamer.losses.sds:SDSLoss"
    unet_calls: ClassVar[str] = "1 per iteration, batched 2B (4B with Perp-Neg)"

    guidance_scale: Scale = 100.0
    t_min: TimestepIndex = 20
    t_max: TimestepIndex = 980
    """Timesteps are drawn uniformly from [t_min, t_max], independently per view."""
    noise_seed: Seed = 0

    def check(self) -> None:
        if self.t_min > self.t_max:
            raise ConfigError(f"t_min: must not exceed t_max ({self.t_max}), got {self.t_min}")


@dataclass
class ISMSettings(LossSettings):
    """ISM (LucidDreamer), as its official code."""

    method: ClassVar[str] = "ism"
    display_name: ClassVar[str] = "LucidDreamer (ISM)"
    loss: ClassVar[str] = "segmentdreamer.losses.ism:ISMLoss"
    unet_calls: ClassVar[str] = "up to xs_max_steps + 2 per iteration: the inversion to x_s, one step to x_t, one guided (2B)"

    guidance_scale: Scale = 7.5
    grad_scale: Scale = 0.1
    delta_t: Annotated[int, NonNegative] = 80
    delta_t_start: Annotated[int, NonNegative] = 100
    """The interval t - s shrinks from delta_t_start to delta_t over the warm-up."""
    xs_jump: Steps = 200
    """Timestep jump of the inversion toward x_s."""
    xs_max_steps: Annotated[int, NonNegative] = 5
    warmup_steps: Steps = 1500
    noise_offset: Scale = 0.1
    noise_seed: Seed = 0


@dataclass
class CDSSettings(LossSettings):
    """CDS (Consistent3D), its official code ported to 3DGS; it has no Perp-Neg form."""

    method: ClassVar[str] = "cds"
    display_name: ClassVar[str] = "Consistent3D (CDS)"
    loss: ClassVar[str] = "segmentdreamer.losses.cds:CDSLoss"
    supports_perp_neg: ClassVar[bool] = False
    unet_calls: ClassVar[str] = "2 per iteration, each guided (2B)"

    guidance_scale: Scale = 30.0
    t_next_start: TimestepIndex = 700
    t_next_end: TimestepIndex = 100
    anneal_fraction: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.6
    """Fraction of the run over which t_next and the clamp anneal."""
    t_gap_min: Steps = 100
    t_gap_max: Steps = 300
    clamp_start: Annotated[float, Range(0.0, low_open=True)] = 2.0
    clamp_end: Annotated[float, Range(0.0, low_open=True)] = 8.0
    noise_seed: Seed = 0

    def check(self) -> None:
        if self.t_gap_min >= self.t_gap_max:
            raise ConfigError(f"t_gap_min: must be below t_gap_max ({self.t_gap_max}; gaps are drawn from [min, max)), got {self.t_gap_min}")


@dataclass
class GCSSettings(LossSettings):
    """GCS (Connect3D), as its official code; a real objective, trained with BEG by default."""

    method: ClassVar[str] = "gcs"
    display_name: ClassVar[str] = "Connect3D (GCS)"
    loss: ClassVar[str] = "segmentdreamer.losses.gcs:GCSLoss"
    beg_default: ClassVar[bool] = True
    unet_calls: ClassVar[str] = "6 per iteration (4 unconditional, 2 guided at 2B) + one VAE decode of 2B latents"

    guidance_scale: Scale = 7.5
    loss_scale: Scale = 0.1
    weight_cc: Scale = 1.0
    weight_cg: Scale = 0.5
    weight_cp: Scale = 0.5
    delta_t: Steps = 80
    delta_t_start: Steps = 100
    warmup_steps: Steps = 1500
    noise_offset: Scale = 0.1
    noise_seed: Seed = 0


@dataclass
class CSDSettings(SDSSettings):
    """CSD (Classifier Score Distillation, Yu et al., ICLR 2024): SDS's timesteps and fresh noise, its classifier-free
    guidance term alone, optionally minus a negative prompt's classifier score; no Perp-Neg form."""

    method: ClassVar[str] = "csd"
    display_name: ClassVar[str] = "Classifier Score Distillation (CSD)"
    loss: ClassVar[str] = "segmentdreamer.losses.csd:CSDLoss"
    supports_perp_neg: ClassVar[bool] = False
    unet_calls: ClassVar[str] = "1 per iteration: 2B (text, empty prompt), 3B with the negative prompt's term"

    negative_scale: Scale = 0.0
    """omega_neg on eps(negative) - eps(empty), subtracted (0: the plain classifier score). ``guidance_scale`` is
    omega_text on eps(text) - eps(empty): 100, the classifier term's weight in SDS at threestudio's g, here alone;
    t_min / t_max: the CSD code's 0.02 / 0.98 of the schedule, as SDS."""


BUILTIN_SETTINGS: tuple[type[LossSettings], ...] = (SCTDSettings, SDSSettings, ISMSettings, CDSSettings, GCSSettings, CSDSettings)
"""The paper's five methods, in Table 1's order (baselines first would be the paper's; ours leads here), then the
baselines beyond Table 1 (CSD), which config.yaml offers as variants outside Table 1's rows."""
