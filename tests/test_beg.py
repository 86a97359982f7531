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


def test_the_quantile_is_taken_per_view_over_lit_pixels_then_over_views():
    """Non-constant views, by hand. torch.quantile interpolates linearly: q of sorted v_0..v_{n-1} is
    v_i + f (v_{i+1} - v_i) with i + f = q (n - 1).

    View 0: channel means 0 (unlit, ignored), 0.05, 0.10, ..., 1.00 (20 lit values): h = 0.85 x 19 = 16.15,
    v16 = 0.85, v17 = 0.90 -> 0.8575. View 1: 0.2 everywhere but one pixel at 0.6 (the channel mean of
    (0.9, 0.6, 0.3)), 20 lit values: h = 16.15 between two 0.2s -> 0.2. View 2: the values of view 0 halved
    -> 0.42875. Over the three views: sorted (0.2, 0.42875, 0.8575), h = 0.85 x 2 = 1.7 -> 0.42875 + 0.7 x 0.42875
    = 0.728875."""
    ramp = torch.cat([torch.zeros(1), torch.linspace(0.05, 1.0, 20)])  # 21 pixels
    view0 = ramp.expand(3, 21).reshape(3, 3, 7)
    flat = torch.full((3, 21), 0.2)
    flat[:, 0] = torch.tensor([0.9, 0.6, 0.3])
    view1 = flat.reshape(3, 3, 7)
    view1[:, 0, 1] = 0.0  # one unlit pixel: 20 lit values, like view 0
    view2 = view0 / 2
    images = torch.stack([view0, view1, view2])
    beg = BrightnessEqualizer()
    assert float(beg.brightness(images)) == pytest.approx(0.728875, abs=1e-6)
    assert not beg.triggered(images, 2000)  # 0.729 < threshold 0.9
    assert BrightnessEqualizer(threshold=0.7).triggered(images, 2000)
