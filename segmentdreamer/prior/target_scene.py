"""A known-answer prior: the exact denoiser of a point mass on a ground-truth scene's renders.

Every loss has the ground truth as its fixed point under this prior, so training through the whole chain
(cameras, renders, encoder, loss, gradients, Adam, densification, checkpoints, the evaluation ring) must
recover the ground-truth object: a measurable answer without any weights.

Per iteration the trainer tells the prior what it rendered (:meth:`observe_views`: the cameras, the
backgrounds, the flip, RGB or disparity); the prior renders its ground-truth scene the same way and encodes
it, z* [B, C, h, w]. Its noise prediction is then exact for a distribution concentrated on z*:

    eps*(z_t, t) = (z_t - a_t z*) / s_t

The view prompts and the negative prompt (CFG's two branches) both mean the point mass, so CFG changes
nothing. The view prompts also name their view: an embedding is (label, degrees from the front), front 0,
side 90, back 180, so the trainer's azimuth-interpolated text names exactly |azimuth| of the camera it was
made for. Where a text names another view than its camera's (a view prompt wired to the wrong camera, or
Perp-Neg's pure front and side prompts), the prior renders the ground truth from the camera carried around
to the named azimuth (same side, same elevation, background and flip): the scene as that text describes it,
so a view-prompt or Perp-Neg wiring error makes contradictory targets and lowers the demo's PSNR. The empty prompt (the ∅ of every ODE step: inversion, G(., ∅)) is the unconditional model, a
Gaussian N(z*, sigma^2 I) around the same object (exact denoiser E[z0 | x] = z* + a sigma^2 (x - a z*) /
(a^2 sigma^2 + s^2)). It must differ from the point mass: under a point mass the probability-flow ODE is
exactly consistent from any start (x0-prediction is z* everywhere), so every consistency loss (SCTD's A, B
and C, ISM's interval) is zero for *any* z0 and nothing is learnt; SDS, whose target is fresh noise, is not
affected. With sigma > 0, SCTD's fixed point lies near z* but not on it (its inversion runs the
unconditional ODE, its cross term the conditional one), which the known-answer numbers measure.

With two scenes (``target-scene:totem/crate``) the text selects: the view prompts mean the first scene, the
negative prompt the second, and the empty prompt their 50/50 mixture, whose exact denoiser weighs each
point mass by its posterior responsibility. CFG's fixed point is then z_neg + g (z_txt - z_neg): an
extrapolation beyond the prompt's object, over-saturation in closed form.

The "VAE" is :class:`LinearLatentMap`: a fixed full-rank 3 -> 4 channel map at scale factor 1, decoded by
its pseudo-inverse, so nothing is lost and the fixed point in pixels is the ground-truth render itself.

Selected like any model: ``models.sd: target-scene:totem`` (``models.is_target_scene``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import DEFAULT_NEGATIVE_PROMPT
from ..models import parse_target_scene
from ..scene.cameras import turned_about_z
from ..scene.compare import compare_renders, ring_renders
from ..scene.gaussians import activate
from ..scene.known_scenes import build_scene, scene_names
from ..scene.render import render
from ..scene.ring import COMPARISON_RESOLUTION
from .base import Prior
from .conditioning import PromptEmbeddings
from .schedule import NoiseSchedule
from .views import ObservedViews

NO_VIEW = -1.0
"""The view code of a prompt that names no view (the negative and the empty prompt)."""


class LinearLatentMap:
    """z = M (2 img - 1) per pixel, M a fixed full-rank [4, 3] matrix; decoded by M's pseudo-inverse."""

    def __init__(self, device: torch.device):
        matrix = torch.tensor([[0.6, 0.3, 0.1], [-0.2, 0.5, 0.4], [0.3, -0.4, 0.5], [0.25, 0.25, 0.25]])
        self.matrix = matrix.to(device)
        self.inverse = torch.linalg.pinv(matrix).to(device)

    def encode(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, 4, H, W]."""
        return torch.einsum("oc,bchw->bohw", self.matrix, 2.0 * images - 1.0)

    def decode(self, latents: Tensor) -> Tensor:
        """[B, 4, H, W] -> [B, 3, H, W] in [0, 1] (clamped, as a VAE decoder's output)."""
        return (torch.einsum("co,bohw->bchw", self.inverse, latents) / 2.0 + 0.5).clamp(0.0, 1.0)


def load_target_scene_prior(spec: str, dtype=None, device="cpu", cache_dir=None) -> TargetScenePrior:
    """The ``target-scene:`` prior kind (:mod:`.base`); fp32 always, no text cache (it reads no text)."""
    return TargetScenePrior.from_spec(spec, device)


class TargetScenePrior(Prior):
    """The prior contract (:mod:`.base`) on a known scene: its answer is the scene seen from this iteration's cameras."""

    shareable = False
    """It records each asset's cameras (observe_views): one instance per asset."""

    def __init__(self, scenes: list[torch.nn.ParameterDict], device: str | torch.device = "cpu", unconditional_std: float = 1.0):
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.schedule = NoiseSchedule.scaled_linear()
        self.latent_map = LinearLatentMap(self.device)
        self.ground_truth = scenes[0]
        """The first scene, as stored parameters: what a learned scene is compared with."""
        self.scenes = [{k: v.detach().to(self.device) for k, v in activate(scene).items()} for scene in scenes]
        self.targets: list[Tensor] | None = None
        self.unconditional_std = unconditional_std
        """sigma of the unconditional Gaussian N(z*, sigma^2 I) of a one-scene prior (0: the degenerate point mass)."""
        self._truth_rings: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        """(views, resolution) -> the ground truth's ring renders (rgb, alpha), for ``progress``."""
        self.views: ObservedViews | None = None
        self._named_views: dict[tuple[int, int], Tensor] = {}
        """(view, degrees a text named) -> the first scene's latent seen from there, this iteration."""

    @classmethod
    def from_spec(cls, spec: str, device: str | torch.device = "cpu") -> TargetScenePrior:
        """``target-scene:<scene>[/<negative scene>][;unconditional_std=<sigma>]``."""
        names, settings = parse_target_scene(spec)
        unknown = [name for name in names if name not in scene_names()]
        if unknown:
            raise ValueError(f"models.sd = {spec!r}: unknown scene {unknown[0]!r} (known: {', '.join(scene_names())})")
        return cls([build_scene(name) for name in names], device, unconditional_std=settings.get("unconditional_std", 1.0))

    # -- what the trainer tells the prior ------------------------------------------------------------
    @torch.no_grad()
    def observe_views(self, views: ObservedViews) -> None:
        """Render every ground-truth scene as the trainer rendered its views and encode it: z* per scene."""
        self.targets = [self.latent_map.encode(self.render_like(scene, views)) for scene in self.scenes]
        self.views, self._named_views = views, {}

    def render_like(self, scene: dict[str, Tensor], views: ObservedViews) -> Tensor:
        """[B, 3, H, W] the scene seen as the trainer's encoder saw its own renders."""
        images = []
        for i in range(len(views.cameras)):
            view = views.cameras[i : i + 1].to(self.device)
            out = render(**scene, viewmats=view.viewmats, Ks=view.Ks, width=views.resolution, height=views.resolution,
                         backgrounds=views.backgrounds[i : i + 1].to(self.device))
            images.append(out.disparity.repeat(1, 3, 1, 1) if views.disparity else out.rgb)
        batch = torch.cat(images)
        return batch.flip(-1) if views.flip else batch

    def progress(self, params: torch.nn.ParameterDict, views: int = 12, resolution: int = COMPARISON_RESOLUTION) -> dict[str, float]:
        """PSNR / SSIM / IoU of ``params`` against the ground truth on a coarse ring (the learning curve); the
        ground truth's ring renders are made once."""
        if (views, resolution) not in self._truth_rings:
            self._truth_rings[views, resolution] = ring_renders(self.ground_truth, views, resolution)
        metrics = compare_renders(*ring_renders(params, views, resolution), *self._truth_rings[views, resolution])
        return {key: metrics[key] for key in ("psnr", "ssim", "iou")}

    # -- the DiffusionPrior interface -----------------------------------------------------------------
    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.latent_map.encode(images.to(self.dtype))

    def decode(self, latents: Tensor) -> Tensor:
        return self.latent_map.decode(latents)

    def prompt_embeddings(self, prompt: str, negative_prompt: str = DEFAULT_NEGATIVE_PROMPT) -> PromptEmbeddings:
        """Text is (label, degrees) here: label 1 = the first scene (any view prompt), 0 = the second (negative),
        0.5 = empty; degrees = the view a view prompt names (front 0, side 90, back 180), -1 for the others."""
        def label(value: float, degrees: float = NO_VIEW) -> Tensor:
            return torch.tensor([[value, degrees]], device=self.device)

        return PromptEmbeddings(front=label(1.0, 0.0), side=label(1.0, 90.0), back=label(1.0, 180.0), negative=label(0.0),
                                empty=label(0.5))

    def predict_noise(self, x: Tensor, t: Tensor, embedding: Tensor) -> Tensor:
        """eps*(x, t) = (x - a_t z*) / s_t, z* the scene(s) the embedding selects; x [N, C, h, w] with N = k B."""
        if self.targets is None:
            raise RuntimeError("TargetScenePrior.predict_noise before observe_views: the trainer must call the hook")
        batch = self.targets[0].shape[0]
        repeats = x.shape[0] // batch
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        a, s = self.schedule.alpha(t, x), self.schedule.sigma(t, x)
        targets = [z.repeat(repeats, 1, 1, 1).to(x.dtype) for z in self.targets]
        code = embedding.reshape(x.shape[0], -1).to(x.dtype)
        label = code[:, 0][:, None, None, None]
        if code.shape[1] > 1 and self.views is not None:  # targets set by hand know no cameras
            targets[0] = self._as_named(targets[0], code[:, 1], batch)
        if len(targets) == 1:
            var = self.unconditional_std**2
            unconditional = targets[0] + a * var * (x - a * targets[0]) / (a * a * var + s * s)
            chosen = torch.where((label - 0.5).abs() < 0.25, unconditional, targets[0])
        else:
            mixture = self._posterior_mean(x, a, s, targets)
            chosen = torch.where(label > 0.75, targets[0], torch.where(label < 0.25, targets[1], mixture))
        return (x - a * chosen) / s

    def _as_named(self, target: Tensor, named: Tensor, batch: int) -> Tensor:
        """``target`` [N, C, h, w] (row i: view i % batch as the trainer saw it) with each row whose text names
        another view than its camera's (by more than half a degree) replaced by the first scene seen from there."""
        camera = ((self.views.cameras.azimuths.to(named) + 180.0) % 360.0 - 180.0).repeat(len(named) // batch)
        elsewhere = (named >= 0.0) & ((named - camera.abs()).abs() > 0.5)
        if not bool(elsewhere.any()):
            return target
        target = target.clone()
        for row in torch.nonzero(elsewhere).flatten().tolist():
            view, degrees = row % batch, int(round(float(named[row])))
            if (view, degrees) not in self._named_views:
                self._named_views[view, degrees] = self._seen_from(view, degrees)
            target[row] = self._named_views[view, degrees].to(target)
        return target

    @torch.no_grad()
    def _seen_from(self, view: int, degrees: int) -> Tensor:
        """[C, h, w] the first scene's latent from camera ``view`` carried to azimuth +-``degrees`` (its own side)."""
        views = self.views
        own = float(views.cameras.azimuths[view])
        side = -1.0 if ((own + 180.0) % 360.0 - 180.0) < 0.0 else 1.0
        turned = turned_about_z(views.cameras[view : view + 1], torch.tensor([side * degrees - own]))
        single = ObservedViews(turned, views.backgrounds[view : view + 1], views.flip, views.disparity, views.resolution)
        return self.latent_map.encode(self.render_like(self.scenes[0], single))[0]

    @staticmethod
    def _posterior_mean(x: Tensor, a: Tensor, s: Tensor, targets: list[Tensor]) -> Tensor:
        """E[z0 | x] under an equal mixture of point masses: responsibilities from ||x - a z_k||^2 / (2 s^2)."""
        logits = torch.stack([-(x - a * z).pow(2).flatten(1).sum(1) / (2.0 * s.flatten() ** 2) for z in targets])
        weights = torch.softmax(logits.double(), dim=0).to(x.dtype)  # [K, N]
        return sum(w[:, None, None, None] * z for w, z in zip(weights, targets))
