"""What a prior may learn about the iteration's views: the argument of the ``observe_views`` hook.

The trainer calls ``prior.observe_views(ObservedViews(...))`` once per iteration, after rendering and
before the loss. Stable Diffusion ignores it (a no-op); a prior whose answer depends on the views (the
known-answer :mod:`.target_scene`) renders its ground truth with them. Losses never see it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..scene.cameras import Cameras


@dataclass
class ObservedViews:
    """What the trainer rendered this iteration (the argument of a prior's ``observe_views`` hook).

    Attributes:
        cameras: the B views.   backgrounds: [B, 3] each view's solid background.
        flip: whether the batch was flipped horizontally before encoding.
        disparity: whether the encoder saw the disparity map (3 copies) instead of RGB.
        resolution: the square render size.
    """

    cameras: Cameras
    backgrounds: Tensor
    flip: bool
    disparity: bool
    resolution: int
