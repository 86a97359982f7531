"""Table 1 (docs/method.md, "Evaluation"): CLIP-L, ImageReward, Time (min), FID per method, as CSV, Markdown and LaTeX.

Per column the best value is bold and the second best underlined, by that column's direction
(CLIP and IR: higher is better; Time and FID: lower is better). Ties share a rank; a missing value is
shown as a dash and never ranked. The paper's numbers stand beside ours for comparison.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..evaluate.metric import METRICS


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    higher_is_better: bool
    digits: int
    best: float | None = None
    """Rank by closeness to this value (e.g. a ratio whose ideal is 1) instead of by direction."""

    @classmethod
    def listed(cls, column: dict) -> Column:
        """A column as a metric lists it (``Metric.columns``, segmentdreamer/evaluate/metric.py; a manifest's
        ``metric_columns``)."""
        return cls(column["key"], column["title"], column["higher_is_better"], column["digits"], column.get("best"))


TIME = Column("time", "Time (min)", False, 1)
"""Minutes per asset from the trainer's timer."""
FID = Column("fid", "FID", False, 2)
"""FID of a method's renders against the Stable Diffusion reference set."""
COLUMNS = (*(Column.listed(c) for name in ("clip", "ir") for c in METRICS[name].columns()), TIME, FID)
"""The paper's Table 1 columns (its numbers: PAPER)."""

OPTIONAL_COLUMNS = (Column("r_precision", "CLIP R-precision", True, 3),)
"""Columns shown only when some row has them (Table 1's ``eval.r_precision`` option); the paper has no value."""

PAPER = {  # Table 1 of the paper (Time: minutes on an A100; SCTD's 38 is with Perp-Neg)
    "sds": {"clip": 28.47, "ir": -0.004, "time": 60, "fid": 140.84},
    "ism": {"clip": 29.99, "ir": 0.006, "time": 45, "fid": 121.80},
    "cds": {"clip": 30.60, "ir": 0.004, "time": 140, "fid": 113.61},
    "gcs": {"clip": 30.73, "ir": 0.018, "time": 80, "fid": 112.61},
    "sctd": {"clip": 30.88, "ir": 0.020, "time": 38, "fid": 110.45},
}


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def ranks(values: list, higher_is_better: bool, best: float | None = None) -> list[int | None]:
    """Dense rank per value (1 = best; ties share a rank; missing values get None); with ``best``, by |value - best|."""
    if best is not None:
        return ranks([abs(v - best) if _present(v) else None for v in values], higher_is_better=False)
    distinct = sorted({v for v in values if _present(v)}, reverse=higher_is_better)
    return [distinct.index(v) + 1 if _present(v) else None for v in values]


