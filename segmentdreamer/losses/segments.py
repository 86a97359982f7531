"""Trajectory segmentation of SCTD (paper Sec. 4.3; docs/method.md, "SCTD").

The timestep range is cut into ``num_segments`` sub-trajectories [s_m, s_{m+1}); SCTD enforces
consistency inside the segment that holds t, toward its start s_m.

- ``uniform`` (default, official code): round(linspace(20, 980, Ns + 1)).
- ``uniform_paper``: the paper's equal segmentation of [0, T]: s_m = m T / Ns (0, 200, ..., 1000 for Ns = 5).
- ``mono`` (official code's monotonically increasing segments): first length t_tau - 20, then lengths
  growing by d = floor(2 (960 - Ns (t_tau - 20)) / ((Ns - 1) Ns)); the last edge is forced to 980.
  When d < 0 (e.g. Ns = 10) the segments shrink: that is the code's behaviour, kept.
- ``mono_paper``: the paper's formula over [0, 1000]: s_0 = 0,
  s_{m+1} - s_m = t_tau + 2 m (1000 - Ns t_tau) / (Ns (Ns - 1)).
"""

from __future__ import annotations

import bisect
import math
import typing
from typing import Literal

import numpy as np

Segmentation = Literal["uniform", "uniform_paper", "mono", "mono_paper"]
SEGMENTATIONS: tuple[str, ...] = typing.get_args(Segmentation)
MIN_EDGE, MAX_EDGE, NUM_TRAIN_TIMESTEPS = 20, 980, 1000


def segment_edges(strategy: str, num_segments: int, t_tau: int = 150) -> list[int]:
    """The Ns + 1 edge timesteps s_0 < ... < s_Ns (non-decreasing for ``mono`` with large Ns)."""
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    if strategy == "uniform":
        return [int(round(v)) for v in np.linspace(MIN_EDGE, MAX_EDGE, num_segments + 1)]
    if strategy == "uniform_paper":
        return [int(round(v)) for v in np.linspace(0, NUM_TRAIN_TIMESTEPS, num_segments + 1)]
    if num_segments < 2:
        raise ValueError(f"{strategy!r} segmentation needs num_segments >= 2, got {num_segments}")
    if strategy == "mono":
        first = t_tau - MIN_EDGE
        step = math.floor(2 * (MAX_EDGE - MIN_EDGE - num_segments * first) / ((num_segments - 1) * num_segments))
        edges = [MIN_EDGE]
        for m in range(num_segments):
            edges.append(edges[-1] + first + m * step)
        edges[-1] = MAX_EDGE
        return edges
    if strategy == "mono_paper":
        T = NUM_TRAIN_TIMESTEPS
        edges = [0.0]
        for m in range(num_segments):
            edges.append(edges[-1] + t_tau + 2 * m * (T - num_segments * t_tau) / (num_segments * (num_segments - 1)))
        return [int(round(e)) for e in edges]
    raise ValueError(f"unknown segmentation {strategy!r}; choose one of {SEGMENTATIONS}")


def segment_start(edges: list[int], t: int) -> int:
    """s_m = the largest segment start edge <= t (Algorithm 1 line 5: edges s_0 .. s_{Ns-1}).

    The final edge s_Ns closes the last segment and is never a target: with it, t = 980 would get
    s_m = 980 and t = s_m + 80 = 1060, past the schedule (the official code indexes out of range there).
    """
    starts = edges[:-1]
    index = bisect.bisect_right(starts, t) - 1
    if index < 0:
        raise ValueError(f"timestep {t} lies before the first segment edge {starts[0]}")
    return starts[index]
