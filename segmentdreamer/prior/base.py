"""The prior contract: what the trainer and the losses call on a prior, and the registry of prior kinds.

A prior is a subclass of :class:`Prior`. It provides

============================================ ==========================================================
``schedule``                                  the noise schedule (:class:`~.schedule.NoiseSchedule`: a_t, s_t, ...)
``dtype``, ``device``                         where its networks compute
``encode(images, generator)``                 z0 [B, C, h, w] from renders [B, 3, H, W] in [0, 1], with gradient
``decode(latents)``                           images [B, 3, H, W] in [0, 1] (GCS's pixel term, previews)
``predict_noise(x, t, embedding)``            eps [N, C, h, w]: the one network entry point the losses call
``prompt_embeddings(prompt, negative)``       the view prompts' embeddings (:class:`~.conditioning.PromptEmbeddings`)
============================================ ==========================================================

and may override the hooks, whose defaults do nothing:

============================================ ==========================================================
``observe_views(views)``                      each iteration's cameras (a prior whose answer depends on them)
``progress(params) -> dict``                  scalars about the Gaussians logged at checkpoints (learning curves)
``compile(unet_mode, dynamic_batch)``         ``train.compile_prior``: compile what is worth compiling
``assets_in_process``                         assets sharing this instance (the multi-asset wrapper sets it)
``shareable`` (class variable)                False: several assets may not share one instance (multi_asset)
============================================ ==========================================================

Kinds of prior are registered by the spelling of ``models.sd``: a prefix (``target-scene:``) picks its kind, any
other value is a Stable Diffusion folder or cached hub id. A kind of your own is one file and one line
(docs/architecture.md, "Adding a prior"): ``register_prior("myprior:", MyPrior.from_spec)`` in a module listed under ``plugins``.
This module imports no torch (annotations only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from .conditioning import PromptEmbeddings
    from .schedule import NoiseSchedule


class Prior:
    """Base of every prior: the contract's members (abstract) and its hooks (no-ops)."""

    schedule: NoiseSchedule
    dtype: torch.dtype
    device: torch.device
    """(``schedule``, ``dtype``, ``device``: attributes or properties of the subclass.)"""
    shareable: ClassVar[bool] = True
    """Whether several assets may train on one instance (multi_asset.py batches their noise predictions)."""
    assets_in_process: int = 1

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def decode(self, latents: Tensor) -> Tensor:
        raise NotImplementedError

    def predict_noise(self, x: Tensor, t: Tensor, embedding: Tensor) -> Tensor:
        raise NotImplementedError

    def prompt_embeddings(self, prompt: str, negative_prompt: str) -> PromptEmbeddings:
        raise NotImplementedError

    # -- hooks ----------------------------------------------------------------------------------------------------
    def observe_views(self, views: Any) -> None:
        """This iteration's cameras (:class:`~.views.ObservedViews`), before the loss runs. Default: ignored."""

    def progress(self, params: Any) -> dict[str, float]:
        """Scalars about the Gaussians worth logging at a checkpoint (``progress.jsonl``). Default: none."""
        return {}

    def compile(self, unet_mode: str = "default", dynamic_batch: bool = False) -> None:
        """Compile the networks (``train.compile_prior``). Default: nothing to compile."""


PriorLoader = Callable[..., Prior]
"""``loader(spec, dtype=None, device="cpu", cache_dir=None) -> Prior``; or ``"module:function"`` (imported on use)."""


@dataclass(frozen=True)
class PriorKind:
    prefix: str
    """The ``models.sd`` prefix that selects this kind ("" for the default: a Stable Diffusion folder)."""
    loader: PriorLoader | str


PRIOR_KINDS: dict[str, PriorKind] = {}


def register_prior(prefix: str, loader: PriorLoader | str) -> None:
    """Make ``models.sd`` values starting with ``prefix`` load through ``loader`` (one line in a plugin module).

    ``prefix`` must end with ":" (so it never collides with a folder name), or be "" for the default kind; a prefix
    registered twice with a different loader is an error.
    """
    if prefix and not prefix.endswith(":"):
        raise ValueError(f"prior prefix {prefix!r} must end with ':' (e.g. 'myprior:')")
    known = PRIOR_KINDS.get(prefix)
    if known is not None and known.loader != loader:
        raise ValueError(f"prior prefix {prefix!r} is already registered by {known.loader!r}")
    PRIOR_KINDS[prefix] = PriorKind(prefix, loader)


def prior_kind(spec: str) -> PriorKind:
    """The kind a ``models.sd`` value selects: the longest registered prefix it starts with, else the default."""
    matches = [kind for prefix, kind in PRIOR_KINDS.items() if prefix and spec.startswith(prefix)]
    return max(matches, key=lambda kind: len(kind.prefix)) if matches else PRIOR_KINDS[""]


def load_prior(spec: str, dtype=None, device="cpu", cache_dir=None) -> Prior:
    """The prior ``models.sd`` names, loaded by its kind's loader."""
    import importlib

    loader = prior_kind(spec).loader
    if isinstance(loader, str):
        module, _, name = loader.partition(":")
        loader = getattr(importlib.import_module(module), name)
    return loader(spec, dtype=dtype, device=device, cache_dir=cache_dir)


register_prior("", "segmentdreamer.prior.diffusion_prior:load_diffusion_prior")
register_prior("target-scene:", "segmentdreamer.prior.target_scene:load_target_scene_prior")