@dataclass
class Table:
    """Rows: {"method": key, "name": display name, "clip": float | None, "ir": ..., "time": ..., "fid": ...}.

    ``method`` (the variant, e.g. ``sctd``) keys the paper's numbers and the CSV; ``name`` (the loss class's
    ``display_name``) labels the Markdown and LaTeX rows.
    """

    rows: list[dict]
    caption: str = ""
    base_columns: tuple[Column, ...] = COLUMNS
    """The columns every table shows (Table 1: each enabled metric's, then Time and FID); the paper's stay COLUMNS."""
    with_paper: bool = True
    seeds: Sequence[str] = ()
    """With seeds, rows carry ``<key>_std`` and ``per_seed``: cells read "mean ± std", the CSV adds columns."""

    @property
    def columns(self) -> tuple[Column, ...]:
        """The base columns, then each optional column some row has a value for."""
        return self.base_columns + tuple(c for c in OPTIONAL_COLUMNS if any(_present(r.get(c.key)) for r in self.rows))

    def _cells(self, style: str) -> list[list[str]]:
        marks = {"md": ("**{}**", "<u>{}</u>"), "html": ("<b>{}</b>", "<u>{}</u>"),
                 "tex": ("\\textbf{{{}}}", "\\underline{{{}}}"), "csv": ("{}", "{}")}[style]
        rank_by_column = {c.key: ranks([r.get(c.key) for r in self.rows], c.higher_is_better, c.best) for c in self.columns}
        body = []
        for i, row in enumerate(self.rows):
            cells = [row.get("name", row["method"]) if style != "csv" else row["method"]]
            for column in self.columns:
                value = row.get(column.key)
                if not _present(value):
                    cells.append("" if style == "csv" else ("--" if style == "tex" else "–"))
                    continue
                text = f"{value:.{column.digits}f}"
                rank = rank_by_column[column.key][i]
                text = marks[0].format(text) if rank == 1 else marks[1].format(text) if rank == 2 else text
                spread = row.get(f"{column.key}_std")
                if _present(spread) and style != "csv":
                    text += (" $\\pm$ " if style == "tex" else " ± ") + f"{spread:.{column.digits}f}"
                cells.append(text)
            if style == "csv" and self.seeds:
                per_seed = {f"{key}_seed{seed}": value for seed, values in (row.get("per_seed") or {}).items()
                            for key, value in values.items()}
                cells += [_csv_number({**row, **per_seed}.get(name)) for name in self.seed_columns()]
            if self.with_paper:
                paper = PAPER.get(row["method"], {})
                cells += [f"{paper[c.key]:.{c.digits}f}" if c.key in paper else ("" if style == "csv" else "--") for c in COLUMNS]
            body.append(cells)
        return body

    def header(self) -> list[str]:
        titles = ["Method"] + [c.title for c in self.columns]
        return titles + [f"{c.title} (paper)" for c in COLUMNS] if self.with_paper else titles

    def seed_columns(self) -> list[str]:
        """The CSV's seed columns: each column's std, the pooled FID, then per seed each value (``<key>_seed<s>``,
        read from a row's ``per_seed``)."""
        names = [f"{c.key}_std" for c in self.columns] + ["fid_all_seeds"]
        return names + [f"{c.key}_seed{seed}" for seed in self.seeds for c in self.columns]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        seed_titles = self.seed_columns() if self.seeds else []
        writer.writerow(["method"] + [c.key for c in self.columns] + seed_titles + ([f"paper_{c.key}" for c in COLUMNS] if self.with_paper else []))
        writer.writerows(self._cells("csv"))
        return out.getvalue()

    def to_markdown(self) -> str:
        header = self.header()
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in self._cells("md")]
        return "\n".join(lines) + (f"\n\n{self.caption}\n" if self.caption else "\n")

    def to_html(self, table_id: str = "table1") -> str:
        """An HTML table (best bold, second underlined) with the caption below it."""
        import html

        head = "".join(f"<th>{html.escape(title)}</th>" for title in self.header())
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cells[0])}</td>" + "".join(f"<td>{c}</td>" for c in cells[1:])) + "</tr>"
                       for cells in self._cells("html"))
        caption = f"<p class='caption'>{html.escape(self.caption)}</p>" if self.caption else ""
        return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>{caption}"

    def to_latex(self) -> str:
        header = [_tex_escape(h) for h in self.header()]
        lines = ["\\begin{table}[t]", "\\centering", f"\\begin{{tabular}}{{l{'c' * (len(header) - 1)}}}", "\\toprule",
                 " & ".join(header) + " \\\\", "\\midrule"]
        lines += [" & ".join([_tex_escape(cells[0])] + cells[1:]) + " \\\\" for cells in self._cells("tex")]
        lines += ["\\bottomrule", "\\end{tabular}"]
        if self.caption:
            lines.append(f"\\caption{{{_tex_escape(self.caption)}}}")
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"


def _csv_number(value) -> str:
    return repr(float(value)) if _present(value) else ""


def _tex_escape(text: str) -> str:
    text = text.replace("\\", "\x00")
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    text = text.replace("~", "\\textasciitilde{}").replace("^", "\\textasciicircum{}")
    return text.replace("\x00", "\\textbackslash{}")
