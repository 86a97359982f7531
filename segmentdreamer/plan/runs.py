"""A run: one training job and everything downstream of it (renders, scores)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """(prompt set, prompt id, variant, seed); its files are in :mod:`.layout` (``Layout.run_dir(run)``)."""

    prompt_set: str
    prompt_id: str
    variant: str
    seed: int
