"""The mini-CLIP: a transformers ``CLIPModel`` trained contrastively on the miniworld's (render, text) pairs.

Each step takes ``batch`` distinct captions (so no two pairs of a batch are the same text), one random example of
each, and as its text the bare caption (probability ``caption_only_prob``: CLIP scores bare captions) or the
example's prompt (view suffix, degradation words: what the mini-SD's text encoder, this model's text tower, must tell
apart). Loss: the symmetric cross-entropy of the scaled cosine similarities (CLIP's). Images enter as the model's
``CLIPImageProcessor`` would pass them (128 px, no resize, CLIP's mean and std).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..testing.tiny_models import EOS, clip_text_config, clip_tokenizer
from .dataset import RenderedSet
from .loop import optimise
from .settings import ClipSettings, MiniworldSettings

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def build_clip(settings: ClipSettings, resolution: int):
    """A randomly initialised CLIPModel: text tower of ``text_width``, ViT of ``vision_width`` on ``resolution`` px."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    text = clip_text_config(settings.text_width, settings.text_layers, settings.text_width // settings.head_width,
                            settings.projection, mlp_ratio=4)
    vision = CLIPVisionConfig(hidden_size=settings.vision_width, intermediate_size=4 * settings.vision_width,
                              num_hidden_layers=settings.vision_layers, num_attention_heads=settings.vision_width // settings.head_width,
                              image_size=resolution, patch_size=settings.patch, projection_dim=settings.projection, hidden_act="gelu")
    return CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=settings.projection))


def clip_processor(resolution: int):
    """The CLIPProcessor saved with the model: CLIP's tokenizer (pads with EOS), no resize at ``resolution`` px."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    image = CLIPImageProcessor(size={"shortest_edge": resolution}, crop_size={"height": resolution, "width": resolution},
                               image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    return CLIPProcessor(image_processor=image, tokenizer=clip_tokenizer(pad_token=EOS))


def normalise_pixels(images: Tensor) -> Tensor:
    """Images [B, 3, H, W] in [0, 1] -> CLIP's normalised pixel values."""
    mean = torch.tensor(CLIP_MEAN, device=images.device)[:, None, None]
    std = torch.tensor(CLIP_STD, device=images.device)[:, None, None]
    return (images - mean) / std


class TokenTable:
    """Token ids [T, 77] of a fixed list of texts, tokenized once (the slow tokenizer stays out of the loop)."""

    def __init__(self, tokenizer, texts: list[str], device: torch.device):
        self.row = {text: i for i, text in enumerate(dict.fromkeys(texts))}
        ids = tokenizer(list(self.row), padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        self.ids = ids.to(device)

    def __call__(self, texts: list[str]) -> Tensor:
        return self.ids[torch.tensor([self.row[text] for text in texts], device=self.ids.device)]


def contrastive_loss(model, pixels: Tensor, input_ids: Tensor) -> Tensor:
    """CLIP's symmetric cross-entropy over a batch of B matching (image, text) pairs."""
    image = torch.nn.functional.normalize(_projected(model.get_image_features(pixel_values=pixels)), dim=-1)
    text = torch.nn.functional.normalize(_projected(model.get_text_features(input_ids=input_ids)), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100.0) * image @ text.T
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


def _projected(output) -> Tensor:
    return output if isinstance(output, Tensor) else output.pooler_output


def train_clip(data: RenderedSet, settings: MiniworldSettings, work: Path, device: torch.device, progress: bool = True):
    """The trained CLIPModel (eval mode, fp32, on ``device``); checkpoints and loss curve in ``work``."""
    torch.manual_seed(settings.seed)
    model = build_clip(settings.clip, settings.data.resolution).to(device)
    tokens = TokenTable(clip_processor(settings.data.resolution).tokenizer, data.captions + data.prompts, device)
    per_caption = len(data) // len(data.captions)
    batch = min(settings.clip.training.batch, len(data.captions))

    def loss_at(step: int, generator: torch.Generator) -> Tensor:
        chosen = torch.randperm(len(data.captions), generator=generator)[:batch]
        examples = chosen * per_caption + torch.randint(per_caption, (batch,), generator=generator)
        bare = torch.rand(batch, generator=generator) < settings.clip.caption_only_prob
        texts = [data.captions[int(c)] if b else data.prompts[int(e)] for c, e, b in zip(chosen, examples, bare)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return contrastive_loss(model, normalise_pixels(data.floats(examples).to(device)), tokens(texts))

    return optimise("clip", model, loss_at, settings.clip.training, work, settings.seed, progress=progress)
