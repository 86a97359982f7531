"""The miniworld's captions map to the scenes they describe: the grammar, the caption lists, and colours and part
positions read back from renders of the ground truth (CPU renderer)."""

import pytest
import torch

from segmentdreamer.miniworld.scenes import caption_scene, object_parts
from segmentdreamer.miniworld.world import (
    COLOURS,
    HELD_OUT_PAIRS,
    RELATIONS,
    SHAPES,
    CaptionError,
    held_out_captions,
    parse_caption,
    training_captions,
)
from segmentdreamer.scene.cameras import orbit_cameras
from segmentdreamer.scene.gaussians import activate
from segmentdreamer.scene.render import render

SIZE = 96


def front_back(params, azimuths=(0.0, 180.0)):
    """RGB [V, 3, H, W] on black from the horizon at the given azimuths (0 = front, +y), and the cameras."""
    n = len(azimuths)
    cameras = orbit_cameras(torch.full((n,), 90.0), torch.tensor(azimuths), torch.full((n,), 3.5), torch.full((n,), 0.55),
                            SIZE, SIZE)
    g = {k: v.detach() for k, v in activate(params).items()}
    out = render(**g, viewmats=cameras.viewmats, Ks=cameras.Ks, width=SIZE, height=SIZE, backgrounds=torch.zeros(n, 3))
    return out.rgb, cameras


def project(cameras, view, point):
    """Pixel (column, row) of a world point in camera ``view``."""
    x = cameras.viewmats[view] @ torch.tensor([*point, 1.0])
    k = cameras.Ks[view]
    return float(k[0, 0] * x[0] / x[2] + k[0, 2]), float(k[1, 1] * x[1] / x[2] + k[1, 2])


def pixels_of(rgb, view, colour, tolerance=0.12):
    """(count, column centroid, row centroid) of the pixels within ``tolerance`` of ``colour`` in one view."""
    close = (rgb[view] - torch.tensor(colour)[:, None, None]).abs().amax(dim=0) < tolerance
    rows, columns = torch.nonzero(close, as_tuple=True)
    if not len(rows):
        return 0, None, None
    return len(rows), float(columns.float().mean()), float(rows.float().mean())


# -- the language -------------------------------------------------------------------------------------------------
def test_the_caption_lists_cover_the_world_and_hold_out_unseen_combinations():
    training, held_out = training_captions(), held_out_captions()
    assert len(training) == len(set(training)) >= 300 and len(held_out) == len(set(held_out)) >= 30
    assert not set(training) & set(held_out)
    pairs = {(o.colour, o.shape) for c in training for o in parse_caption(c).objects}
    assert not pairs & HELD_OUT_PAIRS and len(pairs) == len(COLOURS) * len(SHAPES) - len(HELD_OUT_PAIRS)
    assert all((o.colour, o.shape) in HELD_OUT_PAIRS for c in held_out for o in parse_caption(c).objects)
    specs = [parse_caption(c) for c in training]
    assert {s.relation for s in specs} == {None, *RELATIONS} and any(o.nose for s in specs for o in s.objects)
    assert all(parse_caption(c).caption() == c for c in training + held_out)  # the grammar writes what it reads
    assert training_captions() == training  # deterministic


@pytest.mark.parametrize("caption", ["a red box on a blue ball", "two red boxes", "a mauve box", "a red box with a nose", ""])
def test_text_outside_the_grammar_is_refused_quoting_it(caption):
    with pytest.raises(CaptionError, match="is not a miniworld caption"):
        parse_caption(caption)


def test_a_caption_is_a_distribution_and_each_draw_is_reproducible():
    caption = "a small red box with a green nose on top of a big blue cylinder"
    first, again, other = caption_scene(caption, 0), caption_scene(caption, 0), caption_scene(caption, 1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["means"], other["means"])
    parts, moved = object_parts(caption, 0), object_parts(caption, 1)
    for a, b in zip(parts, moved):
        assert a.shape == b.shape and abs(a.half - b.half) <= 0.2 * max(a.half, b.half)
        assert max(abs(x - y) for x, y in zip(a.colour, b.colour)) <= 0.06
        assert max(abs(x - y) for x, y in zip(a.centre, b.centre)) < 0.12


