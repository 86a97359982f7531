"""Write the trained miniworld models in the on-disk formats the pipeline's ``models.*`` keys load, fp16:

- ``sd/``: a Stable Diffusion 2.1-base-layout diffusers folder (``models.sd``): the UNet, the VAE, the mini-CLIP's
  text tower as ``text_encoder`` with SD's tokenizer (pads with "!"), SD 2.1-base's DDIM scheduler;
- ``clip/``: the mini-CLIP and its processor in transformers layout (``models.clip``);
- ``pointe/``: ``base_40m_textvec.pt`` and ``upsample_40m.pt`` under Point-E's official names and key layout
  (``models.pointe``; ``architecture.json`` gives the head count), and the mini-CLIP converted to an open_clip
  model, ``clip.pt`` with its architecture in ``clip.json`` (``models.pointe_clip``), as Point-E conditions on CLIP.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from ..testing.tiny_models import CLIP_VOCAB_SIZE, clip_tokenizer
from .train_clip import clip_processor
from .train_unet import sd_scheduler, text_encoder_of
from .world import MODEL_MARKER, WORLD_VERSION

POINTE_CLIP = "clip.pt"


def write_clip(clip, folder: Path, resolution: int) -> Path:
    """The CLIPModel (fp16 safetensors) and its processor in transformers layout."""
    copy.deepcopy(clip).half().save_pretrained(folder)
    clip_processor(resolution).save_pretrained(folder)
    mark(folder)
    return folder


def mark(folder: Path) -> None:
    """Declare ``folder`` a model trained on this version of the miniworld (:data:`~.world.MODEL_MARKER`)."""
    (Path(folder) / MODEL_MARKER).write_text(json.dumps({"world_version": WORLD_VERSION}) + "\n")


def write_stable_diffusion(unet, vae, clip, folder: Path) -> Path:
    """A diffusers StableDiffusionPipeline folder (fp16 safetensors) of the trained parts."""
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(
        vae=copy.deepcopy(vae), text_encoder=text_encoder_of(clip), tokenizer=clip_tokenizer(pad_token="!"),
        unet=copy.deepcopy(unet), scheduler=sd_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.to(torch.float16).save_pretrained(folder)
    mark(folder)
    return folder


def open_clip_architecture(clip) -> dict:
    """The open_clip model config (``clip.json``) of a transformers CLIPModel of exact-GELU towers."""
    text, vision = clip.config.text_config, clip.config.vision_config
    return {
        "embed_dim": clip.config.projection_dim,
        "vision_cfg": {"image_size": vision.image_size, "layers": vision.num_hidden_layers, "width": vision.hidden_size,
                       "patch_size": vision.patch_size, "head_width": vision.hidden_size // vision.num_attention_heads,
                       "mlp_ratio": vision.intermediate_size / vision.hidden_size},
        "text_cfg": {"context_length": text.max_position_embeddings, "vocab_size": CLIP_VOCAB_SIZE, "width": text.hidden_size,
                     "heads": text.num_attention_heads, "layers": text.num_hidden_layers,
                     "mlp_ratio": text.intermediate_size / text.hidden_size},
    }


def _blocks(source: dict, prefix: str, target: str, layers: int) -> dict:
    """transformers encoder layers -> open_clip residual blocks (q, k, v stacked into one in-projection)."""
    out = {}
    for i in range(layers):
        src, dst = f"{prefix}.encoder.layers.{i}", f"{target}.transformer.resblocks.{i}"
        for part in ("weight", "bias"):
            out[f"{dst}.attn.in_proj_{part}"] = torch.cat([source[f"{src}.self_attn.{p}_proj.{part}"] for p in "qkv"])
            out[f"{dst}.attn.out_proj.{part}"] = source[f"{src}.self_attn.out_proj.{part}"]
            out[f"{dst}.ln_1.{part}"] = source[f"{src}.layer_norm1.{part}"]
            out[f"{dst}.ln_2.{part}"] = source[f"{src}.layer_norm2.{part}"]
            out[f"{dst}.mlp.c_fc.{part}"] = source[f"{src}.mlp.fc1.{part}"]
            out[f"{dst}.mlp.c_proj.{part}"] = source[f"{src}.mlp.fc2.{part}"]
    return out


def open_clip_state(clip) -> dict:
    """The open_clip state dict of a transformers CLIPModel (same network: equal features, tests/test_miniworld_models.py)."""
    s = {k: v.detach().clone() for k, v in clip.state_dict().items()}
    text, vision = "text_model", "vision_model"
    state = {
        "token_embedding.weight": s[f"{text}.embeddings.token_embedding.weight"],
        "positional_embedding": s[f"{text}.embeddings.position_embedding.weight"],
        "ln_final.weight": s[f"{text}.final_layer_norm.weight"], "ln_final.bias": s[f"{text}.final_layer_norm.bias"],
        "text_projection": s["text_projection.weight"].T.contiguous(),
        "visual.conv1.weight": s[f"{vision}.embeddings.patch_embedding.weight"],
        "visual.class_embedding": s[f"{vision}.embeddings.class_embedding"],
        "visual.positional_embedding": s[f"{vision}.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": s[f"{vision}.pre_layrnorm.weight"], "visual.ln_pre.bias": s[f"{vision}.pre_layrnorm.bias"],
        "visual.ln_post.weight": s[f"{vision}.post_layernorm.weight"], "visual.ln_post.bias": s[f"{vision}.post_layernorm.bias"],
        "visual.proj": s["visual_projection.weight"].T.contiguous(),
        "logit_scale": s["logit_scale"],
    }
    state.update(_blocks(s, text, "", clip.config.text_config.num_hidden_layers))
    state.update(_blocks(s, vision, "visual", clip.config.vision_config.num_hidden_layers))
    return {key.lstrip("."): value for key, value in state.items()}


def write_pointe(base, upsampler, clip, folder: Path) -> Path:
    """Point-E's two checkpoints (fp16 parameters, fp32 buffers), ``architecture.json`` and the open_clip text model."""
    from ..init.pointe import CHECKPOINTS

    folder.mkdir(parents=True, exist_ok=True)
    for stage, model in (("base", base), ("upsample", upsampler)):
        parameters = {name for name, _ in model.named_parameters()}
        state = {k: v.detach().half() if k in parameters else v.detach() for k, v in model.state_dict().items()}
        torch.save({k: v.cpu() for k, v in state.items()}, folder / CHECKPOINTS[stage][0])
    (folder / "architecture.json").write_text(json.dumps({"heads": base.config.heads}))
    (folder / POINTE_CLIP).with_suffix(".json").write_text(json.dumps(open_clip_architecture(clip), indent=2))
    torch.save({k: v.half().cpu() for k, v in open_clip_state(clip).items()}, folder / POINTE_CLIP)
    mark(folder)
    return folder
