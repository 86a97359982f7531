"""Table 1 from per-run results: aggregation, missing entries, caption facts, the three files."""

import json

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
    assert sctd == {"method": "sctd", "name": "SegmentDreamer (SCTD)", "clip": 30.5, "ir": None, "time": 8.0, "fid": 110.0}
    assert facts["runs"] == {"sctd": 2, "sds": 2} and facts["views"] == {8}


def test_caption_names_counts_implementations_and_other_pipelines(manifest):
    text = caption("smoke", aggregate(manifest[1])[1])
    assert "Views per asset: 8" in text and "16 renders vs 16 reference images" in text
    assert "FID implementation: TINY" in text and "DreamFusion" in text and "own pipelines" in text


def test_cli_writes_csv_markdown_latex(manifest, tmp_path):
    assert main(["table", "--manifest", str(manifest[0]), "--out", str(tmp_path / "table1" / "smoke")]) == 0
    md = (tmp_path / "table1" / "smoke.md").read_text()
    assert "**30.50**" in md and "–" in md  # best CLIP bold; IR missing
    assert (tmp_path / "table1" / "smoke.csv").read_text().startswith("method,clip,ir,time,fid")
    assert "\\begin{tabular}" in (tmp_path / "table1" / "smoke.tex").read_text()
