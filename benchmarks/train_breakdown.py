"""Where a training iteration's time goes, per method, at full size on one GPU.

    python benchmarks/train_breakdown.py [--methods sctd,sctd:perp_neg,sds,ism,cds,gcs] [--iters 10] [--compile] [--json OUT]

The same setup as ``train_step.py`` (SD 2.1-base architectures with random weights, fp16 prior, 4 views
at 512x512, 81,920 Gaussians). The trainer's own step runs unchanged; its parts are wrapped from the
outside and timed with CUDA events, the device synchronised around each part (so the parts add up to a
little more than an unsynchronised step):

- render: the 4 views (gsplat) and their regularisers' inputs;
- vae_encode: the VAE encoder forward (with the posterior sample);
- unet: every UNet forward of the loss (calls per iteration and ms per call reported too);
- vae_decode: the VAE decoder (GCS's pixel term only);
- loss_other: the loss's own arithmetic outside the UNet;
- backward: the backward pass (VAE encoder backward + rasterizer backward + regularisers);
- densify, optimizers: densification bookkeeping and the Adam steps;
- other: the rest of the step (camera sampling, gradient clipping, logging records).
Medians over ``--iters`` iterations after ``--warmup``.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from contextlib import contextmanager

import torch
from bench_common import Column, add_compile_option, benchmark_config, machine, report

import segmentdreamer.scene.densify as densify_module
from segmentdreamer.testing.tiny_models import full_size_stable_diffusion
from segmentdreamer.training.trainer import Trainer

PARTS = ("render", "vae_encode", "unet", "vae_decode", "loss_other", "backward", "densify", "optimizers", "other")


class Timer:
    """Accumulates synchronised CUDA-event milliseconds per part within one iteration."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)
        self.unet_calls = 0

    @contextmanager
    def part(self, name: str):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        yield
        end.record()
        torch.cuda.synchronize()
        self.current[name] += start.elapsed_time(end)

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            with self.part(name):
                return function(*args, **kwargs)

        return timed


class TimedLoss:
    """Stands in for the trainer's loss: times the call, and the UNet calls inside it separately."""

    def __init__(self, loss, timer: Timer):
        self.loss, self.timer = loss, timer

    def __call__(self, prior, batch):
        with self.timer.part("loss_total"):
            return self.loss(prior, batch)

    def __getattr__(self, name):
        return getattr(self.loss, name)


def instrument(trainer: Trainer, timer: Timer) -> None:
    prior = trainer.prior
    trainer._render_views = timer.wrap("render", trainer._render_views)
    prior.encode = timer.wrap("vae_encode", prior.encode)
    prior.decode = timer.wrap("vae_decode", prior.decode)
    predict = prior.predict_noise

    def counted_predict(*args, **kwargs):
        timer.unet_calls += 1
        with timer.part("unet"):
            return predict(*args, **kwargs)

    prior.predict_noise = counted_predict
    trainer.loss = TimedLoss(trainer.loss, timer)
    for optimizer in trainer.optimizers.values():
        optimizer.step = timer.wrap("optimizers", optimizer.step)


def time_method(method: str, prior, warmup: int, iters: int, out_dir: str, first_step: int) -> dict:
    trainer = Trainer(benchmark_config(method), f"{out_dir}/{method.replace(':', '_')}", prior=prior)
    timer = Timer()
    instrument(trainer, timer)
    backward, densify_step = torch.Tensor.backward, densify_module.densify_step
    torch.Tensor.backward = timer.wrap("backward", backward)
    densify_module.densify_step = timer.wrap("densify", densify_step)
    rows, calls = [], []
    try:
        for i in range(warmup + iters):
            timer.current, timer.unet_calls = defaultdict(float), 0
            with timer.part("step"):
                trainer.step(first_step + i)
            if i >= warmup:
                part = dict(timer.current)
                part["loss_other"] = part.pop("loss_total", 0.0) - part.get("unet", 0.0) - part.get("vae_decode", 0.0)
                part["other"] = part["step"] - sum(part.get(name, 0.0) for name in PARTS if name != "other")
                rows.append(part)
                calls.append(timer.unet_calls)
    finally:
        torch.Tensor.backward, densify_module.densify_step = backward, densify_step
    medians = {name: statistics.median(row.get(name, 0.0) for row in rows) for name in (*PARTS, "step")}
    unet_calls = statistics.median(calls)
    return {"method": method, **medians, "unet_calls": unet_calls, "ms_per_unet_call": medians["unet"] / max(unet_calls, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd,sctd:perp_neg,sds,ism,cds,gcs")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--first-step", type=int, default=3001)
    add_compile_option(parser)
    parser.add_argument("--out", default="/tmp/segmentdreamer-breakdown")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    prior = full_size_stable_diffusion("cuda", torch.float16)
    if args.compile:
        prior.compile(args.compile)
    rows = [time_method(m, prior, args.warmup, args.iters, args.out, args.first_step) for m in args.methods.split(",")]
    columns = [Column("method", "method", "{}", 14), *(Column(name, name) for name in (*PARTS, "step")),
               Column("unet_calls", "UNet calls"), Column("ms_per_unet_call", "ms/call", width=9)]
    report(f"{machine()}; 4 views 512x512, 81920 Gaussians, fp16 prior, "
           f"{f'prior compiled ({args.compile})' if args.compile else 'eager'}; medians in ms, parts synchronised",
           columns, rows, args.json)


if __name__ == "__main__":
    main()
