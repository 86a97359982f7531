"""GPU placement (segmentdreamer/gpu_slots.py) on a CPU: made-up GPU ids stand in for a host's GPUs.

Slots are flock'ed files, so the real mechanism runs here: several processes claiming at once get distinct
slots, every GPU's first slot goes before any second one, an extra job waits, a killed job frees its slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from segmentdreamer import devices, gpu_slots
from segmentdreamer.config import ConfigError

GPUS = ["GPU-aaaa", "GPU-bbbb"]

CLAIMER = """
import sys, time
from pathlib import Path
from segmentdreamer.gpu_slots import claim
slot = claim({gpus!r}, {jobs}, Path({lock_dir!r}), poll_s=0.05)
print(slot.index, slot.job, flush=True)
while not Path({release!r}).exists():
    time.sleep(0.05)
"""


def start_claimer(tmp_path, jobs: int, release_name: str) -> subprocess.Popen:
    code = CLAIMER.format(gpus=GPUS, jobs=jobs, lock_dir=str(tmp_path / "locks"), release=str(tmp_path / release_name))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_slot_order_fills_every_gpu_before_doubling_up():
    assert gpu_slots.slot_order(3, 2) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


def test_claims_in_one_process_spread_over_the_gpus_then_share(tmp_path):
    taken = [gpu_slots.try_claim(GPUS, 2, tmp_path) for _ in range(5)]
    assert [(s.index, s.job) for s in taken[:4]] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert [s.uuid for s in taken[:4]] == ["GPU-aaaa", "GPU-bbbb", "GPU-aaaa", "GPU-bbbb"]
    assert taken[4] is None  # 2 GPUs x 2 jobs: a fifth job gets no slot
    with pytest.raises(TimeoutError, match="no GPU slot came free"):
        gpu_slots.claim(GPUS, 2, tmp_path, poll_s=0.01, timeout_s=0.05)


def test_concurrent_jobs_get_distinct_slots_and_an_extra_one_waits(tmp_path):
    """Five processes at once on 2 GPUs x 2 jobs: four distinct slots; the fifth waits until a job ends, then
    takes exactly the slot that job freed (the only free one)."""
    first = [start_claimer(tmp_path, 2, f"release-{k}") for k in range(4)]
    held = {tuple(map(int, p.stdout.readline().split())): k for k, p in enumerate(first)}
    assert sorted(held) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    extra = start_claimer(tmp_path, 2, "release-extra")
    time.sleep(0.5)
    assert extra.poll() is None  # still waiting, printed nothing
    ending = held[(1, 0)]
    (tmp_path / f"release-{ending}").touch()
    assert first[ending].wait(timeout=30) == 0
    assert tuple(map(int, extra.stdout.readline().split())) == (1, 0)
    for k in range(4):
        (tmp_path / f"release-{k}").touch()
    (tmp_path / "release-extra").touch()
    for process in [*first, extra]:
        assert process.wait(timeout=30) == 0


def test_a_killed_job_frees_its_slot(tmp_path):
    holder = start_claimer(tmp_path, 1, "never")
    assert holder.stdout.readline().split() == ["0", "0"]
    assert gpu_slots.try_claim(GPUS[:1], 1, tmp_path / "locks") is None
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    slot = gpu_slots.try_claim(GPUS[:1], 1, tmp_path / "locks")
    assert slot is not None and (slot.index, slot.job) == (0, 0)


def test_jobs_per_gpu_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.delenv(gpu_slots.JOBS_PER_GPU_ENV, raising=False)
    assert gpu_slots.jobs_per_gpu_from_env() == 1
    monkeypatch.setenv(gpu_slots.JOBS_PER_GPU_ENV, "3")
    assert gpu_slots.jobs_per_gpu_from_env() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(gpu_slots.JOBS_PER_GPU_ENV, bad)
        with pytest.raises(ConfigError, match="jobs_per_gpu"):
            gpu_slots.jobs_per_gpu_from_env()


def test_a_job_claims_only_under_the_workflow_and_only_with_cuda(monkeypatch, tmp_path):
    """No variable (a command typed by hand): nothing claimed. Variable set, fake GPUs: the slot's GPU becomes
    what ``auto`` and ``cuda`` resolve to; ``cuda:N`` is left as written."""
    assigned = []
    monkeypatch.setattr(gpu_slots, "visible_gpu_ids", lambda: GPUS)
    monkeypatch.setattr(devices, "assign_gpu", lambda index: assigned.append(index))
    monkeypatch.setenv(gpu_slots.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(gpu_slots.JOBS_PER_GPU_ENV, raising=False)
    assert gpu_slots.claim_gpu_for_job() is None and assigned == []
    monkeypatch.setenv(gpu_slots.JOBS_PER_GPU_ENV, "1")
    first, second = gpu_slots.claim_gpu_for_job(), gpu_slots.claim_gpu_for_job()
    assert (first.index, second.index) == (0, 1) and assigned == [0, 1]
    monkeypatch.setattr(gpu_slots, "visible_gpu_ids", lambda: [])
    assert gpu_slots.claim_gpu_for_job() is None  # no CUDA: no slot


def test_resolve_device_returns_the_assigned_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(devices, "_assigned_gpu", torch.device("cuda", 1))
    assert devices.resolve_device("auto") == torch.device("cuda", 1)
    assert devices.resolve_device("cuda") == torch.device("cuda", 1)
    assert devices.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device,expected", [("auto", 2), ("cpu", None)])
def test_every_gpu_job_gets_jobs_per_gpu_and_cpu_runs_claim_nothing(tmp_path, device, expected):
    """The smoke DAG planned (dry run, commands printed) with jobs_per_gpu=2: every job of a GPU rule starts
    ``SEGMENTDREAMER_JOBS_PER_GPU=2 segmentdreamer <verb>``; with ``device: cpu`` no job does (no slot taken)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        ["snakemake", "-n", "-p", "--configfile", "workflow/smoke.yaml", "--config", f"device={device}", "jobs_per_gpu=2",
         f'pathvars={{"results": "{tmp_path / "results"}"}}', "check_models=False"],
        cwd=root, capture_output=True, text=True, check=True)
    rules = re.findall(r"^rule (\w+):", result.stdout, flags=re.M)
    with_env = re.findall(r"SEGMENTDREAMER_JOBS_PER_GPU=(\d+) segmentdreamer ([a-z-]+)", result.stdout)
    gpu_rules = {"init_pointe": "init", "train": "train", "render": "render", "evaluate_run": "evaluate", "reference_images": "ref-images", "fid": "fid"}
    if expected is None:
        assert with_env == [] and "SEGMENTDREAMER_JOBS_PER_GPU" not in result.stdout
        return
    assert sorted(verb for _, verb in with_env) == sorted(gpu_rules[r] for r in rules if r in gpu_rules)
    assert {int(value) for value, _ in with_env} == {expected}
    assert len(with_env) > 50  # the smoke DAG: 15 runs' train, render and scores, init, references, FID
