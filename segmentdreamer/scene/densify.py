"""Adaptive density control of the official recipe: clone, split, prune, opacity reset (docs/method.md, "Training recipe").

A strategy in gsplat's shape: a dataclass of numbers (:class:`~segmentdreamer.config.DensifyConfig`),
a state dict the trainer owns, and calls around the optimizer step:

    state = initial_state(num_gaussians)
    ... loss.backward()
    accumulate(state, means2d.grad, radii, width, height)        # before gradient clipping
    report = densify_step(config, params, optimizers, state, step)
    ... optimizer.step()

Why not gsplat's DefaultStrategy: its statistic multiplies the NDC gradient by the number of views and
feeds on every view, its scale thresholds are relative to a scene scale, and its reset/prune cadence
differs; the official code (a) reads only the batch's last view, (b) uses absolute thresholds.

Replaced tensors are new ``nn.Parameter``s without a gradient, so the optimizer makes no step for them
on iterations that densify, prune or reset: the official code behaves the same way (about 28 skipped
steps per run); surviving Gaussians keep their Adam moments, new ones start from zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import DensifyConfig
from .render import quaternion_to_matrix


def initial_state(count: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """grad2d: sum of NDC gradient norms; count: how often each Gaussian was seen; max_radii (pixels)."""
    return {name: torch.zeros(count, device=device) for name in ("grad2d", "count", "max_radii")}


def accumulate(state: dict[str, Tensor], means2d_grad: Tensor, radii: Tensor, width: int, height: int) -> None:
    """Add one view's statistic: |dL/d mean2d| in NDC units (pixel gradient x W/2, H/2) where radius > 0.

    means2d_grad: [N, 2] pixel-space gradient of one view; radii: [N].
    """
    seen = radii > 0
    ndc = means2d_grad * torch.tensor([width / 2.0, height / 2.0], device=means2d_grad.device)
    state["grad2d"] += torch.where(seen, ndc.norm(dim=-1), torch.zeros_like(radii))
    state["count"] += seen.float()
    state["max_radii"] = torch.maximum(state["max_radii"], torch.where(seen, radii.float(), state["max_radii"]))


def _replace(params, optimizers, name: str, value: Tensor, keep: Tensor | None = None, extra: int = 0) -> None:
    """Swap params[name] for ``value``, carrying Adam moments of kept rows and zeros for ``extra`` new rows.

    keep: bool [N_old] rows whose moments survive (None: reset every moment to zero).
    """
    optimizer = optimizers[name]
    old = params[name]
    new = torch.nn.Parameter(value.detach().contiguous())
    state = optimizer.state.pop(old, {})
    if state:
        for moment in ("exp_avg", "exp_avg_sq"):
            if keep is None:
                state[moment] = torch.zeros_like(new)
            else:
                kept = state[moment][keep]
                state[moment] = torch.cat([kept, kept.new_zeros((extra, *kept.shape[1:]))])
        optimizer.state[new] = state
    optimizer.param_groups[0]["params"] = [new]
    params[name] = new


def _edit_all(params, optimizers, keep: Tensor, appended: dict[str, Tensor]) -> None:
    """Keep rows ``keep`` of every parameter, then append ``appended[name]`` rows."""
    extra = next(iter(appended.values())).shape[0] if appended else 0
    for name in list(params.keys()):
        value = params[name].detach()[keep]
        if extra:
            value = torch.cat([value, appended[name]])
        _replace(params, optimizers, name, value, keep=keep, extra=extra)


def _split_samples(params, selected: Tensor, count: int, divisor: float, generator: torch.Generator | None) -> dict[str, Tensor]:
    """``count`` children per selected Gaussian: centres ~ N(mean, scale) rotated, scales / divisor."""
    scales = params["scales"].detach()[selected].exp()
    rot = quaternion_to_matrix(torch.nn.functional.normalize(params["quats"].detach()[selected], dim=-1))
    noise = torch.randn((count, *scales.shape), generator=generator, device="cpu").to(scales)
    offsets = torch.einsum("nij,cnj->cni", rot, noise * scales)
    children = {name: params[name].detach()[selected].repeat(count, *([1] * (params[name].dim() - 1))) for name in params.keys()}
    children["means"] = (params["means"].detach()[selected][None] + offsets).reshape(-1, 3)
    children["scales"] = (scales / divisor).log().repeat(count, 1)
    return children


def densify_step(
    config: DensifyConfig,
    params: torch.nn.ParameterDict,
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Tensor],
    step: int,
    generator: torch.Generator | None = None,
) -> dict[str, int]:
    """Clone / split / prune on densification iterations, opacity reset on reset iterations.

    Returns counts of what happened (empty dict on ordinary iterations). ``state`` is reset in place
    (resized to the new Gaussian count) after a densification.
    """
    report: dict[str, int] = {}
    if config.start <= step <= config.stop and step % config.every == 0:
        report.update(_densify_and_prune(config, params, optimizers, state, step, generator))
    if step > 0 and step % config.reset_every == 0 and step < config.reset_until:
        opacity = torch.sigmoid(params["opacities"].detach()).clamp_max(config.reset_opacity)
        _replace(params, optimizers, "opacities", torch.logit(opacity))
        report["opacity_reset"] = 1
    return report


def _densify_and_prune(config, params, optimizers, state, step, generator) -> dict[str, int]:
    grads = torch.nan_to_num(state["grad2d"] / state["count"])
    max_scale = params["scales"].detach().exp().max(dim=-1).values
    candidates = grads >= config.grad_threshold
    clone = candidates & (max_scale <= config.clone_max_scale)
    split = candidates & (max_scale > config.clone_max_scale)
    count = params["means"].shape[0]

    cloned = {name: params[name].detach()[clone] for name in params.keys()}
    children = _split_samples(params, split, config.split_count, config.split_scale_divisor, generator)
    appended = {name: torch.cat([cloned[name], children[name]]) for name in params.keys()}
    _edit_all(params, optimizers, ~split, appended)

    opacity = torch.sigmoid(params["opacities"].detach())
    prune = opacity < config.prune_opacity
    if step > config.prune_scale_after:
        prune |= params["scales"].detach().exp().max(dim=-1).values > config.prune_max_scale
        if config.prune_screen_radius:
            radii = torch.cat([state["max_radii"][~split], state["max_radii"].new_zeros(appended["means"].shape[0])])
            prune |= radii > config.max_screen_radius
    _edit_all(params, optimizers, ~prune, {})
    state.update(initial_state(params["means"].shape[0], params["means"].device))
    return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(prune.sum()),
            "before": count, "after": int(params["means"].shape[0])}
