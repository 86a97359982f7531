"""Acceptance 2: segment edges and SCTD's (t, s, s_m) sampling."""

import math

import pytest

from segmentdreamer.losses.sctd import SCTDLoss
from segmentdreamer.losses.segments import segment_edges, segment_start


def test_uniform_edges():
    assert segment_edges("uniform", 5) == [20, 212, 404, 596, 788, 980]
    assert segment_edges("uniform", 2) == [20, 500, 980]


def test_the_papers_equal_segmentation_of_0_to_T():
    """Sec. 4.3: [0, T] cut into Ns segments of T / Ns each (s_0 = 0, s_Ns = T)."""
    assert segment_edges("uniform_paper", 5) == [0, 200, 400, 600, 800, 1000]
    assert segment_edges("uniform_paper", 4) == [0, 250, 500, 750, 1000]


def test_mono_edges_official_code():
    assert segment_edges("mono", 5, 150) == [20, 150, 311, 503, 726, 980]


def test_mono_edges_shrink_when_step_is_negative():
    edges = segment_edges("mono", 10, 150)
    lengths = [b - a for a, b in zip(edges[:-1], edges[1:-1])]
    assert lengths[0] == 130 and all(later < earlier for earlier, later in zip(lengths, lengths[1:]))
    assert edges[-1] == 980


def test_mono_paper_edges_follow_the_paper_formula():
    edges = segment_edges("mono_paper", 5, 150)
    assert edges == [0, 150, 325, 525, 750, 1000]
    for m in range(5):  # s_{m+1} - s_m = t_tau + 2m(T - Ns t_tau) / (Ns (Ns - 1))
        assert edges[m + 1] - edges[m] == 150 + 2 * m * (1000 - 5 * 150) / (5 * 4)


def test_unknown_segmentation_is_rejected():
    with pytest.raises(ValueError, match="unknown segmentation"):
        segment_edges("log", 5)


def test_segment_start_is_largest_start_edge():
    edges = [20, 212, 404, 596, 788, 980]
    assert segment_start(edges, 21) == 20
    assert segment_start(edges, 212) == 212
    assert segment_start(edges, 980) == 788  # the closing edge is never a target
    with pytest.raises(ValueError):
        segment_start(edges, 19)


@pytest.mark.parametrize("t_schedule", ["shift_both", "shift_upper"])
@pytest.mark.parametrize("segmentation,num_segments", [("uniform", 5), ("mono", 5), ("uniform", 2), ("mono_paper", 5),
                                                      ("uniform_paper", 5)])
def test_sampled_timesteps_respect_the_rules(t_schedule, segmentation, num_segments):
    for seed in range(4):
        loss = SCTDLoss(segmentation=segmentation, num_segments=num_segments, t_schedule=t_schedule, noise_seed=seed)
        for step in (0, 1, 700, 1499, 1500, 4000):
            r = 1 - min(step / 1500, 1)
            low = 20 + math.floor(480 * r) if t_schedule == "shift_both" else 20
            high = 500 + math.floor(480 * r)
            for _ in range(25):
                t, s, s_m = loss.sample_timesteps(step)
                assert s_m == segment_start(loss.edges, t)
                assert t >= s_m + 80
                assert s_m + 10 <= s < t - 10
                # t was drawn in [low + 1, high] and only ever raised to s_m + 80
                assert low + 1 <= t <= max(high, s_m + 80) <= 999


def test_shift_upper_reaches_low_timesteps_during_warmup_and_shift_both_does_not():
    both, upper = SCTDLoss(t_schedule="shift_both"), SCTDLoss(t_schedule="shift_upper")
    assert min(both.sample_timesteps(0)[0] for _ in range(300)) >= 500
    assert min(upper.sample_timesteps(0)[0] for _ in range(300)) < 300
