"""ImageReward v1.0 (Xu et al. 2023), the human-preference score of Table 1's "IR" column (docs/method.md, "Evaluation").

The model is BLIP's ViT-L/16 image encoder (224 px), a BERT text encoder whose layers cross-attend to the
image tokens, and an MLP head on the text [CLS] feature; the head's output is normalised with the
published mean and std. We run it on transformers' own BLIP modules (``BlipVisionModel``,
``BlipTextModel``) rather than the PyPI ``image-reward`` package, which does not import under
transformers 5 and reaches for the hub at load time; the official checkpoint's keys are renamed by
:func:`official_to_ours`. ``tests/data/image_reward/make_fixtures.py`` scores a tiny random-weight model
with the package itself, and the tests check we reproduce its numbers.

Folder layout named by ``models.image_reward``:

- ``ImageReward.pt`` and ``med_config.json`` from the hub repository ``THUDM/ImageReward``;
- the ``bert-base-uncased`` tokenizer (``vocab.txt``, ``tokenizer_config.json``) in the same folder, or
  named separately by ``models.image_reward_tokenizer`` (default ``google-bert/bert-base-uncased``);
- optionally ``vision_config.json`` (image_size, patch_size, hidden_size, num_hidden_layers,
  num_attention_heads); without it the published ViT-L/16 is assumed. Tiny test models write one.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import torch
from torch import Tensor, nn

from ..models import MissingWeightsError, resolve_model
from .metric import RunScorer
from .views import check_image_range, score_views

PUBLISHED_MEAN = 0.16717362830052426
PUBLISHED_STD = 1.0333394966054072
MAX_PROMPT_TOKENS = 35
IMAGE_SIZE = 224
CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
VIT_L_16 = {"image_size": 224, "patch_size": 16, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16}
DEFAULT_TOKENIZER = "google-bert/bert-base-uncased"
CHECKPOINT, MED_CONFIG, VISION_CONFIG = "ImageReward.pt", "med_config.json", "vision_config.json"

# Official BLIP ViT module names (timm layout) <-> transformers' BlipVisionModel; {i} is a block index.
VISION_RENAMES = [
    ("cls_token", "embeddings.class_embedding"),
    ("pos_embed", "embeddings.position_embedding"),
    ("patch_embed.proj", "embeddings.patch_embedding"),
    ("blocks.{i}.norm1", "encoder.layers.{i}.layer_norm1"),
    ("blocks.{i}.attn.qkv", "encoder.layers.{i}.self_attn.qkv"),
    ("blocks.{i}.attn.proj", "encoder.layers.{i}.self_attn.projection"),
    ("blocks.{i}.norm2", "encoder.layers.{i}.layer_norm2"),
    ("blocks.{i}.mlp", "encoder.layers.{i}.mlp"),
    ("norm", "post_layernorm"),
]
# BLIP pretraining's contrastive projections: in the checkpoint, unused by the reward.
UNUSED_PREFIXES = ("blip.vision_proj.", "blip.text_proj.")


class RewardHead(nn.Module):
    """The published MLP on the [CLS] text feature: D -> 1024 -> 128 -> 64 -> 16 -> 1, no activations.

    The dropouts keep the official module indices (``layers.0`` ... ``layers.7``) so keys match.
    """

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, features: Tensor) -> Tensor:
        """[B, D] -> raw rewards [B]."""
        return self.layers(features).squeeze(-1)


class ImageRewardModel(nn.Module):
    """BLIP image encoder + cross-attending text encoder + reward head; :meth:`forward` gives normalised rewards."""

    def __init__(self, vision: dict, med_config: dict):
        super().__init__()
        from transformers import BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

        self.vision = BlipVisionModel(BlipVisionConfig(
            image_size=vision["image_size"], patch_size=vision["patch_size"], hidden_size=vision["hidden_size"],
            intermediate_size=4 * vision["hidden_size"], num_hidden_layers=vision["num_hidden_layers"],
            num_attention_heads=vision["num_attention_heads"], hidden_act="gelu", layer_norm_eps=1e-6))
        self.text = BlipTextModel(BlipTextConfig(
            vocab_size=med_config["vocab_size"], hidden_size=med_config["hidden_size"],
            encoder_hidden_size=vision["hidden_size"], intermediate_size=med_config["intermediate_size"],
            num_hidden_layers=med_config["num_hidden_layers"], num_attention_heads=med_config["num_attention_heads"],
            max_position_embeddings=med_config["max_position_embeddings"], hidden_act=med_config["hidden_act"],
            layer_norm_eps=med_config["layer_norm_eps"], pad_token_id=med_config.get("pad_token_id", 0),
            bos_token_id=None, eos_token_id=None, sep_token_id=None, is_decoder=True), add_pooling_layer=False)  # is_decoder builds the cross-attention; forward runs bidirectional
        self.mlp = RewardHead(med_config["hidden_size"])

    def forward(self, pixels: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Normalised rewards [B] of preprocessed images [B, 3, 224, 224] and tokens [B, L] (one prompt per image)."""
        image_tokens = self.vision(pixel_values=pixels).last_hidden_state  # [B, 1 + patches, Dv]
        text = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_tokens,
                         encoder_attention_mask=torch.ones(image_tokens.shape[:2], dtype=torch.long, device=pixels.device),
                         is_decoder=False).last_hidden_state  # [B, L, Dt]
        return (self.mlp(text[:, 0].float()) - PUBLISHED_MEAN) / PUBLISHED_STD


