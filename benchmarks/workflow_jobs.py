"""The workflow's training jobs on this host: wall time and per-asset cost for each way of packing them.

    python benchmarks/workflow_jobs.py [--prompts 4] [--methods sctd] [--iterations 100] [--settings 1x1,4x1]
                                       [--gpus N] [--model DIR] [--work DIR] [--json OUT.json]

Each setting ``AxJ`` runs `snakemake` on the same small plan (``--prompts`` prompts x ``--methods``, sphere
init of 81,920 Gaussians, 4 views at 512^2, full-size random-weight SD 2.1-base in fp16 written once to
``--model``) with ``assets_per_job: A`` and ``jobs_per_gpu: J`` under ``--resources gpu=<GPUs x J>``, into its
own results folder. Reported per setting: the workflow's wall time (job start-up, prior loading, compiles and
training, as a user waits for it), asset-iterations per second over that wall time, each run's ms per iteration
(its trainer's timer, which runs while the other assets of its process or GPU share the GPU), the GPUs the
jobs' logs name ("GPU placement") and, from `nvidia-smi` samples every second, the most processes seen on each
GPU at once. gsplat's extension is built before the first setting, so no setting pays for it. Ratios are
against the first setting, measured in the same call.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from bench_common import Column, machine, report

ROOT = Path(__file__).resolve().parents[1]


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def ensure_model(folder: Path) -> Path:
    if not (folder / "model_index.json").is_file():
        from segmentdreamer.testing.tiny_models import make_full_size_stable_diffusion

        print(f"writing full-size random SD 2.1-base to {folder}", flush=True)
        make_full_size_stable_diffusion(folder)
    return folder


def build_extensions(work: Path) -> None:
    """gsplat's CUDA extension, compiled once into the folder every setting's jobs use (config torch_extensions_dir)."""
    folder = work / "torch_extensions"
    subprocess.run([sys.executable, "-m", "segmentdreamer.cli", "build-extensions", "--out", str(folder / "built.txt")],
                   cwd=ROOT, env={**os.environ, "TORCH_EXTENSIONS_DIR": str(folder)}, check=True)


def write_plan(work: Path, args, assets: int, jobs_per_gpu: int) -> tuple[Path, Path]:
    """A complete workflow config for one setting and its results folder."""
    prompts = work / "prompts.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\tseed\n" + "".join(
        f"p{i}\tA DSLR photo of object number {i}\tan object.\t{i}\n" for i in range(args.prompts)), encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    results = work / f"results_{assets}x{jobs_per_gpu}"
    config.update(
        pathvars={"results": str(results), "logs": "<results>/logs", "benchmarks": "<results>/benchmarks"},
        prompt_sets={"bench": str(prompts)}, table1={"variants": args.methods.split(",")}, check_models=False,
        tiny_models=False, device="cuda", assets_per_job=assets, jobs_per_gpu=jobs_per_gpu,
        torch_extensions_dir=str(work / "torch_extensions"), init={"method": "sphere"},
    )
    config.pop("gallery", None)
    config["prompt_overrides"] = {}
    config["models"]["sd"] = str(args.model)
    config["train"].update(iterations=args.iterations, sphere_points=81920, checkpoint_every=args.iterations,
                           compile_prior=args.compile)
    path = work / f"config_{assets}x{jobs_per_gpu}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, results


def sample_gpus(stop: threading.Event, samples: list[dict]) -> None:
    """Every second: the compute processes on each GPU (nvidia-smi), but this one, until ``stop``."""
    while not stop.is_set():
        try:
            gpus = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,utilization.gpu", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=10).stdout
            apps = subprocess.run(["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return
        index = {line.split(", ")[1]: int(line.split(", ")[0]) for line in gpus.splitlines() if line.count(", ") == 2}
        busy = {int(line.split(", ")[0]): float(line.split(", ")[2]) for line in gpus.splitlines() if line.count(", ") == 2}
        processes = {gpu: 0 for gpu in index.values()}
        for line in apps.splitlines():
            uuid, pid = (line.split(", ") + [""])[:2]
            if uuid in index and pid.strip() != str(os.getpid()):  # this script holds a CUDA context too
                processes[index[uuid]] += 1
        samples.append({"t": time.time(), "processes": processes, "utilization": busy})
        stop.wait(1.0)


def run_setting(work: Path, args, assets: int, jobs_per_gpu: int, gpus: int) -> dict:
    config, results = write_plan(work, args, assets, jobs_per_gpu)
    targets = [str(results / "runs" / "bench" / method / f"p{i}" / f"seed{i}" / "finished.json")
               for method in args.methods.split(",") for i in range(args.prompts)]
    command = [sys.executable, "-m", "snakemake", *targets, "--configfile", str(config), "--cores", str(os.cpu_count()),
               "--resources", f"gpu={gpus * jobs_per_gpu}", "--rerun-incomplete"]
    samples: list[dict] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_gpus, args=(stop, samples), daemon=True)
    sampler.start()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    (work / f"snakemake_{assets}x{jobs_per_gpu}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"setting {assets}x{jobs_per_gpu}: snakemake failed; its output:\n{done.stderr[-3000:]}")
    timings = [json.loads(Path(t).with_name("timing.json").read_text()) for t in targets]
    run_ms = [t["ms_per_iteration"] for t in timings]
    placements = sorted({m for log in results.rglob("*.log") for m in re.findall(r"GPU placement: (cuda:\d+)", log.read_text(errors="replace"))})
    most = {gpu: max(s["processes"].get(gpu, 0) for s in samples) for gpu in range(gpus)} if samples else {}
    q1, median, q3 = statistics.quantiles(run_ms, n=4) if len(run_ms) > 1 else (run_ms[0],) * 3
    return {"setting": f"{assets}x{jobs_per_gpu}", "assets_per_job": assets, "jobs_per_gpu": jobs_per_gpu, "runs": len(targets),
            "wall_s": wall, "asset_it_per_s": len(targets) * args.iterations / wall, "run_ms": median, "run_q1": q1,
            "run_q3": q3, "assets_in_process": max(t["assets_in_process"] for t in timings), "gpus_named": ",".join(placements), "most_processes": most, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--methods", default="sctd")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--settings", default="1x1,4x1", help="assets_per_job x jobs_per_gpu, comma-separated")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: every visible one)")
    parser.add_argument("--compile", action="store_true", help="train.compile_prior: true (each job compiles its prior)")
    parser.add_argument("--model", type=Path, default=Path("/tmp/random-sd21-base"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/workflow_jobs"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.compile = bool(args.compile)
    args.work.mkdir(parents=True, exist_ok=True)
    ensure_model(args.model)
    build_extensions(args.work)
    gpus = args.gpus or gpu_count()
    rows = []
    for setting in args.settings.split(","):
        assets, _, jobs = setting.partition("x")
        rows.append(run_setting(args.work, args, int(assets), int(jobs or 1), gpus))
        print(f"{setting}: {rows[-1]['wall_s']:.0f} s", flush=True)
    for row in rows:
        row["wall_ratio"] = row["wall_s"] / rows[0]["wall_s"]
        row["throughput_ratio"] = row["asset_it_per_s"] / rows[0]["asset_it_per_s"]
        row["most"] = " ".join(f"{g}:{n}" for g, n in row["most_processes"].items())
    columns = [Column("setting", "AxJ", "{}", 6), Column("runs", "runs", "{}", 6), Column("wall_s", "wall s", width=9),
               Column("wall_ratio", "vs first", "{:.2f}", 9), Column("asset_it_per_s", "asset-it/s", "{:.2f}"),
               Column("throughput_ratio", "vs first", "{:.2f}", 9), Column("run_ms", "run ms/it"), Column("run_q1", "q1", width=8),
               Column("run_q3", "q3", width=8), Column("assets_in_process", "per proc", "{}", 9), Column("gpus_named", "GPUs in logs", "{}", 18),
               Column("most", "max procs/GPU", "{}", 16)]
    report(f"{machine()}; {gpus} GPU(s); {args.prompts} prompts x {args.methods}, {args.iterations} iterations, 4 views 512x512, "
           f"81920 Gaussians, fp16 random SD 2.1-base, {'compiled' if args.compile else 'eager'} prior; "
           "AxJ = assets_per_job x jobs_per_gpu", columns, rows, args.json)


if __name__ == "__main__":
    main()