# -- the scenes, read back from renders -----------------------------------------------------------------------------
@pytest.mark.parametrize("caption", ["a red ball on top of a blue box", "a green cone next to a yellow cylinder",
                                     "a big pink box", "a small cyan cylinder on top of a big orange cone"])
def test_each_part_shows_its_colour_where_the_layout_puts_it(caption):
    rgb, cameras = front_back(caption_scene(caption))
    for part in object_parts(caption, 0):
        count, column, row = pixels_of(rgb, 0, part.colour)
        assert count > 40, (caption, part)
        expected_column, expected_row = project(cameras, 0, part.centre)
        assert abs(column - expected_column) < 4 and abs(row - expected_row) < 6, (caption, part, column, row,
                                                                                   expected_column, expected_row)


def test_relations_mean_what_they_say():
    above = object_parts("a red ball on top of a blue box", 0)
    assert above[0].centre[2] > above[1].centre[2] + 0.2  # on top of: +z
    beside = object_parts("a red ball next to a blue box", 0)
    assert beside[0].centre[0] > beside[1].centre[0] + 0.3  # next to: +x
    caption = "a small red ball in front of a big blue box"
    ahead = object_parts(caption, 0)
    assert ahead[0].centre[1] > ahead[1].centre[1] + 0.3  # in front of: +y, the front
    rgb, _ = front_back(caption_scene(caption))
    red = COLOURS["red"]
    assert pixels_of(rgb, 0, red)[0] > 100 and pixels_of(rgb, 1, red)[0] == 0  # seen from the front, hidden behind


def test_the_nose_defines_the_front():
    caption = "a big yellow box with a purple nose"
    rgb, cameras = front_back(caption_scene(caption), azimuths=(0.0, 180.0, 90.0))
    nose = next(part for part in object_parts(caption, 0) if part.is_nose)
    front, back, side = (pixels_of(rgb, v, nose.colour) for v in range(3))
    assert front[0] > 30 and back[0] == 0 and side[0] > 5
    column, row = project(cameras, 0, nose.centre)
    assert abs(front[1] - column) < 3 and abs(front[2] - row) < 3


# -- training examples: the trainer's cameras, backgrounds and view prompts ------------------------------------------
@pytest.mark.parametrize(("azimuth", "view"), [(0.0, "front"), (44.0, "front"), (-44.0, "front"), (90.0, "side"),
                                               (-120.0, "side"), (170.0, "back"), (-136.0, "back"), (350.0, "front")])
def test_each_example_prompt_names_the_nearest_view(azimuth, view):
    from segmentdreamer.miniworld.views import view_prompt

    assert view_prompt("a red box", azimuth) == f"a red box, {view} view"


def test_training_examples_show_the_object_from_the_trainers_cameras_reproducibly():
    from segmentdreamer.miniworld.views import render_views

    caption = "a small red box with a green nose on top of a big blue cylinder"
    batch = render_views(caption, 0, 8, 48, torch.Generator().manual_seed(5))
    again = render_views(caption, 0, 8, 48, torch.Generator().manual_seed(5))
    assert batch.images.shape == (8, 3, 48, 48) and torch.equal(batch.images, again.images) and batch.prompts == again.prompts
    assert not torch.equal(batch.images, render_views(caption, 0, 8, 48, torch.Generator().manual_seed(6)).images)
    assert batch.azimuths.abs().max() > 60  # the trainer's full circle, not only the front
    from segmentdreamer.miniworld.views import view_prompt

    for image, prompt, azimuth in zip(batch.images, batch.prompts, batch.azimuths.tolist()):
        corner = image[:, 0, 0]  # the background (the object stays near the centre at radius >= 5.2)
        shown = (image - corner[:, None, None]).abs().amax(dim=0) > 0.1
        assert 0.01 < shown.float().mean() < 0.5, prompt  # the object, and only the object, stands out
        assert prompt == view_prompt(caption, azimuth)
