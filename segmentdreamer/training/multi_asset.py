"""Several assets trained in one process on one prior, their UNet calls batched together (throughput mode).

Each asset is an ordinary :class:`~segmentdreamer.training.trainer.Trainer` (its own scene, optimisers, loss with its own
random generators, camera sampler, checkpoints and logs) running in its own thread. They share one prior
through :class:`BatchingPrior`: a no-grad ``predict_noise`` call waits until every asset still training has
made one, then all of them run as one UNet batch (per-sample timesteps and text embeddings) and each caller
gets its own rows back. Calls that need the UNet's gradient (SCTD with ``approx: false``) run on their own.

What differs from training each asset alone: nothing in the math or the random draws (every generator is the
asset's own, drawn on the CPU as alone); only the UNet's batch composition, so its floating-point rounding
(a GEMM may pick another kernel for another batch size). Those differences are of the size of the GPU's own
run-to-run nondeterminism and grow over the iterations the same way (tests/test_multi_asset.py bounds them on
the CPU; tests/test_gpu_outputs.py on the GPU). SCTD's 3- or 4-call iterations need no special handling: an
asset whose iteration makes one call more simply joins the next batch, which then holds fewer samples.
Runs with one seed (Table 1's: seed 0) draw the same timesteps, so they make the same calls in lockstep.
A compiled prior compiles its UNet for a symbolic batch size here (``compile(dynamic_batch=True)``): the
batch sizes are sums of every live asset's call sizes.

The prior must keep no per-call state: Stable Diffusion (DiffusionPrior) and the analytic prior qualify; the
known-answer prior (it records each asset's cameras) does not and is refused.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..prior.base import Prior

log = logging.getLogger(__name__)


@dataclass
class _Request:
    x: Tensor
    t: Tensor
    embedding: Tensor
    result: Tensor | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchingPrior(Prior):
    """A prior shared by ``members`` training threads: the contract (prior/base.py) of ``prior``, with the no-grad
    ``predict_noise`` calls of all live members run as one batch."""

    prior: Prior
    members: int
    """Members still training (each finished or failed one leaves)."""
    assets_in_process: int = field(init=False)
    """Members it started with (timing.json records it)."""
    batches: int = 0
    samples: int = 0
    _pending: list[_Request] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.assets_in_process = self.members

    # -- the contract, forwarded ---------------------------------------------------------------------------------
    @property
    def schedule(self):
        return self.prior.schedule

    @property
    def dtype(self) -> torch.dtype:
        return self.prior.dtype

    @property
    def device(self) -> torch.device:
        return self.prior.device

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.encode(images, generator)

    def decode(self, latents: Tensor) -> Tensor:
        return self.prior.decode(latents)

    def prompt_embeddings(self, prompt: str, negative_prompt: str):
        return self.prior.prompt_embeddings(prompt, negative_prompt)

    def observe_views(self, views) -> None:
        self.prior.observe_views(views)

    def progress(self, params) -> dict[str, float]:
        return self.prior.progress(params)

    def predict_noise(self, x: Tensor, t: Tensor | int, embedding: Tensor) -> Tensor:
        """eps(x, t, embedding) [N, ...]; no-grad calls of all live members run as one batch."""
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        if torch.is_grad_enabled():
            return self.prior.predict_noise(x, t, embedding)
        request = _Request(x, t, embedding)
        with self._lock:
            self._pending.append(request)
            if len(self._pending) >= self.members:
                self._run_pending()
            while not request.done:
                self._lock.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def leave(self) -> None:
        """A member stopped training (finished or failed): the others no longer wait for it."""
        with self._lock:
            self.members -= 1
            if self._pending and len(self._pending) >= self.members:
                self._run_pending()

    def rejoin(self, count: int = 1) -> None:
        """``count`` members that left without finishing (e.g. to wait at a barrier) make calls again."""
        with self._lock:
            self.members += count

    def _run_pending(self) -> None:
        """Run every pending request as one UNet call (the caller holds the lock) and wake their threads."""
        batch, self._pending = self._pending, []
        try:
            with torch.no_grad():
                out = self.prior.predict_noise(torch.cat([r.x for r in batch]), torch.cat([r.t for r in batch]),
                                               torch.cat([r.embedding for r in batch]))
            for request, rows in zip(batch, out.split([r.x.shape[0] for r in batch])):
                request.result = rows
        except BaseException as error:  # every waiting asset sees the failure, none hangs
            for request in batch:
                request.error = error
        for request in batch:
            request.done = True
        self.batches += 1
        self.samples += sum(r.x.shape[0] for r in batch)
        self._lock.notify_all()


def check_shared(configs: list) -> None:
    """Every asset must ask for the same prior: raise ConfigError naming the first key that differs."""
    from ..config import PRIOR_KEYS, ConfigError, setting

    first = configs[0]
    for index, config in enumerate(configs[1:], start=1):
        for key in PRIOR_KEYS:
            if setting(config, key) != setting(first, key):
                raise ConfigError(f"{key}: assets trained in one job share one prior, but asset {index} has "
                                  f"{setting(config, key)!r} and asset 0 {setting(first, key)!r}")


class AssetLog(logging.FileHandler):
    """The log records of one asset's training thread, appended to that asset's own log file."""

    def __init__(self, path: str | Path, thread_name: str):
        super().__init__(path, encoding="utf-8")
        self.addFilter(lambda record: record.threadName == thread_name)
        root = logging.getLogger().handlers
        self.setFormatter(root[0].formatter if root and root[0].formatter else logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))


def train_assets(configs: list, out_dirs: list[str | Path], resume: bool = False,
                 log_files: list[str | Path] | None = None) -> list[BaseException | None]:
    """Train every (config, out_dir) in one process on one prior; returns each asset's exception (None: trained).

    A diverged or failed asset ends alone (its error is returned); the others go on. ``log_files`` (one per
    asset) get each asset's own log records (resuming, divergence, its result) besides the process's log."""
    from ..config import ConfigError
    from ..devices import PRIOR_DTYPES, resolve_device
    from ..prior import load_prior
    from .trainer import Trainer, compiles_prior

    if len(configs) != len(out_dirs) or not configs or (log_files is not None and len(log_files) != len(configs)):
        raise ValueError("train_assets: one output folder (and log file, if any) per config, at least one")
    check_shared(configs)
    first = configs[0]
    prior = load_prior(first.models.sd, dtype=PRIOR_DTYPES[first.prior_dtype], device=resolve_device(first.device),
                       cache_dir=first.text_cache)
    if not prior.shareable:
        raise ConfigError(f"models.sd = {first.models.sd!r}: this kind of prior keeps per-asset state (the known-answer "
                          "prior records each asset's cameras) and cannot be shared; train these alone")
    if compiles_prior(first, prior.device):
        prior.compile(dynamic_batch=len(configs) > 1)  # batch sizes: sums of the live assets' call sizes
    shared = BatchingPrior(prior, members=len(configs))
    trainers = [Trainer(config, out, prior=shared) for config, out in zip(configs, out_dirs)]
    errors: list[BaseException | None] = [None] * len(trainers)

    names = [f"asset-{i}" for i in range(len(trainers))]
    handlers = [AssetLog(path, name) for path, name in zip(log_files, names)] if log_files else []
    for handler in handlers:
        logging.getLogger().addHandler(handler)

    def train(index: int) -> None:
        log.info("asset %d of %d trained in this process: %s", index + 1, len(trainers), out_dirs[index])
        try:
            log.info("wrote %s", trainers[index].run(resume=resume))
        except BaseException as error:  # noqa: BLE001 - reported per asset below
            errors[index] = error
            log.error("asset %d (%s) failed: %s", index, out_dirs[index], error)
        finally:
            shared.leave()

    threads = [threading.Thread(target=train, args=(i,), name=name) for i, name in enumerate(names)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()
    log.info("%d assets: %d batched UNet calls, %.1f samples each on average", len(trainers), shared.batches,
             shared.samples / max(shared.batches, 1))
    return errors
