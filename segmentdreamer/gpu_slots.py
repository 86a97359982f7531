"""GPU placement: which GPU of a host a workflow job runs on.

Snakemake's ``--resources gpu=N`` only bounds how many GPU jobs run at once; it never says which GPU each
one takes, so without this module every job would open GPU 0. A GPU job therefore claims a *slot* as it
starts: slot (g, j) is the j-th job on visible GPU g, held as an exclusive ``flock`` on a node-local file
named after the GPU's UUID. The first free slot in the order (0, 0), (1, 0), ..., (G-1, 0), (0, 1), ...
wins, so the jobs fill every GPU once before any GPU takes a second one, and at most ``jobs_per_gpu`` share
a GPU. With more jobs than G x jobs_per_gpu slots, the extra job waits for a slot (and says so in its log).

Why locks: they die with the process (also under ``kill -9`` or a node's OOM killer), so no slot leaks and
no bookkeeping needs cleaning up. Why UUIDs: two workflows on one host, or SLURM jobs that each see a
different physical GPU as device 0, then share the bookkeeping correctly.

    snakemake --resources gpu=8 --config jobs_per_gpu=2     # 4 GPUs, two training processes on each

``jobs_per_gpu`` reaches the job as the environment variable :data:`JOBS_PER_GPU_ENV` (the rules set it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

JOBS_PER_GPU_ENV = "SEGMENTDREAMER_JOBS_PER_GPU"
"""Environment variable carrying the workflow's ``jobs_per_gpu`` into each GPU job (default 1)."""
LOCK_DIR_ENV = "SEGMENTDREAMER_GPU_SLOT_DIR"
"""Optional override of the node-local folder holding the slot locks."""

_held: list[int] = []  # open file descriptors of this process's slot locks (closed when the process ends)


@dataclass(frozen=True)
class GpuSlot:
    """A claimed slot: ``index`` is the visible CUDA device index, ``job`` the slot's number on that GPU."""

    index: int
    uuid: str
    job: int
    lock_file: Path

    def describe(self, jobs_per_gpu: int) -> str:
        return f"cuda:{self.index} ({self.uuid}), job slot {self.job + 1} of {jobs_per_gpu} on it"


def default_lock_dir() -> Path:
    """Node-local (``$TMPDIR`` or /tmp), per user: ``segmentdreamer-gpu-slots-<uid>``."""
    override = os.environ.get(LOCK_DIR_ENV)
    return Path(override) if override else Path(tempfile.gettempdir()) / f"segmentdreamer-gpu-slots-{os.getuid()}"


def jobs_per_gpu_from_env() -> int:
    """The ``jobs_per_gpu`` the workflow passed (via :data:`JOBS_PER_GPU_ENV`), 1 when unset."""
    from .config import ConfigError

    raw = os.environ.get(JOBS_PER_GPU_ENV, "1")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"jobs_per_gpu: expected an integer >= 1, got {raw!r} (environment {JOBS_PER_GPU_ENV})")
    return value


def slot_order(gpu_count: int, jobs_per_gpu: int) -> list[tuple[int, int]]:
    """(gpu, job) pairs in claiming order: every GPU's first job, then every GPU's second job, ..."""
    return [(gpu, job) for job in range(jobs_per_gpu) for gpu in range(gpu_count)]


def try_claim(gpu_ids: Sequence[str], jobs_per_gpu: int, lock_dir: Path) -> GpuSlot | None:
    """The first free slot, locked for the rest of this process's life; None when every slot is taken.

    Raises:
        ConfigError: ``lock_dir`` cannot be a folder of lock files (a file there, no permission), naming it.
    """
    from .config import ConfigError

    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(lock_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {lock_dir}")
    except (FileExistsError, NotADirectoryError, PermissionError) as error:
        raise ConfigError(f"GPU slot locks: {lock_dir} must be a writable folder ({type(error).__name__}: {error}); "
                          f"remove what is there or set {LOCK_DIR_ENV} to another folder") from None
    for gpu, job in slot_order(len(gpu_ids), jobs_per_gpu):
        path = lock_dir / f"{_safe(gpu_ids[gpu])}.job{job}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        _held.append(descriptor)
        return GpuSlot(gpu, gpu_ids[gpu], job, path)
    return None


def claim(gpu_ids: Sequence[str], jobs_per_gpu: int, lock_dir: Path | None = None, poll_s: float = 1.0,
          timeout_s: float | None = None) -> GpuSlot:
    """Block until a slot is free (see the module docstring) and return it.

    Args:
        gpu_ids: one identifier per visible GPU, in device-index order (UUIDs; tests pass made-up ones).
        jobs_per_gpu: how many jobs may share one GPU.
        lock_dir: the folder of lock files (default :func:`default_lock_dir`).
        timeout_s: give up (TimeoutError) after this long; None waits as long as it takes.
    """
    if not gpu_ids:
        raise ValueError("claim() needs at least one GPU")
    lock_dir = lock_dir or default_lock_dir()
    start, announced = time.monotonic(), False
    while (slot := try_claim(gpu_ids, jobs_per_gpu, lock_dir)) is None:
        if not announced:
            log.info("all %d GPU slots are taken (%d GPUs x jobs_per_gpu %d, locks in %s); waiting for one",
                     len(gpu_ids) * jobs_per_gpu, len(gpu_ids), jobs_per_gpu, lock_dir)
            announced = True
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no GPU slot came free in {timeout_s:.0f} s (locks in {lock_dir})")
        time.sleep(poll_s)
    return slot


def visible_gpu_ids() -> list[str]:
    """UUIDs of the CUDA devices this process sees (``CUDA_VISIBLE_DEVICES`` applies); [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    ids = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        ids.append(f"GPU-{uuid}" if uuid is not None else f"cuda{index}")
    return ids


def claim_gpu_for_job() -> GpuSlot | None:
    """What a GPU verb of the command line does first: claim a slot and make its GPU this process's device.

    No-op (None) without CUDA, or when :data:`JOBS_PER_GPU_ENV` is unset (a command typed by hand takes the
    default GPU as any torch program does; the workflow's GPU rules set the variable). ``devices.resolve_device("auto" | "cuda")`` returns the claimed GPU afterwards.
    """
    from . import devices

    if JOBS_PER_GPU_ENV not in os.environ:
        return None
    gpu_ids = visible_gpu_ids()
    if not gpu_ids:
        return None
    jobs_per_gpu = jobs_per_gpu_from_env()
    slot = claim(gpu_ids, jobs_per_gpu)
    devices.assign_gpu(slot.index)
    log.info("GPU placement: %s", slot.describe(jobs_per_gpu))
    return slot


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
