"""Tiny random-weight models in the real on-disk formats, for offline tests and the smoke workflow.

``make_tiny_models(dir)`` writes, deterministically and in seconds:

- ``dir/sd``: a Stable Diffusion 2.1-style pipeline in diffusers layout (unet/, vae/, text_encoder/,
  tokenizer/, scheduler/, model_index.json) with SD 2.1-base's scheduler settings, a 4-level VAE (so
  latents are 1/8 of the image size, 4 channels, scale 0.18215) and a 2-layer text encoder.
- ``dir/clip``: a CLIP model and processor in transformers layout (``openai/clip-vit-large-patch14``'s
  format at toy width).
- ``dir/pointe``: Point-E's two checkpoints under their official file names, and a tiny open_clip text model.
- ``dir/image_reward``: ``ImageReward.pt`` in the official key layout, ``med_config.json``, a tiny BERT
  WordPiece vocabulary and ``vision_config.json`` (a 2-layer ViT instead of ViT-L/16).

The tokenizers use the real CLIP BPE vocabulary, read from the file that open_clip ships (never the hub),
so their token ids equal those of the real models. Tiny models prove the plumbing, never quality.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import torch

CLIP_VOCAB_SIZE = 49408
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE uses for bytes 0..255, in byte order."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    symbols, shift = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shift))
            shift += 1
    return symbols


def _printable_order() -> list[str]:
    """CLIP's vocabulary starts with the printable bytes' symbols, then the remapped ones."""
    symbols = _byte_symbols()
    return [s for s in symbols if ord(s) < 256] + [s for s in symbols if ord(s) >= 256]


def clip_bpe_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of CLIP's tokenizer from open_clip's ``bpe_simple_vocab_16e6.txt.gz``."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("open_clip (package open-clip-torch) is needed for CLIP's BPE vocabulary")
    bpe_file = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_file).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    base = _printable_order()
    tokens = base + [s + "</w>" for s in base] + ["".join(m) for m in merges] + [BOS, EOS]
    assert len(tokens) == CLIP_VOCAB_SIZE, len(tokens)
    return {tok: i for i, tok in enumerate(tokens)}, merges


def clip_tokenizer(pad_token: str):
    """A transformers CLIPTokenizer with CLIP's real vocabulary (SD 2.x pads with "!")."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_bpe_vocabulary()
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token, model_max_length=77)


def clip_text_config(width: int = 16, layers: int = 2, heads: int = 2, projection: int = 16, mlp_ratio: int = 2):
    """A transformers CLIPTextConfig with CLIP's vocabulary, 77 positions, exact GELU, an MLP of ``mlp_ratio`` x width."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE, hidden_size=width, intermediate_size=mlp_ratio * width,
        num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77, hidden_act="gelu",
        projection_dim=projection, bos_token_id=CLIP_VOCAB_SIZE - 2, eos_token_id=CLIP_VOCAB_SIZE - 1, pad_token_id=0,
    )


def make_tiny_stable_diffusion(folder: Path) -> Path:
    """Write a tiny SD 2.1-style diffusers pipeline to ``folder`` (about 10 MB)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=64, scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(clip_text_config())
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
    )
    pipeline = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer(pad_token="!"), unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    return folder


