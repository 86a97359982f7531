"""The one optimisation loop of the miniworld's trainers: AdamW, warm-up + cosine, EMA, resumable checkpoints.

A trainer hands :func:`optimise` its modules and a ``loss_at(step, generator)`` closure. Each step draws its data
from a generator seeded by (seed, step), so a run killed after a checkpoint and resumed draws the same batches as
one that never stopped. The checkpoint (``<name>.ckpt`` in the work folder: modules, EMA copy, optimiser, step) is
written atomically every ``checkpoint_every`` steps and at the end; the loss curve (``<name>_loss.jsonl``, one line
per 10 steps) is cut back to the checkpoint's step on resume, so it never holds a step twice.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..atomic import atomic_target, write_json
from .settings import TrainingSettings

log = logging.getLogger(__name__)

LOG_EVERY = 10
_time_limit: float | None = None


def limit_training_time(seconds: float | None) -> None:
    """A wall-clock limit for each :func:`optimise` of this process (``segmentdreamer miniworld --max-minutes``): a
    trainer past it checkpoints and returns the weights it has (``<name>_steps.json`` says how many steps it took),
    so a build on a lent GPU delivers models within its time; a rerun resumes to the full step count. None: none."""
    global _time_limit
    _time_limit = seconds


def learning_rate(step: int, settings: TrainingSettings) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` to ``lr / 10`` at the last step."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of one step's data draws: a function of (seed, step) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def optimise(name: str, model: nn.Module, loss_at: Callable[[int, torch.Generator], Tensor], settings: TrainingSettings,
             work: Path, seed: int, ema_decay: float | None = None, progress: bool = True) -> nn.Module:
    """Train ``model`` for ``settings.steps`` steps (resuming ``work/<name>.ckpt``); returns the EMA copy (or the model).

    Args:
        loss_at: the scalar loss of step ``step`` with its data drawn from the given CPU generator.
        ema_decay: keep an exponential moving average of the weights (decay warmed up as min(decay, (1+s)/(10+s))).
    """
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, curve = work / f"{name}.ckpt", work / f"{name}_loss.jsonl"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    ema = copy.deepcopy(model).requires_grad_(False) if ema_decay is not None else None
    start = _resume(checkpoint, curve, model, ema, optimizer)
    model.train()
    records, started = [], time.perf_counter()
    bar = tqdm(range(start, settings.steps), desc=f"miniworld {name}", unit="step", disable=not progress, initial=start,
               total=settings.steps)
    done = saved = start
    deadline = None if _time_limit is None else time.monotonic() + _time_limit
    for step in bar:
        if deadline is not None and time.monotonic() > deadline:
            log.warning("miniworld %s: stopped at step %d of %d (the --max-minutes limit)", name, step, settings.steps)
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        loss = loss_at(step, step_generator(seed, step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"miniworld {name}: non-finite loss at step {step}; lower {name}'s learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if ema is not None:
            _update_ema(ema, model, min(ema_decay, (1 + step) / (10 + step)))
        if step % LOG_EVERY == 0:
            records.append({"step": step, "loss": float(loss.detach()), "seconds": round(time.perf_counter() - started, 2)})
            bar.set_postfix(loss=f"{records[-1]['loss']:.4f}")
        done = step + 1
        if done % settings.checkpoint_every == 0 or done == settings.steps:
            _append(curve, records)
            records = []
            _save(checkpoint, model, ema, optimizer, done)
            saved = done
    if done != saved:  # stopped by the time limit between checkpoints
        _append(curve, records)
        _save(checkpoint, model, ema, optimizer, done)
    write_json({"steps_done": done, "steps": settings.steps}, work / f"{name}_steps.json")
    result = ema if ema is not None else model
    return result.eval()


def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for average, current in zip(ema.parameters(), model.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)


def _append(curve: Path, records: list[dict]) -> None:
    with open(curve, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def _save(path: Path, model: nn.Module, ema: nn.Module | None, optimizer, step: int) -> None:
    state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "ema": ema.state_dict() if ema is not None else None}
    with atomic_target(path) as tmp:
        torch.save(state, tmp)


def _resume(checkpoint: Path, curve: Path, model: nn.Module, ema: nn.Module | None, optimizer) -> int:
    """The step to start from: 0, or the checkpoint's (its states loaded, the loss curve cut back to it)."""
    if not checkpoint.is_file():
        curve.unlink(missing_ok=True)
        return 0
    state = torch.load(checkpoint, map_location=next(model.parameters()).device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    if curve.is_file():
        kept = [line for line in curve.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] < state["step"]]
        curve.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return int(state["step"])


def read_steps(work: Path, name: str) -> dict:
    """{steps_done, steps} of ``name``'s last training run (empty when it never ran)."""
    path = work / f"{name}_steps.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_curve(work: Path, name: str) -> list[dict]:
    """The loss curve of ``name``'s training: [{step, loss, seconds}]."""
    path = work / f"{name}_loss.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
