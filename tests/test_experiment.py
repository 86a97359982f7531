"""The experiment plan: config.yaml -> runs, variants, run configs; errors name the key before any job."""

from pathlib import Path

import pytest
import yaml

from segmentdreamer.config import ConfigError, TrainConfig, from_dict
from segmentdreamer.plan.experiment import load_experiment
from segmentdreamer.plan.runs import Run
from segmentdreamer.plan.variants import deep_merge, grid_variant_name
from segmentdreamer.prompts import PromptListError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="module")
def paper(paper_config):
    return load_experiment(paper_config, ROOT)


def test_paper_plan_has_table1_ablations_and_gallery(paper):
    assert len(paper.table1_runs("dreamfusion40")) == 200  # 40 prompts x 5 methods
    assert len(paper.ablation_runs("segments")) == 12  # {uniform, mono} x Ns {2, 5, 10} x t_tau {150, 600}
    assert paper.ablations["segments"].columns == 6
    assert [r.variant for r in paper.ablation_runs("cfg")] == ["cds", "gcs_no_beg", "gcs", "sctd"]
    assert len(paper.gallery_runs()) == 14
    assert len(paper.ablation_runs("threshold")) == 4
    # approx and cfg share the ablation prompt's sctd run; so do the segments point (uniform, 5, 150) and the
    # threshold point t_tau=150, which train exactly what sctd does
    assert len(paper.all_runs()) == 200 + 11 + 3 + 2 + 3 + 14


def test_grid_point_equal_to_its_base_reuses_the_base_runs(paper):
    segments = paper.ablations["segments"]
    assert "sctd" in segments.variants and "segments__segmentation=uniform__num_segments=5__t_tau=150" not in paper.variants
    assert segments.params["sctd"] == {"loss.segmentation": "uniform", "loss.num_segments": 5, "loss.t_tau": 150}
    assert segments.labels["sctd"] == "segmentation=uniform\nnum_segments=5\nt_tau=150"
    assert [r.variant for r in paper.ablation_runs("threshold")][1] == "sctd"  # t_tau grid 50, 150, 300, 600


def test_ablation_on_a_table1_prompt_set_shares_its_runs(paper_config):
    config = deep_merge(paper_config, {"ablations": {"prompt_set": "dreamfusion40", "prompt_ids": ["cat_mullet"]}})
    config["ablations"].pop("prompts")
    experiment = load_experiment(config, ROOT)
    cfg_runs = experiment.ablation_runs("cfg")
    assert {r.prompt_id for r in cfg_runs} == {"cat_mullet"}
    assert set(cfg_runs) - set(experiment.table1_runs("dreamfusion40")) == {Run("dreamfusion40", "cat_mullet", "gcs_no_beg", 0)}


def test_run_config_layers_train_variant_prompt_overrides(paper):
    run = Run("gallery", "capybara_top_hat", "sctd_perp_neg", 0)
    settings = paper.run_config(run)
    config = from_dict(TrainConfig, settings)
    assert config.prompt == "A capybara wearing a top hat, low poly style."
    assert config.perp_neg is False and config.negative_prompt.startswith("purple light, ")
    assert config.iterations == 5000 and config.init == "results/init/gallery/capybara_top_hat.ply"
    hulk = from_dict(TrainConfig, paper.run_config(Run("gallery", "hulk", "sctd_perp_neg", 6)))
    assert hulk.perp_neg is True and hulk.seed == 6


def test_grid_points_become_named_variants(paper):
    name = grid_variant_name("segments", {"loss.segmentation": "mono", "loss.num_segments": 5, "loss.approx": False})
    assert name == "segments__segmentation=mono__num_segments=5__approx=false"
    variant = paper.variants["segments__segmentation=mono__num_segments=10__t_tau=600"]
    assert variant["loss"] == {"guidance_scale": 7.5, "segmentation": "mono", "num_segments": 10, "t_tau": 600}
    assert paper.variants["sctd"]["loss"] == {"guidance_scale": 7.5}  # the base is not modified


def test_deep_merge_copies_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}}
    merged = deep_merge(base, {"a": {"c": [3]}, "d": 4})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 4} and base == {"a": {"b": 1, "c": [1, 2]}}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"table1": {"variants": ["sctd", "nope"]}}, r"table1.variants\[1\]: unknown variant 'nope'"),
        ({"variants": {"sctd": {"method": "sctd", "loss": {"segmnts": 5}}}}, r"loss.segmnts: unknown key"),
        ({"train": {"iterations": -3}}, r"iterations"),
        ({"prompt_sets": {"mine": "prompts/absent.tsv"}}, r"prompt_sets.mine: prompt file 'prompts/absent.tsv' does not exist"),
        ({"prompt_overrides": {"gallery": {"hulkk": {"perp_neg": True}}}}, r"prompt_overrides.gallery.hulkk: no such prompt_id"),
        ({"ablations": {"figures": {"segments": {"base": "nope"}}}}, r"ablations.figures.segments.base: unknown variant"),
        ({"ablations": {"prompt_ids": ["imperial_crown", "crown"]}}, r"ablations.prompt_ids\[1\]: no prompt 'crown'"),
        ({"ablations": {"prompt_set": "nowhere", "prompts": None}}, r"ablations.prompt_set: 'nowhere' is not in prompt_sets"),
    ],
)
def test_bad_configs_name_the_key(paper_config, patch, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(deep_merge(paper_config, patch), ROOT)


def test_bad_prompt_file_names_the_line(paper_config, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("prompt_id\tprompt\tinit_prompt\nok\ta cat\ta cat.\nbad id!\ta dog\ta dog.\n")
    with pytest.raises(PromptListError, match=r"bad.tsv:3: prompt_id 'bad id!'"):
        load_experiment(deep_merge(paper_config, {"prompt_sets": {"mine": str(bad)}}), ROOT)
