"""Self-contained HTML pages for the Snakemake report: files embedded as data URIs, one shared style."""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = ("body{font-family:sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse} "
         "td,th{border:1px solid #bbb;padding:4px 10px;text-align:right} td:first-child,th:first-child{text-align:left} "
         "figure{display:inline-block;margin:6px;text-align:center} figcaption{font-size:12px}")
"""The look every page shares (tables, figures with captions)."""


def data_uri(path: str | Path, mime: str) -> str:
    """The file's bytes as a ``data:`` URI (the page stays one file, as the report needs)."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def page(title: str, body: str, style: str = "") -> str:
    """A complete UTF-8 page: ``title`` (escaped here) over ``body`` (HTML as given)."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE} {style}</style></head><body>{body}</body></html>\n")
