"""Runs grouped into multi-run training jobs (config assets_per_job): who shares a job, and what stays put."""

import re
from pathlib import Path

import pytest
import yaml

from segmentdreamer.plan.batches import train_batches
from segmentdreamer.plan.experiment import load_experiment
from segmentdreamer.plan.runs import Run

ROOT = Path(__file__).resolve().parents[1]


def runs(prompt_set, variant, *prompts):
    return [Run(prompt_set, prompt, variant, seed) for seed, prompt in enumerate(prompts)]


def test_consecutive_prompts_of_one_set_and_variant_share_a_job_and_singletons_train_alone():
    plan = runs("a", "sctd", "p0", "p1", "p2", "p3", "p4") + runs("a", "sds", "p0", "p1") + runs("b", "sctd", "q0")
    batches = train_batches(plan, 2)
    assert [[r.prompt_id for r in b.runs] for b in batches] == [["p0", "p1"], ["p2", "p3"], ["p0", "p1"]]
    assert [b.runs[0].variant for b in batches] == ["sctd", "sctd", "sds"]  # p4 and b/q0 are left alone
    assert batches[0].name == "a/sctd/p0_seed0+1" and batches[1].runs[1].seed == 3  # seeds may differ in a job
    assert batches[0].rule_name == "train_batch__a_sctd_p0_seed0_1"
    similar = [train_batches(runs("a", "sctd", first, "x"), 2)[0].rule_name for first in ("a-b", "a_b", "a.b")]
    assert len(set(similar)) == 3 and all(re.fullmatch(r"\w+", name) for name in similar)
    assert train_batches(plan, 1) == []
    assert len(train_batches(plan + plan, 8)[0].runs) == 5  # a run listed twice trains once
    with pytest.raises(ValueError, match="assets_per_job"):
        train_batches(plan, 0)


def test_appending_prompts_changes_only_the_last_partial_job():
    before = train_batches(runs("a", "sctd", *[f"p{i}" for i in range(10)]), 4)
    after = train_batches(runs("a", "sctd", *[f"p{i}" for i in range(12)]), 4)
    assert after[:2] == before[:2] and len(before[2].runs) == 2 and len(after[2].runs) == 4


def test_runs_that_need_different_priors_never_share_a_job():
    plan = runs("a", "sctd", "p0", "p1", "p2", "p3")
    dtype = {"p0": "float16", "p1": "float32", "p2": "float16", "p3": "float16"}
    batches = train_batches(plan, 4, shared=lambda run: (dtype[run.prompt_id],))
    assert [[r.prompt_id for r in b.runs] for b in batches] == [["p0", "p2", "p3"]]


def test_the_paper_plan_with_four_assets_per_job():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["assets_per_job"] = 4
    experiment = load_experiment(config, ROOT)
    batches = experiment.train_batches()
    members = [run for batch in batches for run in batch.runs]
    assert len(members) == len(set(members)) and set(members) <= set(experiment.all_runs())
    table1 = set(experiment.table1_runs("dreamfusion40"))
    assert sum(1 for batch in batches if batch.runs[0] in table1) == 50  # 40 prompts / 4 per job, 5 methods
    assert table1 <= set(members)
    # a prompt override of a prior key (here prior_dtype) keeps that prompt's run out of its neighbours' job
    config["prompt_overrides"] = {"dreamfusion40": {"pig_backpack": {"prior_dtype": "fp32"}}}
    alone = Run("dreamfusion40", "pig_backpack", "sctd", 0)
    assert alone not in {run for batch in load_experiment(config, ROOT).train_batches() for run in batch.runs}


def test_known_answer_runs_always_train_alone():
    config = yaml.safe_load((ROOT / "workflow" / "demo.yaml").read_text())
    config["assets_per_job"] = 4
    assert load_experiment(config, ROOT).train_batches() == []
