"""Figures: every panel labelled, sizes as configured, PNG and PDF written."""

import numpy as np

from segmentdreamer.report import figures


def test_render_grid_labels_every_panel_and_marks_missing(tmp_path, monkeypatch):
    import imageio.v3 as iio

    for i in range(3):
        iio.imwrite(tmp_path / f"v{i}.png", np.full((16, 16, 3), 60 * i, dtype=np.uint8))
    panels = [figures.Panel(tmp_path / f"v{i}.png", f"Ns={n}") for i, n in enumerate((2, 5, 10))]
    panels.append(figures.Panel(tmp_path / "absent.png", "mono, Ns=10"))
    seen = {}
    original = figures._save

    def spy(figure, out):
        seen["titles"] = [ax.get_title() for ax in figure.axes]
        seen["inches"] = figure.get_size_inches().tolist()
        return original(figure, out)

    monkeypatch.setattr(figures, "_save", spy)
    paths = figures.render_grid(panels, columns=3, out=tmp_path / "grid", title="segmentation x Ns", panel_inches=2.0)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert seen["titles"] == ["Ns=2", "Ns=5", "Ns=10", "mono, Ns=10 (missing)", "", ""]
    assert seen["inches"] == [3 * 2.0, 2 * 2.0 + 0.4]  # 3 columns x 2 rows of 2-inch panels, plus the title


def test_metric_and_per_prompt_plots(tmp_path):
    out = figures.metric_plot([2, 5, 10], {"uniform": [30.1, 30.5, 30.2], "mono": [30.0, 30.8, 30.4]}, "Ns", "CLIP-L", tmp_path / "ns")
    bars = figures.per_prompt_plot({"sctd": {"a": 30.0, "b": 31.0}, "sds": {"a": 28.0}}, "CLIP-L", tmp_path / "per_prompt")
    assert all(p.is_file() and p.stat().st_size > 0 for p in out + bars)


def test_ablation_figure_from_a_manifest(tmp_path):
    import json

    import imageio.v3 as iio
    import numpy as np

    from segmentdreamer.report.ablation import write_ablation_figure

    panels = []
    for index, t_tau in enumerate((50, 150, 300)):
        views = tmp_path / f"run{index}" / "views"
        views.mkdir(parents=True)
        iio.imwrite(views / "view_000.png", np.full((16, 16, 3), 60 * index, dtype=np.uint8))
        (tmp_path / f"run{index}" / "clip.json").write_text(json.dumps({"mean": 20.0 + index}))
        panels.append({"label": f"t_tau={t_tau}", "views": str(views), "clip": str(tmp_path / f"run{index}" / "clip.json"),
                       "params": {"loss.t_tau": t_tau}})
    for plot in ({"x": "loss.t_tau", "series": []}, None):
        manifest = tmp_path / "m.json"
        manifest.write_text(json.dumps({"title": "t_tau", "columns": 3, "panels": panels, "plot": plot}))
        written = write_ablation_figure(manifest, tmp_path / "fig")
        names = {path.name for path in written}
        assert {"fig.png", "fig.pdf", "fig_metrics.csv", "fig_metrics.md", "fig_plot.png", "fig_plot.pdf"} <= names
        rows = (tmp_path / "fig_metrics.csv").read_text().splitlines()
        assert rows[0] == "label,t_tau,CLIP-L" and rows[3] == "t_tau=300,300,22.0"


def test_a_grid_title_never_overprints_the_panel_labels(tmp_path):
    """segments.png: two-line grid-point labels under a figure title at the smoke config's small panels."""
    import imageio.v3 as iio
    import matplotlib.pyplot as plt

    image = tmp_path / "view.png"
    iio.imwrite(image, np.full((64, 64, 3), 200, dtype=np.uint8))
    panels = [figures.Panel(str(image), f"segmentation={s}\nnum_segments={n}") for s in ("uniform", "mono") for n in (2, 5)]
    figure = figures.grid_figure(panels, 2, "Trajectory segmentation x Ns (smoke)", panel_inches=1.5)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    title = figure._suptitle.get_window_extent(renderer)
    for ax in figure.axes:
        label = ax.title.get_window_extent(renderer)
        assert not title.overlaps(label), (title, label)
        assert not label.overlaps(ax.get_window_extent(renderer)) or label.y0 >= ax.get_window_extent(renderer).y1 - 1
    plt.close(figure)
