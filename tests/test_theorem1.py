"""Theorem 1 measured on the analytic prior (evaluate/theorem1.py): the error of a consistency target distilled
with DDIM steps of size dt grows like dt x segment length, as the bound says, and SCTD's short segments beat
CDS's and GCS's whole-trajectory jumps."""

import numpy as np
import pytest

from segmentdreamer import preflight
from segmentdreamer.evaluate.theorem1 import fitted_slopes, measure, write_theorem1


@pytest.fixture(scope="module")
def table():
    return measure(num_segments=(1, 4, 20), solver_steps=(10, 40), timesteps=24, samples=16)


def error(table, kind: str, dt: int, ns: int = 1) -> float:
    rows = table[table["target"].str.startswith(kind) & (table["dt"] == dt) & (table["num_segments"] == ns)]
    return float(rows["error"].iloc[0])


def test_error_grows_like_the_segment_length_and_the_solver_step(table):
    for dt, slope in fitted_slopes(table).items():
        assert 0.85 < slope < 1.15, (dt, slope)  # the bound's O(dt) (s_{m+1} - s_m): slope 1 in the segment length
    for ns in (1, 4, 20):
        ratio = error(table, "SCTD", 40, ns) / error(table, "SCTD", 10, ns)
        assert 2.8 < ratio < 4.6, (ns, ratio)  # first order in dt: 4x the step, ~4x the error


def test_short_segments_beat_whole_trajectory_targets(table):
    assert error(table, "SCTD", 10, 20) < error(table, "GCS", 10) / 10 < error(table, "CDS", 10) / 10
    assert error(table, "GCS", 10) == pytest.approx(error(table, "SCTD", 10, 1))  # Ns = 1: both jump to t = 20


def test_the_workflow_target_writes_table_and_plot_and_needs_no_weights(tmp_path):
    import imageio.v3 as iio

    paths = write_theorem1(tmp_path / "theorem1", num_segments=(2, 10), solver_steps=(20,), timesteps=4, samples=16)
    assert [p.name for p in paths] == ["theorem1.csv", "theorem1.md", "theorem1.png"]
    assert "fitted slope" in paths[1].read_text() and np.asarray(iio.imread(paths[2])).std() > 10
    assert preflight.needed_keys({"models": {}}, ["analytic_theorem1"]) == []