def make_tiny_clip(folder: Path) -> Path:
    """Write a tiny CLIP model + processor in transformers layout to ``folder``."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPVisionConfig

    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=224, patch_size=32, projection_dim=16)
    config = CLIPConfig(text_config=clip_text_config().to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
        tokenizer=clip_tokenizer(pad_token=EOS),
    )
    processor.save_pretrained(folder)
    return folder


def make_tiny_models(root: str | Path) -> dict[str, Path]:
    """Write every tiny model under ``root``; returns {config key: folder}."""
    root = Path(root)
    return {
        "models.sd": make_tiny_stable_diffusion(root / "sd"),
        "models.clip": make_tiny_clip(root / "clip"),
        "models.pointe": make_tiny_pointe(root / "pointe"),
        "models.image_reward": make_tiny_image_reward(root / "image_reward"),
    }


def write_bert_vocabulary(folder: Path, words: tuple[str, ...] = ()) -> int:
    """A small lower-case WordPiece vocabulary (specials, characters, ``##`` pieces, ``words``) and its
    tokenizer config in ``folder``; returns its size. Any text tokenizes (unknown characters become [UNK])."""
    import json
    import string

    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + characters + [f"##{c}" for c in characters] + list(words)
    unique = list(dict.fromkeys(tokens))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(unique) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    return len(unique)


def make_tiny_image_reward(folder: Path) -> Path:
    """A tiny random ImageReward (2-layer ViT and BERT of width 32, the published head) in the official layout."""
    import json

    from ..evaluate.image_reward import CHECKPOINT, MED_CONFIG, VISION_CONFIG, ImageRewardModel, ours_to_official

    folder = Path(folder)
    vocab_size = write_bert_vocabulary(folder) + 2  # BLIP adds [DEC] and [ENC]
    vision = {"image_size": 224, "patch_size": 32, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    med = {"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 32, "intermediate_size": 64,
           "layer_norm_eps": 1e-12, "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 2,
           "num_hidden_layers": 2, "pad_token_id": 0, "vocab_size": vocab_size, "encoder_width": 32, "add_cross_attention": True}
    (folder / VISION_CONFIG).write_text(json.dumps(vision, indent=2))
    (folder / MED_CONFIG).write_text(json.dumps(med, indent=2))
    torch.manual_seed(0)
    model = ImageRewardModel(vision, med)
    with torch.no_grad():  # spread the weights so that scores differ visibly between images
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    torch.save(ours_to_official(model.state_dict()), folder / CHECKPOINT)
    return folder


def full_size_stable_diffusion(device: str | torch.device, dtype: torch.dtype, cache_dir=None):
    """A DiffusionPrior with SD 2.1-base's architectures and random weights, built in memory.

    For benchmarks: weights do not change the cost. UNet 865M parameters (latent 64x64, cross-attention
    1024, linear projections), the 4-level VAE, and the 23-layer OpenCLIP-H text encoder.
    """
    from ..prior import DiffusionPrior

    unet, vae, text_encoder, tokenizer, scheduler = _full_size_modules(device, dtype)
    return DiffusionPrior(unet, vae, text_encoder, tokenizer, scheduler, model_key="random-sd21-base", cache_dir=cache_dir)


def make_full_size_stable_diffusion(folder: Path, device: str | torch.device = "cuda", dtype: torch.dtype = torch.float16) -> Path:
    """Write :func:`full_size_stable_diffusion`'s random SD 2.1-base to ``folder`` as a diffusers pipeline (~2.6 GB
    in fp16): a ``models.sd`` for workflow runs at full size without the real weights (benchmarks/workflow_jobs.py)."""
    from diffusers import StableDiffusionPipeline

    unet, vae, text_encoder, tokenizer, scheduler = _full_size_modules(device, dtype)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(folder)
    return Path(folder)


def _full_size_modules(device: str | torch.device, dtype: torch.dtype) -> tuple:
    """(unet, vae, text_encoder, tokenizer, scheduler) of SD 2.1-base with random weights (seed 0), eval, no grad."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=64, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
            num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=1024,
            bos_token_id=CLIP_VOCAB_SIZE - 2, eos_token_id=CLIP_VOCAB_SIZE - 1, pad_token_id=0,
        ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    for module in (unet, vae, text_encoder):
        module.to(dtype=dtype).eval().requires_grad_(False)
    return unet, vae, text_encoder, clip_tokenizer(pad_token="!"), scheduler


def make_tiny_pointe(folder: Path) -> Path:
    """Tiny random Point-E checkpoints (width 64, 2 layers, 2 heads) in the official file names, plus a tiny
    open_clip text model (``clip.pt`` with its architecture in ``clip.json``)."""
    import json

    import open_clip

    from ..init.transformer import PointTransformerConfig, TextPointTransformer, UpsamplePointTransformer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    clip_config = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "patch_size": 16, "head_width": 8},
                   "text_cfg": {"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 16, "heads": 2, "layers": 1}}
    (folder / "clip.json").write_text(json.dumps(clip_config))
    clip = open_clip.CLIP(**clip_config)
    torch.save(clip.state_dict(), folder / "clip.pt")
    for name, cls, clip_dim in (("base_40m_textvec.pt", TextPointTransformer, 32), ("upsample_40m.pt", UpsamplePointTransformer, 32)):
        model = cls(PointTransformerConfig(width=64, layers=2, heads=2, clip_dim=clip_dim))
        for param in model.parameters():  # the original zero-inits output_proj; random keeps samples non-trivial
            torch.nn.init.normal_(param, std=0.02) if param.dim() > 1 else None
        torch.save(model.state_dict(), folder / name)
    (folder / "architecture.json").write_text(json.dumps({"heads": 2}))  # heads are not visible in the shapes
    return folder
