"""Table 1 from per-run results: aggregation, missing entries, caption facts, the three files."""

import json
from pathlib import Path

import pytest

from segmentdreamer.cli import main
from segmentdreamer.report.table1 import aggregate, caption


def write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return str(path)


@pytest.fixture
def manifest(tmp_path):
    methods = {}
    for method, clips, minutes in (("sctd", (31.0, 30.0), (7.0, 9.0)), ("sds", (28.0, 29.0), (13.0, 13.0))):
        runs = [tmp_path / method / f"p{i}" for i in range(2)]
        methods[method] = {
            "clip": [write(run / "clip.json", {"mean": c, "scores": [c] * 8}) for run, c in zip(runs, clips)],
            "timing": [write(run / "timing.json", {"minutes": m}) for run, m in zip(runs, minutes)],
            "display_name": {"sctd": "SegmentDreamer (SCTD)", "sds": "DreamFusion (SDS)"}[method],
            "fid": write(tmp_path / method / "fid.json", {"value": 110.0 if method == "sctd" else 140.0, "implementation": "TINY",
                                                         "reference_images": 16, "generated_images": 16}),
        }
    data = {"prompt_set": "smoke", "methods": methods}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    return path, data


def test_aggregate_means_and_missing_ir(manifest):
    rows, facts = aggregate(manifest[1])
    sctd = next(r for r in rows if r["method"] == "sctd")
    assert sctd == {"method": "sctd", "name": "SegmentDreamer (SCTD)", "clip": 30.5, "ir": None, "time": 8.0, "fid": 110.0,
                    "r_precision": None}
    assert facts["runs"] == {"sctd": 2, "sds": 2} and facts["views"] == {8}


def test_caption_names_counts_implementations_and_other_pipelines(manifest):
    text = caption("smoke", aggregate(manifest[1])[1])
    assert "Views per asset: 8" in text and "16 renders vs 16 reference images" in text
    assert "FID implementation: TINY" in text and "DreamFusion" in text and "own pipelines" in text
    assert "per process" not in text
    assert "CLIP-L: models.clip," in text  # a manifest without the model names the key, never a model it did not use
    assert "CLIP-L: tiny random-weight CLIP" in caption("smoke", aggregate({**manifest[1], "clip_model": "tiny random-weight CLIP"})[1])
    write(Path(manifest[1]["methods"]["sds"]["timing"][1]), {"minutes": 13.0, "assets_in_process": 4})  # a multi-run job's run
    assert "up to 4 per process (assets_per_job)" in caption("smoke", aggregate(manifest[1])[1])


def test_cli_writes_csv_markdown_latex(manifest, tmp_path):
    assert main(["table", "--manifest", str(manifest[0]), "--out", str(tmp_path / "table1" / "smoke")]) == 0
    md = (tmp_path / "table1" / "smoke.md").read_text()
    assert "**30.50**" in md and "–" in md  # best CLIP bold; IR missing
    assert (tmp_path / "table1" / "smoke.csv").read_text().startswith("method,clip,ir,time,fid")
    assert "\\begin{tabular}" in (tmp_path / "table1" / "smoke.tex").read_text()


@pytest.fixture
def seeded_manifest(tmp_path):
    """Two methods x 2 prompts x 3 seeds; CLIP of (method, prompt, seed) = base + prompt offset + seed step."""
    methods = {}
    for method, base, step in (("sctd", 30.0, 0.5), ("sds", 28.0, 1.0)):
        entry = {"clip": [], "timing": [], "display_name": method.upper(), "seeds": {},
                 "fid": write(tmp_path / method / "fid.json", {"value": 100.0, "implementation": "TINY",
                                                              "reference_images": 16, "generated_images": 48})}
        for seed in range(3):
            part = {"clip": [], "timing": [], "fid": write(tmp_path / method / f"seed{seed}.json",
                                                           {"value": 110.0 + 2 * seed + base, "implementation": "TINY",
                                                            "reference_images": 16, "generated_images": 16})}
            for prompt in range(2):
                run = tmp_path / method / f"p{prompt}" / f"seed{seed}"
                clip = base + prompt + step * seed
                part["clip"].append(write(run / "clip.json", {"prompt_id": f"p{prompt}", "mean": clip, "scores": [clip] * 4}))
                part["timing"].append(write(run / "timing.json", {"minutes": 5.0 + seed}))
            entry["seeds"][str(seed)] = part
            entry["clip"] += part["clip"]
            entry["timing"] += part["timing"]
        methods[method] = entry
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"prompt_set": "smoke", "methods": methods}))
    return path


