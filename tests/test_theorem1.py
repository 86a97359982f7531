"""Theorem 1 measured on the analytic prior (evaluate/theorem1.py): the error of a consistency target distilled
with DDIM steps of size dt grows like dt x segment length, as the bound says, and SCTD's short segments beat
CDS's and GCS's whole-trajectory jumps."""

import numpy as np
import pytest

from segmentdreamer import preflight
from segmentdreamer.evaluate.theorem1 import MONO, UNIFORM, error_of, fitted_slopes, measure, write_theorem1


@pytest.fixture(scope="module")
def table():
    return measure(num_segments=(1, 4, 20), solver_steps=(10, 40), timesteps=24, samples=16, mono_segments=(4,))


def error(table, kind: str, dt: int, ns: int = 1) -> float:
    return error_of(table, UNIFORM if kind == "SCTD" else kind, dt, ns)


def test_error_grows_like_the_segment_length_and_the_solver_step(table):
    for dt, slope in fitted_slopes(table).items():
        assert 0.85 < slope < 1.15, (dt, slope)  # the bound's O(dt) (s_{m+1} - s_m): slope 1 in the segment length
    for ns in (1, 4, 20):
        ratio = error(table, "SCTD", 40, ns) / error(table, "SCTD", 10, ns)
        assert 2.8 < ratio < 4.6, (ns, ratio)  # first order in dt: 4x the step, ~4x the error


def test_short_segments_beat_whole_trajectory_targets(table):
    assert error(table, "SCTD", 10, 20) < error(table, "GCS", 10) / 10 < error(table, "CDS", 10) / 10
    assert error(table, "GCS", 10) == pytest.approx(error(table, "SCTD", 10, 1))  # Ns = 1: both jump to t = 20


def test_mono_segments_beat_uniform_ones_though_their_mean_jump_is_longer(table):
    """Same Ns = 4, same mean length 240: mono's lengths 130, 203, 276, 351 (t_tau = 150) make the mean jump
    t - s_m longer than uniform's, yet the error is smaller: the error per timestep is largest near the data,
    where mono's segments are short (the paper's reason for mono; the bound's constant is not uniform)."""
    mono, uniform = error_of(table, MONO, 10, 4), error(table, "SCTD", 10, 4)
    assert mono < 0.95 * uniform, (uniform, mono)
    jumps = table[(table["dt"] == 10) & (table["num_segments"] == 4)].set_index("target")["mean_jump"]
    assert jumps[MONO] > jumps[UNIFORM]


def test_the_workflow_target_writes_table_and_plot_and_needs_no_weights(tmp_path):
    import imageio.v3 as iio

    paths = write_theorem1(tmp_path / "theorem1", num_segments=(2, 10), solver_steps=(20,), timesteps=4, samples=16)
    assert [p.name for p in paths] == ["theorem1.csv", "theorem1.md", "theorem1.png"]
    assert "fitted slope" in paths[1].read_text() and np.asarray(iio.imread(paths[2])).std() > 10
    assert preflight.needed_keys({"models": {}}, ["analytic_theorem1"]) == []


PAPER_METHODS = ("sds", "ism", "cds", "gcs", "sctd")
"""The five of Table 1 (the experiment's default is every registered method, plugins and CSD included)."""


def test_the_five_losses_run_on_the_analytic_prior_and_cfg_inflates_the_latent(tmp_path):
    """Every loss distils under the exact prior; for SDS and SCTD a larger guidance scale pushes the latent
    further out (CFG's extrapolation), and at g = 1 SDS lands between the two text modes (mean-seeking)."""
    from segmentdreamer.evaluate.analytic_losses import SCENE_SUBJECT, TEXT, summary, write_analytic_losses

    paths = write_analytic_losses(tmp_path / "losses", methods=PAPER_METHODS, guidance_scales=(1.0, 7.5), seeds=1,
                                  iterations=200, scene_guidance_scales=(7.5,), scene_seeds=1, scene_iterations=40)
    import pandas as pd

    table = pd.read_csv(paths[0])
    assert set(table["method"]) >= set(PAPER_METHODS) and table.drop(columns="guidance_scale").notna().all().all()
    norms = summary(table)
    for method in ("sds", "sctd"):
        assert norms[method][1] > norms[method][0] + 0.5, (method, norms[method])
    sds = table[(table["method"] == "sds") & (table["guidance_scale"] == 1.0) & (table["subject"] == "latent")].iloc[0]
    assert sds["norm"] < TEXT.means.norm(dim=1).min()  # inside the modes' hull, near their mean
    scene = table[table["subject"] == SCENE_SUBJECT]
    assert set(scene["method"]) == set(PAPER_METHODS) and (scene["norm"] > 0.5).all()  # the views moved off grey
