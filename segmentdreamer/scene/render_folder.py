"""A finished render folder: the ``view_###.png`` files of the evaluation ring and the completion marker
``complete.json`` that the render writes last (``scene/turntable.py``), so that no scorer ever reads a
folder a render did not finish (``evaluate/views.py``)."""

from __future__ import annotations

from pathlib import Path

from ..plan.layout import VIEWS_COMPLETE


def mark_views_complete(views_dir: str | Path, views: int, **facts) -> None:
    """Write ``complete.json`` (the view count and any facts) into a render folder: the last file a render writes."""
    from ..atomic import write_json

    write_json({"views": views, **facts}, Path(views_dir) / VIEWS_COMPLETE)


def view_paths(views_dir: str | Path) -> list[Path]:
    """The ``view_*.png`` files of a finished render folder, in view order.

    Raises FileNotFoundError for a folder that a render did not finish (no ``complete.json``, or fewer
    views than it records): an emptied or half-written folder is never scored.
    """
    import json

    folder = Path(views_dir)
    marker = folder / VIEWS_COMPLETE
    if not marker.is_file():
        raise FileNotFoundError(f"{folder}: no {VIEWS_COMPLETE}: the render job did not finish here "
                                "(rerun it: snakemake --forcerun render, or `segmentdreamer render`)")
    paths = sorted(folder.glob("view_*.png"))
    expected = json.loads(marker.read_text(encoding="utf-8"))["views"]
    if len(paths) != expected:
        raise FileNotFoundError(f"{folder}: {len(paths)} view_*.png but the render wrote {expected}: rerun the render job")
    return paths
