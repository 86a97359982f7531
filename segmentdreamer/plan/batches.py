"""Training jobs of several runs (``assets_per_job``): which runs share one process and one prior.

With ``assets_per_job: K`` (K > 1) the workflow trains up to K runs in one job (``segmentdreamer train`` with
repeated ``--config``/``--out``, segmentdreamer/training/multi_asset.py), their UNet calls batched. A job's runs have the
same prompt set and variant, so they run the same method for the same number of iterations, and the same prior
settings; they are consecutive (prompt, seed) runs of the prompt list (seeds may differ: each asset draws from
its own generators)::

    smoke/sctd: [corgi s0, fox s1] [owl s0]         K = 2: prompts 1-2, then prompt 3 alone

Grouping by position keeps a job's members when prompts are appended to a list (only the last, partial job
changes). A run left alone in its group is an ordinary single-run ``train`` job.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .runs import Run


@dataclass(frozen=True)
class TrainBatch:
    """Runs trained in one job (2 or more)."""

    runs: tuple[Run, ...]

    @property
    def name(self) -> str:
        """``<prompt set>/<variant>/<first prompt id>_seed<seed>+<n-1>``: the job's log and benchmark name."""
        first = self.runs[0]
        return f"{first.prompt_set}/{first.variant}/{first.prompt_id}_seed{first.seed}+{len(self.runs) - 1}"

    @property
    def rule_name(self) -> str:
        """A Snakemake rule name for this job: letters, digits and underscores, distinct for distinct names (the
        ids ``a-b`` and ``a_b`` both read ``a_b``, so the name's hash follows where characters were replaced)."""
        readable = re.sub(r"[^A-Za-z0-9_]", "_", self.name)
        suffix = "" if readable == self.name.replace("/", "_").replace("+", "_") else "_" + hashlib.sha1(self.name.encode()).hexdigest()[:8]
        return "train_batch__" + readable + suffix


def group_key(run: Run, shared: Callable[[Run], tuple] | None = None) -> tuple:
    """Runs with equal keys may share a job: same prompt set and variant (and prior settings, if given)."""
    return (run.prompt_set, run.variant, *(shared(run) if shared else ()))


def train_batches(runs: Iterable[Run], assets_per_job: int, shared: Callable[[Run], tuple] | None = None) -> list[TrainBatch]:
    """The multi-run training jobs of ``runs`` (in their order): groups of ``group_key``, cut every
    ``assets_per_job`` runs. Groups of one are left out (they train alone). ``shared(run)`` returns the run's
    prior settings (config.PRIOR_KEYS), so runs that could not share a prior never meet."""
    if assets_per_job < 1:
        raise ValueError(f"assets_per_job: expected an integer >= 1, got {assets_per_job!r}")
    groups: dict[tuple, list[Run]] = {}
    for run in dict.fromkeys(runs):
        groups.setdefault(group_key(run, shared), []).append(run)
    batches = []
    for members in groups.values():
        for start in range(0, len(members), assets_per_job):
            chunk = tuple(members[start:start + assets_per_job])
            if len(chunk) > 1:
                batches.append(TrainBatch(chunk))
    return batches
