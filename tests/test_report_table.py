"""Table 1 formatting: ranks by column direction, ties, missing values, LaTeX and Markdown structure."""

import math
import re

from segmentdreamer.report.table import PAPER, Table, ranks

ROWS = [
    {"method": "sds", "name": "DreamFusion (SDS)", "clip": 28.0, "ir": -0.01, "time": 20.0, "fid": 140.0},
    {"method": "ism", "name": "LucidDreamer (ISM)", "clip": 30.0, "ir": 0.01, "time": 25.0, "fid": None},
    {"method": "cds", "name": "Consistent3D (CDS)", "clip": 30.0, "ir": float("nan"), "time": 30.0, "fid": 120.0},
    {"method": "sctd", "name": "SegmentDreamer (SCTD)", "clip": 31.0, "ir": 0.02, "time": 20.0, "fid": 110.0},
]


def test_ranks_follow_direction_ties_and_missing():
    assert ranks([1.0, 3.0, 3.0, 2.0], higher_is_better=True) == [3, 1, 1, 2]
    assert ranks([1.0, 3.0, None, 1.0], higher_is_better=False) == [1, 2, None, 1]
    assert ranks([math.nan, 2.0], higher_is_better=True) == [None, 1]


def test_markdown_marks_best_and_second_per_column():
    md = Table(ROWS, caption="caption text").to_markdown()
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + len(ROWS) and len({line.count("|") for line in lines}) == 1
    assert re.match(r"^\|(---|:---:)(\|(---|:---:))+\|$", lines[1])
    sctd, sds, ism, cds = (next(line for line in lines if name in line) for name in ("SCTD", "SDS", "ISM", "CDS"))
    assert "**31.00**" in sctd and "<u>30.00</u>" in ism and "<u>30.00</u>" in cds  # tie for second
    assert "**20.0**" in sds and "**20.0**" in sctd and "<u>25.0</u>" in ism     # time: lower is better, tie for best
    assert "**110.00**" in sctd and "<u>120.00</u>" in cds and "–" in ism          # FID missing for ISM
    assert "–" in cds  # IR is NaN for CDS
    assert "caption text" in md


def test_latex_is_well_formed():
    tex = Table(ROWS, caption="FID on 4,800 renders; 100% of runs_ok").to_latex()
    assert tex.count("{") == tex.count("}")
    assert re.findall(r"\\begin\{(\w+)\}", tex) == ["table", "tabular"]
    assert re.findall(r"\\end\{(\w+)\}", tex) == ["tabular", "table"]
    columns = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    rows = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(rows) == 1 + len(ROWS) and all(row.count(" & ") == len(columns) - 1 for row in rows)
    assert "\\textbf{31.00}" in tex and "\\underline{30.00}" in tex and "100\\% of runs\\_ok" in tex


def test_csv_has_raw_numbers_and_the_papers():
    csv_text = Table(ROWS).to_csv().splitlines()
    assert csv_text[0] == "method,clip,ir,time,fid,paper_clip,paper_ir,paper_time,paper_fid"
    assert csv_text[4].startswith("sctd,31.00,0.020,20.0,110.00,30.88,0.020,38.0,110.45")
    assert PAPER["sctd"]["fid"] == 110.45 and PAPER["sds"]["clip"] == 28.47
