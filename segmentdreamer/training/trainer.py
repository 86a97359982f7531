"""The 3DGS training loop shared by every method, so Table 1 compares losses and not pipelines (docs/method.md, "Training recipe").

``Trainer(config, out_dir).run()`` trains one asset. Each iteration (``step``): sample B cameras, render
each view on its own (own background and scale-noise draw), regularize, flip, encode with the VAE, call the
method's loss, backpropagate, feed densification, clip gradients, densify / reset, BEG, optimizer step.

Side effects live here: the JSONL log (buffered on the device, one host sync every ``log_every``
iterations), atomic checkpoints every ``checkpoint_every`` iterations with everything a bitwise resume
needs (parameters, Adam moments, densification statistic, loss / camera / trainer generators), and the
outputs ``gaussians.ply``, ``train_log.jsonl``, ``resolved_config.yaml``, ``timing.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from ..atomic import atomic_target, disk_report, exclusive_lock, write_json
from ..config import TrainConfig, dump_config, to_dict, validated
from ..devices import PRIOR_DTYPES, resolve_device
from ..init.initial_gaussians import initial_gaussians
from ..losses import LossInput, loss_class
from ..plan.layout import RUN_FILES
from ..prior import ObservedViews, Prior, load_prior, view_conditioning
from ..scene import densify
from ..scene.beg import BrightnessEqualizer
from ..scene.cameras import Cameras, TrainingCameraSampler
from ..scene.gaussians import activate, save_ply
from ..scene.render import render
from .divergence import TrainingDiverged, check_marker, health_problems, write_marker

log = logging.getLogger(__name__)
CHECKPOINT = RUN_FILES["checkpoint"]


def build_loss(config: TrainConfig):
    """The method's loss with the run's settings and seed (the registry imports its module on first use)."""
    return loss_class(config.method)(**dataclasses.asdict(config.loss), seed=config.seed)


def uses_beg(config: TrainConfig) -> bool:
    """``beg`` if the config sets it, else the method's default."""
    return config.beg if config.beg is not None else type(config.loss).beg_default


def compiles_prior(config: TrainConfig, device: torch.device) -> bool:
    """``compile_prior`` resolved: as set, or (None) on exactly when the prior lives on a CUDA device."""
    wanted = config.compile_prior if config.compile_prior is not None else device.type == "cuda"
    return wanted and device.type == "cuda"


def total_variation(x: Tensor) -> Tensor:
    """TV(x) = 2 (sum dh^2 / (C (H-1) W) + sum dw^2 / (C H (W-1))) / B for x [B, C, H, W]."""
    b, c, h, w = x.shape
    dh = (x[:, :, 1:] - x[:, :, :-1]).pow(2).sum() / (c * (h - 1) * w)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).sum() / (c * h * (w - 1))
    return 2.0 * (dh + dw) / b


def log_linear(first: float, last: float, step: int, total: int) -> float:
    fraction = min(max(step / max(total, 1), 0.0), 1.0)
    return math.exp(math.log(first) * (1.0 - fraction) + math.log(last) * fraction)


CHECKPOINT_KEYS = ("config", "params", "optimizers", "densify", "loss", "cameras", "generator", "device_generator", "step", "elapsed")
"""What :meth:`Trainer.checkpoint` writes and :meth:`Trainer.resume` reads."""


def read_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path``, or None if it cannot be read (empty, truncated, not a checkpoint).

    Checkpoints are written atomically, so an unreadable one is damage from outside (a full or failing disk, a
    copy cut short); it is set aside as ``<name>.unreadable`` (kept for a look) with a warning, and the run
    trains from the start: every later attempt would otherwise fail the same way.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise KeyError(f"lacks {', '.join(missing)}")
        return state
    except Exception as error:  # torch.load raises many kinds: EOFError, RuntimeError, UnpicklingError, ...
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        log.warning("%s cannot be resumed (%s: %s); moved to %s, training starts from the beginning",
                    path, type(error).__name__, error, aside)
        return None


