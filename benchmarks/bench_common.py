"""What every benchmark script shares: CUDA-event timing, the machine line, the printed table and the JSON.

Scripts run as ``python benchmarks/<name>.py`` (this folder is then on ``sys.path``), so they import
it as ``from bench_common import ...``.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Column:
    """One printed column: ``title`` over ``fmt.format(row[key])`` (``-`` where the row has no ``key``)."""

    key: str
    title: str
    fmt: str = "{:.1f}"
    width: int = 11

    def cell(self, row: dict) -> str:
        value = row.get(self.key)
        return ("-" if value is None else self.fmt.format(value)).rjust(self.width)


def machine() -> str:
    """GPU name and the versions that set the speed (torch, diffusers, gsplat where installed)."""
    parts = [torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", f"torch {torch.__version__}"]
    for name in ("diffusers", "gsplat"):
        try:
            parts.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


def median_cuda_ms(function: Callable[[], object], warmup: int, iters: int) -> float:
    """Median over ``iters`` calls of ``function`` (after ``warmup`` calls) in CUDA-event milliseconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def quartiles(times: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``times``; a single time is all three."""
    q1, median, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else (times[0],) * 3
    return q1, median, q3


def report(setup: str, columns: Sequence[Column], rows: Sequence[dict], json_path: str | None, **extra) -> None:
    """Print ``setup`` and one line per row, and write ``{"setup", "rows", **extra}`` to ``json_path`` if given."""
    print(setup)
    print("".join(column.title.rjust(column.width) for column in columns))
    for row in rows:
        print("".join(column.cell(row) for column in columns))
    if json_path:
        with open(json_path, "w") as handle:
            json.dump({"setup": setup, "rows": list(rows), **extra}, handle, indent=2)


def add_compile_option(parser) -> None:
    """``--compile [MODE]``: compile the prior as ``train.compile_prior`` does (``DiffusionPrior.compile``)."""
    parser.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                        help="torch.compile the UNet in MODE (default | reduce-overhead) and the VAE decoder, as compile_prior")


def add_training_options(parser, iters: int = 10) -> None:
    """The options of the training benchmarks: warm-up and timed iterations, first step, scratch folder, JSON,
    --compile."""
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=iters)
    parser.add_argument("--first-step", type=int, default=3001, help="iteration number of the first step (after warm-up schedules)")
    parser.add_argument("--out", default="/tmp/segmentdreamer-bench")
    parser.add_argument("--json", default=None)
    add_compile_option(parser)


def full_size_prior(args, dynamic_batch: bool = False):
    """Full-size random-weight SD 2.1-base in fp16 on CUDA, compiled as ``--compile`` asks (UNet for a dynamic
    batch size with ``dynamic_batch``, as a multi-asset job compiles it)."""
    from segmentdreamer.testing.tiny_models import full_size_stable_diffusion

    prior = full_size_stable_diffusion("cuda", torch.float16)
    if args.compile:
        prior.compile(args.compile, dynamic_batch=dynamic_batch)
    return prior


def benchmark_config(token: str):
    """The trainer's full-size benchmark config for ``method`` or ``method:perp_neg`` (e.g. ``sctd:perp_neg``).

    4 views at 512x512 and 81,920 Gaussians (the Point-E init's count), everything else the trainer's defaults.
    """
    from segmentdreamer.config import TrainConfig

    method, _, variant = token.partition(":")
    if variant not in ("", "perp_neg"):
        raise SystemExit(f"--methods: {token!r}: the only variant is ':perp_neg' (e.g. sctd:perp_neg)")
    return TrainConfig(prompt="a DSLR photo of a corgi", method=method, perp_neg=variant == "perp_neg",
                       sphere_points=81920, device="cuda")


def batched_round_times(prior, configs: Sequence, out: str, first_step: int, warmup: int, rounds: int | None = None,
                        window: float | None = None, on_warm: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of each timed round of ``len(configs)`` trainers sharing ``prior`` through ``BatchingPrior``.

    A round is one iteration of every asset (each in its own thread, as ``multi_asset.train_assets`` runs them);
    rounds start together, so a round lasts as long as its slowest asset and the GPU is synchronised between
    rounds. After ``warmup`` rounds, ``on_warm`` runs (e.g. a barrier with other processes), then rounds are
    timed until ``rounds`` of them are done or ``window`` seconds have passed.
    """
    from segmentdreamer.training.multi_asset import BatchingPrior
    from segmentdreamer.training.trainer import Trainer

    if (rounds is None) == (window is None):
        raise ValueError("batched_round_times: give rounds or window")
    shared = BatchingPrior(prior, members=len(configs))
    trainers = [Trainer(config, f"{out}/asset{i}", prior=shared) for i, config in enumerate(configs)]
    stamps: list[float] = []
    stop = threading.Event()

    def between_rounds() -> None:  # run by one thread once every asset finished the round
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if len(stamps) == warmup and on_warm is not None:
            on_warm()
        stamps.append(time.perf_counter())
        timed = len(stamps) - 1 - warmup
        if timed >= 1 and (timed >= rounds if rounds is not None else stamps[-1] - stamps[warmup] >= window):
            stop.set()
        shared.rejoin(len(trainers))  # the next round's calls batch across all assets again

    barrier = threading.Barrier(len(trainers), action=between_rounds)
    failures: list[BaseException] = []

    def work(trainer) -> None:
        step = first_step
        try:
            while True:
                shared.leave()  # an asset waiting for the round to end makes no UNet call: the others must not wait for one
                barrier.wait()
                if stop.is_set():
                    return
                trainer.step(step)
                step += 1
        except threading.BrokenBarrierError:
            return
        except BaseException as error:  # noqa: BLE001 - re-raised below, after the others stopped
            failures.append(error)
            shared.leave()
            barrier.abort()

    threads = [threading.Thread(target=work, args=(trainer,)) for trainer in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [1000.0 * (b - a) for a, b in zip(stamps[warmup:-1], stamps[warmup + 1:])]
