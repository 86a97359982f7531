"""BEG triggers exactly when its quantile rule says so, and equalizes colour + Adam moments."""

import numpy as np
import pytest
import torch

from segmentdreamer.scene.beg import BrightnessEqualizer


def views(levels, size=8, black_fraction=0.0):
    """Views of constant grey level, the first ``black_fraction`` of rows black (excluded by the rule)."""
    images = torch.stack([torch.full((3, size, size), float(v)) for v in levels])
    images[:, :, : int(size * black_fraction)] = 0.0
    return images


@pytest.mark.parametrize("levels", [[0.95, 0.95, 0.5, 0.2], [0.99, 0.92, 0.91, 0.1], [0.95, 0.5, 0.5, 0.5], [0.8, 0.85, 0.89, 0.9]])
def test_trigger_matches_the_quantile_rule(levels):
    beg = BrightnessEqualizer()
    expected = float(np.quantile(np.array(levels), 0.85)) > 0.9
    assert beg.triggered(views(levels, black_fraction=0.5), step=2000) is expected


def test_black_pixels_do_not_count():
    beg = BrightnessEqualizer()
    mostly_black = views([0.95] * 4, black_fraction=0.75)
    assert beg.brightness(mostly_black).item() == pytest.approx(0.95)
    assert beg.triggered(mostly_black, step=2000)


def test_window_is_open_between_start_and_end_exclusive():
    beg, bright = BrightnessEqualizer(), views([1.0] * 4)
    assert [beg.triggered(bright, s) for s in (1000, 1001, 4499, 4500)] == [False, True, True, False]


def test_equalize_scales_colours_and_zeroes_only_their_adam_moments():
    colour, other = torch.nn.Parameter(torch.ones(5, 3)), torch.nn.Parameter(torch.ones(5, 3))
    optimizer = torch.optim.Adam([colour, other], lr=0.1)
    (colour.sum() + other.sum()).backward()
    optimizer.step()
    before_colour, before_other = colour.detach().clone(), optimizer.state[other]["exp_avg"].clone()
    BrightnessEqualizer().equalize([colour], [optimizer])
    torch.testing.assert_close(colour.detach(), 0.8 * before_colour)
    assert torch.count_nonzero(optimizer.state[colour]["exp_avg"]) == 0
    assert torch.count_nonzero(optimizer.state[colour]["exp_avg_sq"]) == 0
    torch.testing.assert_close(optimizer.state[other]["exp_avg"], before_other)