def _rename(key: str, renames: list[tuple[str, str]]) -> str | None:
    """Apply the first (source, target) module rename whose source matches ``key``'s module path."""
    for source, target in renames:
        pattern = "^" + re.escape(source).replace(r"\{i\}", r"(?P<i>\d+)") + r"(?P<rest>\..+)?$"
        match = re.match(pattern, key)
        if match:
            groups = match.groupdict()
            return target.replace("{i}", groups.get("i") or "") + (groups["rest"] or "")
    return None


def official_to_ours(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official ``ImageReward.pt`` state dict to :class:`ImageRewardModel`'s keys.

    Raises:
        KeyError: for keys that are neither mapped nor known to be unused (a different checkpoint).
    """
    mapped, unknown = {}, []
    for key, value in state.items():
        if key.startswith(UNUSED_PREFIXES) or key.endswith("position_ids"):
            continue
        if key.startswith("blip.visual_encoder."):
            new = _rename(key.removeprefix("blip.visual_encoder."), VISION_RENAMES)
            new = new and "vision." + new
        elif key.startswith("blip.text_encoder."):
            new = "text." + key.removeprefix("blip.text_encoder.")  # transformers' BLIP text port keeps med.py's names
        elif key.startswith("mlp."):
            new = key
        else:
            new = None
        if new is None:
            unknown.append(key)
        else:
            mapped[new] = value
    if unknown:
        raise KeyError(f"not an ImageReward v1.0 checkpoint: unexpected keys {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    return mapped


def ours_to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`official_to_ours` (without the unused projections); tiny models are saved with it."""
    inverse = [(target, source) for source, target in VISION_RENAMES]
    official = {}
    for key, value in state.items():
        if key.startswith("vision."):
            official["blip.visual_encoder." + _rename(key.removeprefix("vision."), inverse)] = value
        elif key.startswith("text."):
            official["blip.text_encoder." + key.removeprefix("text.")] = value
        else:
            official[key] = value
    return official


def preprocess(images: np.ndarray) -> Tensor:
    """The package's preprocessing: PIL bicubic resize of the short side to 224, centre crop, CLIP normalisation.

    Args:
        images: uint8 [B, H, W, 3].
    Returns:
        float32 [B, 3, 224, 224].
    """
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.Resize(IMAGE_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(IMAGE_SIZE), transforms.ToTensor(), transforms.Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)])
    return torch.stack([transform(Image.fromarray(image).convert("RGB")) for image in images])


def _to_uint8(images: Tensor | np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, 3] from uint8 [B, H, W, 3] or floats [B, 3, H, W] in [0, 1] (range checked)."""
    check_image_range(images)
    if isinstance(images, np.ndarray):
        return images
    if images.dtype == torch.uint8:
        return images.cpu().numpy()
    return (images.detach().permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


class ImageRewardScorer:
    """Scores images against a prompt; build with :meth:`from_pretrained`."""

    def __init__(self, model: ImageRewardModel, tokenizer, device: str | torch.device = "cpu"):
        self.model, self.tokenizer, self.device = model.to(device).eval(), tokenizer, torch.device(device)

    @classmethod
    def from_pretrained(cls, id_or_folder: str | os.PathLike, tokenizer: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu") -> ImageRewardScorer:
        """Load ``ImageReward.pt`` + ``med_config.json`` (``models.image_reward``) and the BERT tokenizer."""
        from transformers import BertTokenizer

        folder = resolve_model(id_or_folder, "models.image_reward",
                               f"a folder with {CHECKPOINT} and {MED_CONFIG} (hub repository THUDM/ImageReward)")
        missing = [name for name in (CHECKPOINT, MED_CONFIG) if not (folder / name).is_file()]
        if missing:
            raise MissingWeightsError(f"models.image_reward = {folder}: missing {', '.join(missing)} "
                                      "(both are in the hub repository THUDM/ImageReward)")
        vocab_folder = folder if (folder / "vocab.txt").is_file() else resolve_model(
            tokenizer or DEFAULT_TOKENIZER, "models.image_reward_tokenizer", "a bert-base-uncased tokenizer folder")
        vision = json.loads((folder / VISION_CONFIG).read_text()) if (folder / VISION_CONFIG).is_file() else VIT_L_16
        model = ImageRewardModel(vision, json.loads((folder / MED_CONFIG).read_text()))
        state = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)
        model.load_state_dict(official_to_ours(state), strict=True)
        return cls(model, BertTokenizer.from_pretrained(str(vocab_folder), local_files_only=True), device)

    @torch.no_grad()
    def score(self, images: Tensor | np.ndarray, prompt: str) -> Tensor:
        """Normalised ImageReward [B] of images (uint8 [B, H, W, 3] or floats [B, 3, H, W] in [0, 1])."""
        pixels = preprocess(_to_uint8(images)).to(self.device)
        tokens = self.tokenizer([prompt] * len(pixels), padding="max_length", truncation=True,
                                max_length=MAX_PROMPT_TOKENS, return_tensors="pt").to(self.device)
        return self.model(pixels, tokens["input_ids"], tokens["attention_mask"]).cpu()


def image_reward_run_scorer(models: dict[str, str], device) -> RunScorer:
    """The ``ir`` metric (:mod:`.metric`): ImageReward per view and their mean."""
    scorer = ImageRewardScorer.from_pretrained(models["image_reward"], models.get("image_reward_tokenizer"), device)
    return lambda run: score_views(scorer, run.views, run.prompt)