class Trainer:
    """Trains one asset; see the module docstring. ``prior`` may be passed in to share loaded weights."""

    def __init__(self, config: TrainConfig, out_dir: str | Path, prior: Prior | None = None):
        config = validated(config)  # a config built in Python gets the checks a file gets
        self.config, self.out = config, Path(out_dir)
        self.device = resolve_device(config.device)
        self.loss = build_loss(config)
        self.beg = BrightnessEqualizer() if uses_beg(config) else None
        self.prior = prior or load_prior(config.models.sd, dtype=PRIOR_DTYPES[config.prior_dtype], device=self.device,
                                         cache_dir=config.text_cache)
        if prior is None and compiles_prior(config, self.prior.device):
            self.prior.compile()
        self.embeddings = self.prior.prompt_embeddings(config.prompt, config.negative_prompt)
        self.sampler = TrainingCameraSampler(config.cameras, config.resolution, config.resolution, seed=config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.device_generator = torch.Generator(self.device).manual_seed(config.seed)
        self.params = initial_gaussians(config).to(self.device)
        self.optimizers = self._make_optimizers()
        self.densify_state = densify.initial_state(self.params["means"].shape[0], self.device)
        self.start_step, self.elapsed = 0, 0.0
        self.assets_in_process = self.prior.assets_in_process
        """Assets trained in this process (multi_asset.py), the most of any attempt: timing.json records it."""
        self._records: list[dict] = []
        self._last_rgb: Tensor | None = None
        self._last_checkpoint = 0

    # ------------------------------------------------------------------ setup
    def _lr(self, name: str, step: int) -> float:
        o, total = self.config.optim, self.config.iterations
        if name == "opacities":
            return o.opacity_lr
        first, last = {"means": o.means_lr, "sh0": o.colour_lr, "shN": o.colour_lr, "scales": o.scale_lr, "quats": o.rotation_lr}[name]
        lr = log_linear(first, last, step, total)
        return lr / o.colour_rest_divisor if name == "shN" else lr

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            name: torch.optim.Adam([param], lr=self._lr(name, 0), eps=self.config.optim.adam_eps)
            for name, param in self.params.items()
        }

    # ------------------------------------------------------------------ one iteration
    def _render_views(self, cameras: Cameras):
        """Each view rendered alone with its own background and scale-noise draws. Returns renders, noisy scales, backgrounds."""
        g, a, res = activate(self.params), self.config.augment, self.config.resolution
        renders, noisy_scales, backgrounds = [], [], []
        for i in range(len(cameras)):
            scales = g["scales"]
            if a.scale_noise > 0:
                noise = torch.randn(scales.shape, generator=self.device_generator, device=self.device)
                scales = (scales * (1.0 + a.scale_noise * noise)).clamp_min(0.0)
            if torch.rand((), generator=self.generator) < a.random_background_prob:
                background = torch.rand((1, 3), generator=self.generator)
            else:
                background = torch.zeros(1, 3)
            view = cameras[i : i + 1].to(self.device)
            renders.append(render(g["means"], g["quats"], scales, g["opacities"], g["colors"], view.viewmats, view.Ks,
                                  res, res, background.to(self.device)))
            noisy_scales.append(scales)
            backgrounds.append(background)
        return renders, torch.stack(noisy_scales), torch.cat(backgrounds)

    def step(self, step: int) -> dict:
        """One training iteration; returns its log record (values may be device tensors)."""
        cfg, started = self.config, time.perf_counter()
        self.sampler.widen(step)
        cameras = self.sampler.sample(cfg.views)
        renders, noisy_scales, backgrounds = self._render_views(cameras)
        rgb = torch.cat([r.rgb for r in renders])
        disparity = torch.cat([r.disparity for r in renders])
        reg = cfg.regularize
        regularizer = reg.tv_rgb * total_variation(rgb) + reg.tv_disparity * total_variation(disparity) + reg.scale * noisy_scales.mean()

        flip = cfg.augment.flip and bool(torch.rand((), generator=self.generator) < 0.5)
        images, disparity_in = (rgb.flip(-1), disparity.flip(-1)) if flip else (rgb, disparity)
        use_disparity = bool(torch.rand((), generator=self.generator) < cfg.augment.disparity_prob)
        self.prior.observe_views(ObservedViews(cameras, backgrounds, flip, use_disparity, cfg.resolution))
        latents = self.prior.encode(disparity_in.repeat(1, 3, 1, 1) if use_disparity else images, self.device_generator)
        cond = view_conditioning(self.embeddings, cameras.azimuths, perp_neg=cfg.perp_neg)
        out = self.loss(self.prior, LossInput(latents=latents, cond=cond, step=step, total_steps=cfg.iterations, images=images))
        total = out.loss + regularizer
        total.backward()
        self._last_rgb = rgb.detach()
        if cfg.divergence.on_nan == "skip" and not bool(torch.isfinite(total.detach())):  # one host read per iteration
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            return {"step": step, "loss": out.loss.detach(), "regularizer": regularizer.detach(), "skipped": 1,
                    "num_gaussians": int(self.params["means"].shape[0]), "ms": 1000.0 * (time.perf_counter() - started)}

        self._densification_statistic(renders)
        self._clip_gradients(step)
        report = densify.densify_step(cfg.densify, self.params, self.optimizers, self.densify_state, step, self.generator)
        if self.beg is not None and self.beg.triggered(rgb, step):
            self.beg.equalize([self.params["sh0"], self.params["shN"]], self.optimizers.values())
            for name in ("sh0", "shN"):  # the official code makes no step for the replaced colour tensors
                self.params[name].grad = None
            report["beg"] = 1
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self._lr(name, step)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        record = {"step": step, "loss": out.loss.detach(), "regularizer": regularizer.detach(), "disparity_latents": int(use_disparity),
                  "flip": int(flip), "num_gaussians": int(self.params["means"].shape[0]), **out.logs, **report}
        record["ms"] = 1000.0 * (time.perf_counter() - started)
        if self.device.type == "cuda":  # allocator statistics live on the host: no device sync
            record["gpu_memory_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        return record

    def _densification_statistic(self, renders) -> None:
        cfg = self.config
        views = renders[-1:] if cfg.densify.stats == "last_view" else renders
        for r in views:
            if r.means2d.grad is not None:
                densify.accumulate(self.densify_state, r.means2d.grad[0], r.radii[0], cfg.resolution, cfg.resolution)

    def _clip_gradients(self, step: int) -> None:
        o = self.config.optim
        limit = o.clip_start + o.clip_growth * min(1.0, step / o.clip_ramp)
        for param in self.params.values():
            if param.grad is not None:
                torch.nn.utils.clip_grad_norm_([param], limit)

    # ------------------------------------------------------------------ bookkeeping
    def _flush_log(self) -> None:
        """Write buffered records (one device->host copy for all their tensors); stop on a non-finite loss."""
        if not self._records:
            return
        tensors = [(i, k) for i, r in enumerate(self._records) for k, v in r.items() if torch.is_tensor(v)]
        if tensors:
            values = torch.stack([self._records[i][k].float().reshape(()) for i, k in tensors]).cpu().tolist()
            for (i, k), value in zip(tensors, values):
                self._records[i][k] = value
        with open(self.out / RUN_FILES["train_log"], "a", encoding="utf-8") as handle:
            for record in self._records:
                handle.write(json.dumps(record) + "\n")
        bad = [r["step"] for r in self._records if not math.isfinite(r["loss"]) and not r.get("skipped")]
        self._records = []
        if bad:
            self._diverged(bad[0], f"non-finite loss at iteration {bad[0]} (NaN or inf in the loss or in the prior's "
                                   f"noise prediction)")

    def _check_health(self, step: int) -> None:
        """Stop if any parameter or the last renders are non-finite, or the Gaussians flew off (one host read)."""
        problems = health_problems(self.params, self._last_rgb, self.config.divergence.max_position)
        if problems:
            self._diverged(step, f"after iteration {step}: " + "; ".join(problems))

    def _diverged(self, step: int, what: str) -> None:
        kept = f"the last finite checkpoint ({self.out / CHECKPOINT}, iteration {self._last_checkpoint}) is kept" \
            if self._last_checkpoint else "no checkpoint was written"
        message = f"training diverged: {what}; {kept}."
        write_marker(self.out, step, message, to_dict(self.config))
        raise TrainingDiverged(message)

    def checkpoint(self, next_step: int) -> None:
        """Write everything a bitwise resume needs, atomically (a kill mid-write keeps the old file)."""
        state = {
            "step": next_step,
            "elapsed": self.elapsed,
            "assets_in_process": self.assets_in_process,
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "densify": {k: v.cpu() for k, v in self.densify_state.items()},
            "loss": self.loss.state_dict(),
            "cameras": self.sampler.state_dict(),
            "generator": self.generator.get_state(),
            "device_generator": self.device_generator.get_state(),
            "config": to_dict(self.config),
        }
        try:
            with atomic_target(self.out / CHECKPOINT) as tmp:
                torch.save(state, tmp)
        except (OSError, RuntimeError) as error:
            raise OSError(f"cannot write the checkpoint {self.out / CHECKPOINT}: {disk_report(self.out)} ({error})") from error
        self._last_checkpoint = next_step

    def resume(self) -> bool:
        """Load the last checkpoint if there is one made with this config; returns whether training resumes."""
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        state = read_checkpoint(path)
        if state is None:
            return False
        if state["config"] != to_dict(self.config):
            log.warning("%s was written with other settings; training starts over", path)
            return False
        problems = health_problems(state["params"], None, self.config.divergence.max_position)
        if problems:
            raise TrainingDiverged(f"{path} holds a diverged state ({'; '.join(problems)}); it is not resumed. "
                                   f"Delete it to train this run from the start.")
        self.params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(self.device)) for k, v in state["params"].items()})
        self.optimizers = self._make_optimizers()
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.densify_state = {k: v.to(self.device) for k, v in state["densify"].items()}
        self.loss.load_state_dict(state["loss"])
        self.sampler.load_state_dict(state["cameras"])
        self.generator.set_state(state["generator"])
        self.device_generator.set_state(state["device_generator"])
        self.start_step, self.elapsed = state["step"], state["elapsed"]
        self.assets_in_process = max(self.assets_in_process, state.get("assets_in_process", 1))
        self._last_checkpoint = self.start_step
        self._truncate_log(self.start_step)
        log.info("resuming %s at iteration %d", self.out, self.start_step)
        return True

    def _truncate_log(self, next_step: int) -> None:
        """Drop log lines of iterations >= next_step and progress lines beyond it (they are trained again)."""
        for role, key, keep in (("train_log", "step", lambda v: v < next_step), ("progress", "iteration", lambda v: v <= next_step)):
            path = self.out / RUN_FILES[role]
            if path.exists():
                kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and keep(json.loads(line)[key])]
                path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def _record_progress(self, iteration: int) -> None:
        """Append the prior's ``progress(params)`` (if it reports any) after ``iteration`` iterations.

        Stable Diffusion reports nothing; the known-answer prior reports PSNR / SSIM / IoU against its ground
        truth, so ``progress.jsonl`` holds the learning curve (the demo's PSNR-vs-iteration plot).
        """
        metrics = self.prior.progress(self.params)
        if metrics:
            with open(self.out / RUN_FILES["progress"], "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"iteration": iteration, **metrics}) + "\n")

    def run(self, resume: bool = False, stop_after: int | None = None) -> Path:
        """Train to ``config.iterations`` (or stop after iteration ``stop_after``, for tests); returns the .ply path.

        Holds ``<out>/.lock`` while it runs: a second process training the same folder fails at once.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.out / ".lock"):
            check_marker(self.out, to_dict(self.config))
            return self._run(resume, stop_after)

    def _run(self, resume: bool, stop_after: int | None) -> Path:
        cfg = self.config
        (self.out / RUN_FILES["finished"]).unlink(missing_ok=True)
        if not (resume and self.resume()):
            (self.out / RUN_FILES["train_log"]).write_text("", encoding="utf-8")
            (self.out / RUN_FILES["progress"]).unlink(missing_ok=True)
            self._record_progress(0)
        dump_config(cfg, self.out / RUN_FILES["resolved_config"])
        last = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after + 1)
        progress = tqdm(range(self.start_step, last), initial=self.start_step, total=cfg.iterations, desc=f"{cfg.method} {cfg.prompt[:40]}",
                        dynamic_ncols=True, mininterval=2.0)
        window_start = time.perf_counter()
        for step in progress:
            self._records.append(self.step(step))
            done = step + 1
            at_checkpoint = done % cfg.checkpoint_every == 0 or done == last
            if done % cfg.log_every == 0 or at_checkpoint:  # a checkpoint never gets ahead of the log
                self._flush_log()
                progress.set_postfix(gaussians=int(self.params["means"].shape[0]))
            if at_checkpoint:
                self.elapsed += time.perf_counter() - window_start
                window_start = time.perf_counter()
                self._check_health(step)
                self._record_progress(done)  # before the checkpoint: a resume drops what lies beyond it
                self.checkpoint(done)
        if last == cfg.iterations:
            self._check_health(cfg.iterations - 1)
            self._write_outputs()
        return self.out / RUN_FILES["ply"]

    def _write_outputs(self) -> None:
        """The .ply, timing.json and, last, finished.json (the marker the evaluation rules require)."""
        cfg = self.config
        skipped = sum(1 for line in (self.out / RUN_FILES["train_log"]).read_text(encoding="utf-8").splitlines()
                      if '"skipped": 1' in line)
        if skipped > cfg.divergence.max_skipped_fraction * cfg.iterations:
            self._diverged(cfg.iterations - 1, f"{skipped} of {cfg.iterations} iterations had a non-finite loss and were "
                                               f"skipped (more than divergence.max_skipped_fraction = "
                                               f"{cfg.divergence.max_skipped_fraction:g})")
        save_ply(self.params, self.out / RUN_FILES["ply"])
        assets = self.assets_in_process  # > 1: trained with others in one process, sharing its time
        timing = {"seconds": self.elapsed, "minutes": self.elapsed / 60.0, "iterations": cfg.iterations,
                  "ms_per_iteration": 1000.0 * self.elapsed / max(cfg.iterations, 1), "device": str(self.device),
                  "gpu": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None,
                  "assets_in_process": assets, "gpu_minutes_share": self.elapsed / 60.0 / assets}
        write_json(timing, self.out / RUN_FILES["timing"])
        write_json({"iterations": cfg.iterations, "gaussians": int(self.params["means"].shape[0]), "finite": True,
                    "skipped_iterations": skipped}, self.out / RUN_FILES["finished"])
