"""What Table 1 and the whole workflow cost on this GPU: today's path against the fast default, one command.

    python benchmarks/table1_cost.py [--methods sctd,sds,ism,cds,gcs] [--throughput 5x1,1x4] [--window 25] [--json OUT.json]
                                     [--scratch DIR]   # a second call with the same DIR picks up where the first stopped

Full-size SD 2.1-base architectures with random weights (weights do not change the cost), fp16, 4 views at
512^2, 81,920 Gaussians, the trainer's full step (``benchmark_config``). Three measurements, each in fresh
worker processes (this script started again with ``--worker``), all in the same run so that they share the
machine (absolute times move +-25 % between H200 leases; compare the ratios):

1. ``today``: one asset at a time, eager prior (what ``config.yaml`` shipped before compile_prior defaulted to on).
2. ``fast``: one asset at a time, the default now: ``DiffusionPrior.compile`` (UNet, VAE encoder and decoder).
3. ``throughput``, one measurement per ``--throughput`` setting JxK: J training processes at once on the GPU
   (``jobs_per_gpu: J``), each training K assets of one method in one process (``assets_per_job: K``, their
   UNet calls batched, the UNet compiled for a dynamic batch as a multi-asset job compiles it), fast path.
   5x1: five processes, one asset of each method; 1x4: one process, each method's four assets in turn. The
   workers of a group wait at a barrier until all have compiled, then run for ``--window`` seconds; a method's
   per-asset ms/iter is its process's median iteration time (all its assets) divided by J x K.

Per method the table gives median ms/iter (quartiles) of 1 and 2, and each setting of 3; then the projected GPU-hours of
Table 1 (the planned runs of ``config.yaml``: 40 prompts x 5 methods x 5000 iterations) and of the ``all``
target (Table 1 + ablations + gallery), per path. Perp-Neg SCTD runs (ablation) are costed at SCTD's
throughput ratio applied to its own single-asset time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import Column, batched_round_times, benchmark_config, machine, quartiles, report

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- worker side
def run_worker(args: argparse.Namespace) -> None:
    """Time ``args.methods`` one after another on one prior (eager or compiled), ``args.assets`` assets of the
    method at a time; JSON to ``args.json``: per method the median (quartiles) of an iteration of all its assets."""
    import torch

    from segmentdreamer.testing.tiny_models import full_size_stable_diffusion

    prior = full_size_stable_diffusion("cuda", torch.float16)
    if args.path != "today":
        prior.compile(dynamic_batch=args.assets > 1)  # as train_assets compiles a multi-asset job's prior
    on_warm = (lambda: wait_at_barrier(Path(args.barrier), args.barrier_count)) if args.barrier else None
    results = {}
    for method in args.methods.split(","):
        scratch = Path(args.scratch) / f"{method.replace(':', '_')}-{os.getpid()}"
        if args.assets == 1:
            times = lone_times(prior, method, scratch, args, on_warm)
        else:  # same seed for all, as Table 1's runs (seed 0): their (t, s) draws, so their UNet calls, stay in lockstep
            limit = dict(window=args.window) if args.window else dict(rounds=args.iters)
            times = batched_round_times(prior, [benchmark_config(method) for _ in range(args.assets)], str(scratch),
                                        3001, args.warmup, on_warm=on_warm, **limit)
        q1, median, q3 = quartiles(times)
        results[method] = {"median_ms": median, "q1_ms": q1, "q3_ms": q3, "iterations": len(times), "assets": args.assets,
                           "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30}
        torch.cuda.reset_peak_memory_stats()
    Path(args.json).write_text(json.dumps(results), encoding="utf-8")


def lone_times(prior, method: str, scratch: Path, args: argparse.Namespace, on_warm) -> list[float]:
    """Milliseconds of each timed iteration of one asset of ``method`` (synchronised), after ``args.warmup``."""
    import torch

    from segmentdreamer.training.trainer import Trainer

    trainer = Trainer(benchmark_config(method), scratch, prior=prior)
    step = 3001  # after the warm-up schedules
    for _ in range(args.warmup):
        trainer.step(step)
        step += 1
    torch.cuda.synchronize()
    if on_warm is not None:
        on_warm()
    times, deadline = [], time.perf_counter() + args.window if args.window else None
    while (deadline is None and len(times) < args.iters) or (deadline is not None and time.perf_counter() < deadline):
        start = time.perf_counter()
        trainer.step(step)
        torch.cuda.synchronize()
        times.append(1000.0 * (time.perf_counter() - start))
        step += 1
    return times


def wait_at_barrier(folder: Path, count: int) -> None:
    """Every worker of a throughput group writes its pid here, then waits for the others (all compiled)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{os.getpid()}.ready").write_text("ready", encoding="utf-8")
    while len(list(folder.glob("*.ready"))) < count:
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- driver side
def start_worker(path: str, methods: str, out: Path, scratch: Path, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", "--path", path, "--methods", methods, "--json", str(out),
               "--scratch", str(scratch), *extra]
    return subprocess.Popen(command, cwd=ROOT)