def test_seeds_give_mean_and_sample_std_over_per_seed_values(seeded_manifest):
    """Per-seed CLIP of sctd: 30.5, 31.0, 31.5 (mean over its 2 prompts) -> 31.0 +- 0.5 (ddof 1); FID per seed
    140, 142, 144 -> 142 +- 2, the pooled FID kept apart; the per-seed mean of CLIP equals the pooled mean."""
    rows, facts = aggregate(json.loads(seeded_manifest.read_text()))
    sctd = next(r for r in rows if r["method"] == "sctd")
    assert sctd["clip"] == pytest.approx(31.0) and sctd["clip_std"] == pytest.approx(0.5)
    assert sctd["fid"] == pytest.approx(142.0) and sctd["fid_std"] == pytest.approx(2.0) and sctd["fid_all_seeds"] == 100.0
    assert sctd["time"] == pytest.approx(6.0) and sctd["time_std"] == pytest.approx(1.0)
    assert sctd["ir"] is None and sctd["ir_std"] is None
    assert sctd["per_seed"]["2"]["clip"] == pytest.approx(31.5) and facts["seeds"] == ["0", "1", "2"]
    sds = next(r for r in rows if r["method"] == "sds")
    assert sds["clip_std"] == pytest.approx(1.0)
    assert "mean +- sample standard deviation over seeds 0, 1, 2" in caption("smoke", facts)


def test_seeded_table_files_show_the_spread_and_every_seed(seeded_manifest, tmp_path):
    import csv

    import imageio.v3 as iio

    prefix = tmp_path / "table1" / "smoke"
    assert main(["table", "--manifest", str(seeded_manifest), "--out", str(prefix)]) == 0
    md = prefix.with_suffix(".md").read_text()
    assert "**31.00** ± 0.50" in md and "<u>29.50</u> ± 1.00" in md  # best CLIP bold, its std beside it
    assert "$\\pm$ 0.50" in prefix.with_suffix(".tex").read_text()
    rows = {row["method"]: row for row in csv.DictReader(prefix.with_suffix(".csv").open())}
    assert float(rows["sctd"]["clip_seed1"]) == pytest.approx(31.0) and float(rows["sds"]["fid_seed2"]) == pytest.approx(142.0)
    assert float(rows["sctd"]["clip_std"]) == pytest.approx(0.5) and float(rows["sctd"]["fid_all_seeds"]) == 100.0
    plot = iio.imread(tmp_path / "table1" / "smoke_per_prompt.png")
    assert plot.shape[0] > 100 and plot[..., :3].std() > 20


def test_r_precision_is_a_column_only_when_asked_for(manifest, tmp_path):
    """With "r_precision": true the table gains a CLIP R-precision column: the mean over runs of each run's value."""
    path, data = manifest
    for method, values in (("sctd", (0.5, 0.75)), ("sds", (0.25, 0.25))):
        for clip_path, value in zip(data["methods"][method]["clip"], values):
            record = json.loads(open(clip_path).read())
            write(type(path)(clip_path), {**record, "r_precision": value})
        data["methods"][method]["r_precision"] = True
    path.write_text(json.dumps(data))
    assert main(["table", "--manifest", str(path), "--out", str(tmp_path / "t" / "smoke")]) == 0
    md = (tmp_path / "t" / "smoke.md").read_text()
    assert "CLIP R-precision" in md and "**0.625**" in md and "<u>0.250</u>" in md and "ranks first" in md
    assert (tmp_path / "t" / "smoke.csv").read_text().startswith("method,clip,ir,time,fid,r_precision,paper_clip")
    for entry in data["methods"].values():
        entry["r_precision"] = False
    path.write_text(json.dumps(data))
    assert main(["table", "--manifest", str(path), "--out", str(tmp_path / "u" / "smoke")]) == 0
    assert "R-precision" not in (tmp_path / "u" / "smoke.md").read_text()
