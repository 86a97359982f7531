"""The miniworld's image-text training set: renders of every caption's draws, rendered once and kept as uint8.

:func:`render_set` renders ``draws`` draws of each caption from ``views`` cameras of the trainer's distribution
(:func:`~.views.render_views`), so the three learned models see exactly the images and prompts the trainer shows a
prior. A fraction ``degrade_prob`` of the examples is degraded (blurred, washed out or over-saturated) and its prompt
says so with words of the negative prompt ("blurry", "low contrast, dull", "oversaturation"): a prior trained on
them gives those words the meaning they have for Stable Diffusion, so negative prompts push away from what they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..plan.layout import MINIWORLD_WORK_FILES
from .views import render_views

DEGRADATIONS = ("blurry", "low contrast, dull", "oversaturation")
"""What a degraded example's prompt appends (", " + words), one per kind of :func:`degrade`."""


@dataclass
class RenderedSet:
    """N examples.

    Attributes:
        images: [N, 3, H, W] uint8 (on the device they were rendered on).
        prompts: N prompts: the caption, a view suffix, and a degradation's words where degraded.
        captions: the distinct captions of the set.
        caption_index: [N] long, each example's index into ``captions``.
        azimuths: [N] degrees (0 = front).
    """

    images: Tensor
    prompts: list[str]
    captions: list[str]
    caption_index: Tensor
    azimuths: Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def floats(self, index: Tensor) -> Tensor:
        """Images [len(index), 3, H, W] in [0, 1] (float32)."""
        return self.images[index.to(self.images.device)].float() / 255.0


def degrade(images: Tensor, kind: int) -> Tensor:
    """Images [B, 3, H, W] in [0, 1] made blurry (kind 0: 5x5 binomial blur, twice), washed out (1: contrast x 0.4
    about mid-grey) or over-saturated (2: 2.5 x the distance from each pixel's grey, clamped)."""
    if kind == 0:
        taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=images.device) / 16.0
        kernel = (taps[:, None] * taps[None]).expand(3, 1, 5, 5)
        for _ in range(2):
            images = torch.nn.functional.conv2d(torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
        return images
    if kind == 1:
        return 0.5 + 0.4 * (images - 0.5)
    grey = images.mean(dim=1, keepdim=True)
    return (grey + 2.5 * (images - grey)).clamp(0.0, 1.0)


def render_set(captions: list[str], draws: int, views: int, resolution: int, seed: int, device: str | torch.device = "cpu",
               degrade_prob: float = 0.0, progress: bool = True) -> RenderedSet:
    """Render ``views`` examples of each of ``draws`` draws (seeds 0..draws-1) of every caption.

    Deterministic for ``seed`` (one CPU generator draws every camera, background and degradation in order).
    Returns N = len(captions) x draws x views examples, caption-major.
    """
    generator = torch.Generator().manual_seed(seed)
    images, prompts, index, azimuths = [], [], [], []
    jobs = [(i, caption, draw) for i, caption in enumerate(captions) for draw in range(draws)]
    for i, caption, draw in tqdm(jobs, desc="miniworld renders", unit="scene", disable=not progress):
        batch = render_views(caption, draw, views, resolution, generator, device=device)
        rgb, batch_prompts = batch.images, list(batch.prompts)
        degraded = torch.rand(views, generator=generator) < degrade_prob
        kinds = torch.randint(len(DEGRADATIONS), (views,), generator=generator)
        for view in degraded.nonzero().flatten().tolist():
            rgb[view] = degrade(rgb[view : view + 1], int(kinds[view]))[0]
            batch_prompts[view] += ", " + DEGRADATIONS[int(kinds[view])]
        images.append((rgb * 255.0).round().to(torch.uint8))
        prompts += batch_prompts
        index += [i] * views
        azimuths.append(batch.azimuths)
    return RenderedSet(torch.cat(images), prompts, list(captions), torch.tensor(index), torch.cat(azimuths))


def save_renders(sets: dict[str, RenderedSet], path: Path) -> None:
    """Write named rendered sets to one compressed ``.npz`` (renders of flat-coloured scenes on plain backgrounds
    compress ~10x, so a set made on one machine travels to another), atomically."""
    import numpy as np

    from ..atomic import atomic_target

    arrays = {}
    for name, data in sets.items():
        arrays |= {f"{name}.images": data.images.cpu().numpy(), f"{name}.prompts": np.array(data.prompts),
                   f"{name}.captions": np.array(data.captions), f"{name}.caption_index": data.caption_index.numpy(),
                   f"{name}.azimuths": data.azimuths.numpy()}
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def load_renders(work: Path) -> tuple[RenderedSet, RenderedSet]:
    """(training set, held-out set) the ``renders`` stage wrote to ``work`` (images on the CPU)."""
    import numpy as np

    path = Path(work) / MINIWORLD_WORK_FILES["renders"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the `renders` stage first (segmentdreamer miniworld renders)")
    with np.load(path) as stored:
        return tuple(RenderedSet(torch.from_numpy(stored[f"{name}.images"]), stored[f"{name}.prompts"].tolist(),
                                 stored[f"{name}.captions"].tolist(), torch.from_numpy(stored[f"{name}.caption_index"]),
                                 torch.from_numpy(stored[f"{name}.azimuths"])) for name in ("train", "held_out"))
