"""Point-E text -> point cloud (base40M-textvec + upsample), our implementation of the official models.

Users put the official checkpoints in one folder (config key ``models.pointe``):

    base_40m_textvec.pt   https://openaipublic.azureedge.net/main/point-e/base_40m_textvec.pt
    upsample_40m.pt       https://openaipublic.azureedge.net/main/point-e/upsample_40m.pt

and CLIP ViT-L/14 for the text (``models.pointe_clip``): an open_clip ``ViT-L-14`` state dict such as
``open_clip_pytorch_model.bin`` of ``timm/vit_large_patch14_clip_224.openai`` (the same network Point-E
loads from OpenAI). Sampling follows docs/method.md, "Cameras, init and renders" (:class:`~.settings.PointESampling`: Karras Heun steps
per stage, CFG on the base's x0, the upsampler unguided).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from ..models import CorruptWeightsError, MissingWeightsError
from .diffusion import PointDiffusion, unscale_points
from .karras import guided, heun_sample
from .settings import PointESampling
from .transformer import TextPointTransformer, UpsamplePointTransformer, config_from_state_dict

CHECKPOINTS = {
    "base": ("base_40m_textvec.pt", "https://openaipublic.azureedge.net/main/point-e/base_40m_textvec.pt"),
    "upsample": ("upsample_40m.pt", "https://openaipublic.azureedge.net/main/point-e/upsample_40m.pt"),
}


def load_checkpoint(path: Path) -> dict:
    """A Point-E state dict; an unreadable file (empty, truncated, not a checkpoint) is named with its key."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types for a damaged file
        raise CorruptWeightsError(f"models.pointe: {path} cannot be read as a PyTorch checkpoint ({type(error).__name__}: "
                                  f"{str(error)[:200]}): truncated or another file? Download it again.") from None


def checkpoint_paths(folder: str | Path) -> dict[str, Path]:
    """The two checkpoint files in ``folder``; fails at once naming ``models.pointe`` and the URLs."""
    folder = Path(folder).expanduser()
    paths = {stage: folder / name for stage, (name, _) in CHECKPOINTS.items()}
    missing = [stage for stage, path in paths.items() if not path.is_file()]
    if missing:
        wanted = "; ".join(f"{CHECKPOINTS[s][0]} ({CHECKPOINTS[s][1]})" for s in missing)
        raise MissingWeightsError(
            f"models.pointe = {str(folder)!r} lacks {wanted}. Download them once into that folder, "
            f"or use `--method sphere` (no weights)."
        )
    return paths


def load_clip_text_encoder(weights: str | Path, device: str | torch.device = "cpu", model_name: str = "ViT-L-14"):
    """An open_clip model + tokenizer. A ``<weights stem>.json`` beside the file names an own architecture."""
    import open_clip

    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise MissingWeightsError(
            f"models.pointe_clip = {str(weights)!r} is not a file. Put an open_clip ViT-L-14 state dict there "
            f"(e.g. open_clip_pytorch_model.bin of timm/vit_large_patch14_clip_224.openai)."
        )
    config = weights.with_suffix(".json")
    if config.is_file():
        open_clip.add_model_config(config)
        model_name = config.stem
    model = open_clip.create_model(model_name, pretrained=str(weights), device=device)
    return model.eval().requires_grad_(False), open_clip.get_tokenizer(model_name)


class PointE:
    """The two-stage sampler. Build with :meth:`from_folder`; call :meth:`sample`."""

    def __init__(self, base: TextPointTransformer, upsampler: UpsamplePointTransformer, clip_model, tokenizer,
                 device: str | torch.device = "cpu", sampling: PointESampling = PointESampling()):
        self.base, self.upsampler = base.to(device).eval(), upsampler.to(device).eval()
        self.clip_model, self.tokenizer, self.device, self.sampling = clip_model, tokenizer, torch.device(device), sampling
        self.base_diffusion, self.upsample_diffusion = PointDiffusion.cosine(), PointDiffusion.linear()

    @classmethod
    def from_folder(cls, folder: str | Path, clip_weights: str | Path, device: str | torch.device = "cpu") -> PointE:
        """Official checkpoints have 8 heads; an ``architecture.json`` ({"heads": n}) beside them says otherwise."""
        paths = checkpoint_paths(folder)
        states = {stage: load_checkpoint(path) for stage, path in paths.items()}
        architecture = Path(folder).expanduser() / "architecture.json"
        heads = json.loads(architecture.read_text())["heads"] if architecture.is_file() else 8
        base = TextPointTransformer(config_from_state_dict(states["base"], heads))
        upsampler = UpsamplePointTransformer(config_from_state_dict(states["upsample"], heads))
        base.load_state_dict(states["base"], strict=True)
        upsampler.load_state_dict(states["upsample"], strict=True)
        clip_model, tokenizer = load_clip_text_encoder(clip_weights, device)
        return cls(base, upsampler, clip_model, tokenizer, device)

    @torch.no_grad()
    def embed_text(self, prompts: list[str]) -> Tensor:
        """L2-normalised CLIP text embeddings [B, D]."""
        features = self.clip_model.encode_text(self.tokenizer(prompts).to(self.device)).float()
        return features / features.norm(dim=-1, keepdim=True)

    def _denoiser(self, model, diffusion: PointDiffusion, **kwargs):
        """Karras denoiser of one stage: model input x / sqrt(sigma^2 + 1) at the floored discrete step."""

        def denoise(x: Tensor, sigma: Tensor) -> Tensor:
            t = torch.tensor([diffusion.sigma_to_t(s) for s in sigma.tolist()], dtype=torch.long, device=x.device)
            x_in = x / torch.sqrt(sigma**2 + 1.0)[:, None, None]
            eps = model(x_in, t, **kwargs)[:, : x.shape[1]]
            return diffusion.predict_x0(x_in, t, eps, clip=True)

        return denoise

    @torch.no_grad()
    def sample(self, prompt: str, seed: int = 0, progress: bool = True) -> tuple[Tensor, Tensor]:
        """(xyz [4096, 3], rgb [4096, 3] in [0, 1]) for one prompt."""
        s, generator = self.sampling, torch.Generator().manual_seed(seed)
        text = self.embed_text([prompt])
        base_denoiser = self._denoiser(self.base, self.base_diffusion, text_embedding=torch.cat([text, torch.zeros_like(text)]))
        coarse = heun_sample(guided(base_denoiser, s.guidance_scale), (1, 6, 1024), s.steps, s.sigma_min, s.base_sigma_max, s.rho,
                             s_churn=s.base_churn, generator=generator, device=self.device, progress=progress, description="point-e base")
        low_res = unscale_points(coarse)
        up_denoiser = self._denoiser(self.upsampler, self.upsample_diffusion, low_res=low_res)
        fine = heun_sample(up_denoiser, (1, 6, 3072), s.steps, s.sigma_min, s.upsample_sigma_max, s.rho, s_churn=s.upsample_churn,
                           generator=generator, device=self.device, progress=progress, description="point-e upsample")
        points = torch.cat([low_res, unscale_points(fine)], dim=-1)[0].T.float().cpu()  # [4096, 6]
        rgb = points[:, 3:].clamp(0, 255).round() / 255.0
        return points[:, :3].contiguous(), rgb
