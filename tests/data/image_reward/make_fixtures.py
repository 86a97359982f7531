"""Generate the ImageReward fixtures with the reference package (PyPI ``image-reward`` 1.5).

Our scorer (``segmentdreamer/evaluate/image_reward.py``) re-implements ImageReward v1.0 on transformers'
BLIP modules. These fixtures prove it equal to the package: a tiny random-weight ImageReward is built
from the package's own classes (its BLIP ViT, its BERT with cross-attention, its MLP head), saved in the
official ``ImageReward.pt`` key layout, and scored by the package's own ``ImageReward.score`` and
``inference_rank``. ``tests/test_image_reward.py`` loads the same files with our code and compares.

Run once, from the repository root, with the package installed beside ours (it does not import under
transformers 5 as published; the shims below are the smallest set that lets its modules run, and
they live only in this script)::

    pip install --no-deps --target /tmp/irsite image-reward==1.5 fairscale "setuptools<81"
    PYTHONPATH=/tmp/irsite python tests/data/image_reward/make_fixtures.py

Writes beside this file: ``ImageReward.pt``, ``med_config.json``, ``vision_config.json``, ``vocab.txt``,
``tokenizer_config.json``, ``images/*.png`` and ``scores.json``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segmentdreamer.testing.tiny_models import write_bert_vocabulary

HERE = Path(__file__).resolve().parent
PROMPTS = [
    "a DSLR photo of a corgi wearing a beret",
    'a "quoted" crown; rm -rf / $(echo café) 🍄',
    "an imperial crown",
]
VISION = {"image_size": 224, "patch_size": 16, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
TEXT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 40}


def install_shims(tokenizer_folder: Path) -> None:
    """Let image-reward 1.5's modules import and run under transformers 5 without touching the hub."""
    import transformers
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    modeling_utils.apply_chunking_to_forward = pytorch_utils.apply_chunking_to_forward
    modeling_utils.prune_linear_layer = pytorch_utils.prune_linear_layer
    modeling_utils.find_pruneable_heads_and_indices = lambda *args: (_ for _ in ()).throw(NotImplementedError)

    # Import the package's submodules without running its __init__ (which pulls in datasets, clip, ReFL).
    root = Path(importlib.util.find_spec("ImageReward").submodule_search_locations[0])
    for name, path in [("ImageReward", root), ("ImageReward.models", root / "models"),
                       ("ImageReward.models.BLIP", root / "models" / "BLIP")]:
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package

    class LocalBertTokenizer(transformers.BertTokenizer):
        """bert-base-uncased's place taken by the tiny vocabulary; keeps BLIP's two added tokens."""

        @classmethod
        def from_pretrained(cls, *_args, **_kwargs):
            tokenizer = transformers.BertTokenizer.from_pretrained(str(tokenizer_folder))
            tokenizer.add_special_tokens({"bos_token": "[DEC]"})
            tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
            tokenizer.additional_special_tokens_ids = tokenizer.convert_tokens_to_ids(["[ENC]"])
            return tokenizer

    import ImageReward.models.BLIP.blip as blip
    import ImageReward.models.BLIP.med as med

    blip.BertTokenizer = LocalBertTokenizer
    med.BertModel.invert_attention_mask = lambda self, mask: (1.0 - mask[:, None, None, :].float()) * -10000.0
    med.BertModel.get_head_mask = lambda self, head_mask, layers: [None] * layers
    med.BertModel.all_tied_weights_keys = {}  # nothing is tied; transformers 5 expects the attribute


def tiny_image_reward():
    """The package's ImageReward with a tiny ViT and BERT in place of ViT-L and BERT-base."""
    from ImageReward.ImageReward import MLP, ImageReward, _transform
    from ImageReward.models.BLIP.blip import init_tokenizer
    from ImageReward.models.BLIP.med import BertConfig, BertModel
    from ImageReward.models.BLIP.vit import VisionTransformer

    torch.manual_seed(0)
    config = BertConfig.from_json_file(str(HERE / "med_config.json"))
    config.encoder_width = VISION["hidden_size"]
    container = torch.nn.Module()
    container.visual_encoder = VisionTransformer(
        img_size=VISION["image_size"], patch_size=VISION["patch_size"], embed_dim=VISION["hidden_size"],
        depth=VISION["num_hidden_layers"], num_heads=VISION["num_attention_heads"])
    container.tokenizer = init_tokenizer()
    container.text_encoder = BertModel(config=config, add_pooling_layer=False)
    container.vision_proj = torch.nn.Linear(VISION["hidden_size"], 16)
    container.text_proj = torch.nn.Linear(TEXT["hidden_size"], 16)

    model = ImageReward.__new__(ImageReward)
    torch.nn.Module.__init__(model)
    model.device, model.blip, model.preprocess = "cpu", container, _transform(224)
    model.mlp = MLP(TEXT["hidden_size"])
    model.mean, model.std = 0.16717362830052426, 1.0333394966054072
    with torch.no_grad():  # spread the random weights so scores differ visibly between inputs
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


def write_med_config(vocab_size: int) -> None:
    config = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "model_type": "bert",
              "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": vocab_size, "encoder_width": 768,
              "add_cross_attention": True, **TEXT}
    (HERE / "med_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_images() -> list[Image.Image]:
    """Three 64x64 RGB images: a gradient, seeded noise, a disc (PNG, upsampled by the preprocessing)."""
    (HERE / "images").mkdir(exist_ok=True)
    y, x = np.mgrid[0:64, 0:64] / 63.0
    arrays = [np.stack([x, y, 1 - x], -1), np.random.default_rng(0).random((64, 64, 3)),
              np.repeat(((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1)[..., None], 3, -1) * [0.9, 0.7, 0.1]]
    images = []
    for index, array in enumerate(arrays):
        image = Image.fromarray((array * 255).round().astype(np.uint8))
        image.save(HERE / "images" / f"view_{index:03d}.png")
        images.append(image)
    return images


def main() -> None:
    words = ("a", "an", "of", "photo", "dslr", "corgi", "crown", "imperial", "wearing", "beret", "the")
    vocab_size = write_bert_vocabulary(HERE, words) + 2  # + BLIP's [DEC] and [ENC]
    write_med_config(vocab_size)
    (HERE / "vision_config.json").write_text(json.dumps(VISION, indent=2) + "\n")
    install_shims(HERE)
    model = tiny_image_reward()
    torch.save(model.state_dict(), HERE / "ImageReward.pt")
    images = write_images()
    with torch.no_grad():
        single = [[model.score(prompt, image) for image in images] for prompt in PROMPTS]
        ranked = [model.inference_rank(prompt, images)[1] for prompt in PROMPTS]
    record = {"package": "image-reward 1.5", "prompts": PROMPTS,
              "images": [f"images/view_{i:03d}.png" for i in range(len(images))],
              "score": single, "inference_rank": ranked}
    (HERE / "scores.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(record, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