def finish(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a worker failed (exit {process.returncode}): {process.args}")


def check_scratch(scratch: Path, settings: dict) -> None:
    """Measurements in ``scratch`` are reused only under the settings they were made with (recorded there by
    the first run): a rerun with other iterations, warm-up, window or methods stops instead of mixing them."""
    record = scratch / "settings.json"
    if not record.exists():
        record.write_text(json.dumps(settings), encoding="utf-8")
        return
    earlier = json.loads(record.read_text(encoding="utf-8"))
    changed = {key: (earlier.get(key), value) for key, value in settings.items() if earlier.get(key) != value}
    if changed:
        raise SystemExit(f"--scratch {scratch}: its measurements were made with other settings "
                         + ", ".join(f"{key} {was!r} (now {now!r})" for key, (was, now) in changed.items())
                         + "; use the same options or another folder")


def measured(outs: list[Path]) -> bool:
    """True when an earlier run with the same ``--scratch`` already wrote every one of ``outs`` (a worker writes
    its JSON only when it has finished), so that measurement is reused instead of run again."""
    if all(out.exists() for out in outs):
        print(f"reusing {', '.join(out.name for out in outs)} from {outs[0].parent}", flush=True)
        return True
    return False


def single_asset(path: str, methods: list[str], args, scratch: Path) -> dict:
    out = scratch / f"single-{path}.json"
    if not measured([out]):
        finish([start_worker(path, ",".join(methods), out, scratch,
                             ["--iters", str(args.iters), "--warmup", str(args.warmup)])])
    return json.loads(out.read_text())


def throughput(methods: list[str], jobs: int, assets: int, args, scratch: Path) -> dict[str, float]:
    """Per-asset ms/iter with ``jobs`` processes sharing the GPU, each training ``assets`` assets of one method
    at once (``jobs_per_gpu`` x ``assets_per_job``). Returns method -> the GPU's cost of one asset-iteration.

    ``jobs == 1``: one process, the methods one after another. Otherwise groups of ``jobs`` processes run one
    after another, process k of group g training ``methods[(g * jobs + k) % len(methods)]``, until every method
    ran. Each process's median iteration time t (all its assets) while its group runs is what its assets pay
    in wall time; the GPU's cost of one asset-iteration is t / (jobs x assets).
    """
    if jobs == 1:
        out = scratch / f"throughput-1x{assets}.json"
        if not measured([out]):
            finish([start_worker("fast", ",".join(methods), out, scratch,
                                 ["--iters", str(args.iters), "--warmup", str(args.warmup), "--assets", str(assets)])])
        return {method: row["median_ms"] / assets for method, row in json.loads(out.read_text()).items()}
    shared = collections.defaultdict(list)
    for group in range(-(-len(methods) // jobs)):
        barrier = scratch / f"barrier-{jobs}x{assets}-{group}"
        assignment = [methods[(group * jobs + k) % len(methods)] for k in range(jobs)]
        outs = [scratch / f"throughput-{jobs}x{assets}-{group}-{k}.json" for k in range(jobs)]
        if not measured(outs):
            shutil.rmtree(barrier, ignore_errors=True)  # a group killed before finishing left its workers' pids there
            finish([start_worker("fast", method, out, scratch, ["--warmup", str(args.warmup), "--window", str(args.window),
                                                                  "--barrier", str(barrier), "--barrier-count", str(jobs),
                                                                  "--assets", str(assets)])
                    for method, out in zip(assignment, outs)])
        for method, out in zip(assignment, outs):
            shared[method].append(json.loads(out.read_text())[method]["median_ms"])
    return {method: statistics.mean(times) / (jobs * assets) for method, times in shared.items()}


def parse_settings(text: str) -> list[tuple[int, int]]:
    """``"5x1,1x4"`` -> [(5, 1), (1, 4)]: (jobs per GPU, assets per job) of each throughput setting."""
    try:
        settings = [tuple(int(n) for n in item.split("x")) for item in text.split(",")]
    except ValueError:
        settings = []
    if not settings or any(len(s) != 2 or min(s) < 1 for s in settings):
        raise SystemExit(f"--throughput: expected JOBSxASSETS[,...] with integers >= 1 (e.g. 5x1,1x4), got {text!r}")
    return settings


def planned_runs(config_path: Path) -> tuple[collections.Counter, collections.Counter]:
    """(method token, iterations) -> number of runs, for Table 1 and for every run of the ``all`` target."""
    import yaml

    from segmentdreamer.plan.experiment import load_experiment

    experiment = load_experiment(yaml.safe_load(config_path.read_text(encoding="utf-8")), root=ROOT, check_runs=False)

    def count(runs) -> collections.Counter:
        counter = collections.Counter()
        for run in runs:
            settings = experiment.run_config(run)
            token = settings["method"] + (":perp_neg" if settings.get("perp_neg") else "")
            counter[(token, int(settings.get("iterations", 5000)))] += 1
        return counter

    table1 = [run for prompt_set in experiment.table1_sets for run in experiment.table1_runs(prompt_set)]
    return count(table1), count(experiment.all_runs())


def gpu_hours(runs: collections.Counter, ms_per_iteration: dict[str, float]) -> float:
    return sum(n * iterations * ms_per_iteration[token] for (token, iterations), n in runs.items()) / 3.6e6


def drive(args: argparse.Namespace) -> None:
    methods = args.methods.split(",")
    settings = parse_settings(args.throughput)
    table1, everything = planned_runs(ROOT / "config.yaml")
    tokens = sorted({token for token, _ in everything} | set(methods))
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="table1-cost-"))
    scratch.mkdir(parents=True, exist_ok=True)
    check_scratch(scratch, {"methods": methods, "tokens": tokens, "iters": args.iters, "warmup": args.warmup, "window": args.window})
    started = time.perf_counter()
    today = single_asset("today", tokens, args, scratch)
    print("today:", {token: round(row["median_ms"], 1) for token, row in today.items()}, flush=True)
    fast = single_asset("fast", tokens, args, scratch)
    print("fast:", {token: round(row["median_ms"], 1) for token, row in fast.items()}, flush=True)
    paths = {"today": {t: today[t]["median_ms"] for t in tokens}, "fast": {t: fast[t]["median_ms"] for t in tokens}}
    for jobs, assets in settings:
        shared = throughput(methods, jobs, assets, args, scratch)
        print(f"{jobs}x{assets}:", {token: round(ms, 1) for token, ms in shared.items()}, flush=True)
        # a token not measured (SCTD + Perp-Neg) at its base method's sharing ratio applied to its own fast time
        paths[f"{jobs}x{assets}"] = {t: shared.get(t) or shared[t.partition(":")[0]] * fast[t]["median_ms"]
                                     / fast[t.partition(":")[0]]["median_ms"] for t in tokens}
    names = [f"{jobs}x{assets}" for jobs, assets in settings]
    rows = []
    for token in tokens:
        row = {"method": token, "today": today[token]["median_ms"], "today_iqr": f"{today[token]['q1_ms']:.0f}-{today[token]['q3_ms']:.0f}",
               "fast": fast[token]["median_ms"], "fast_iqr": f"{fast[token]['q1_ms']:.0f}-{fast[token]['q3_ms']:.0f}",
               "speedup": today[token]["median_ms"] / fast[token]["median_ms"], "peak_gb": fast[token]["peak_memory_gb"]}
        for name in names:
            row[name], row[f"{name}_gain"] = paths[name][token], today[token]["median_ms"] / paths[name][token]
        rows.append(row)
    mix = {name: statistics.mean(paths[name][m] for m in methods) for name in paths}
    best = min(names, key=mix.get)
    hours = {name: {"table1": gpu_hours(table1, paths[name]), "all": gpu_hours(everything, paths[name])} for name in paths}
    columns = [Column("method", "method", "{}", 14), Column("today", "today ms"), Column("today_iqr", "IQR", "{}", 10),
               Column("fast", "fast ms"), Column("fast_iqr", "IQR", "{}", 10), Column("speedup", "x", "{:.2f}", 7)]
    for name in names:
        columns += [Column(name, f"{name} ms"), Column(f"{name}_gain", "x", "{:.2f}", 7)]
    columns.append(Column("peak_gb", "peak GB", width=9))
    report(f"{machine()}; 4 views 512^2, 81920 Gaussians, fp16; medians over {args.iters} iterations; throughput "
           f"settings JOBSxASSETS (jobs per GPU x assets per job), {args.window:.0f} s windows, ms per asset-iteration",
           columns, rows, args.json, mix_ms_per_asset_iteration=mix, gpu_hours=hours, best_throughput=best,
           throughput_settings=names, wall_s=time.perf_counter() - started)
    print(f"\nmix of {', '.join(methods)} (ms per asset-iteration): "
          + ", ".join(f"{name} {value:.1f}" for name, value in mix.items()) + f"; best throughput setting {best}")
    for name in paths:
        print(f"GPU-hours on this GPU, {name:>10}: Table 1 {hours[name]['table1']:6.1f}   all {hours[name]['all']:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd,sds,ism,cds,gcs", help="the Table 1 mix (throughput is measured for each)")
    parser.add_argument("--throughput", default="5x1,1x4",
                        help="throughput settings JOBSxASSETS: JOBS processes on the GPU at once (jobs_per_gpu), each training "
                             "ASSETS assets of one method in one process (assets_per_job); default 5x1,1x4")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations of the single-asset paths")
    parser.add_argument("--warmup", type=int, default=6, help="untimed iterations first (compilation of each batch size)")
    parser.add_argument("--window", type=float, default=25.0, help="seconds of the throughput measurement")
    parser.add_argument("--json", default=None)
    # worker mode (started by the driver)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=("today", "fast"), default="fast", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default=None,
                        help="folder of the workers' outputs (default: a new temporary folder); a rerun with the same folder "
                             "reuses the measurements already in it, e.g. to finish on the same machine in a second call")
    parser.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--barrier-count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--assets", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if not args.barrier:
            args.window = 0.0
        run_worker(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
