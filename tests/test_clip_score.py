"""CLIP score equals a direct computation from the model's own features; wrong image ranges are caught."""

import numpy as np
import pytest
import torch

from segmentdreamer.evaluate.clip_score import ClipScorer
from segmentdreamer.evaluate.views import score_views
from segmentdreamer.scene.render_folder import mark_views_complete


@pytest.fixture(scope="module")
def scorer(tiny_models):
    return ClipScorer.from_pretrained(tiny_models / "clip")


def test_score_equals_direct_computation(scorer):
    images = (torch.rand(3, 224, 224, 3, generator=torch.Generator().manual_seed(0)) * 255).round().to(torch.uint8).numpy()
    model, processor = scorer.model, scorer.processor
    with torch.no_grad():
        mean = torch.tensor(processor.image_processor.image_mean).reshape(1, 3, 1, 1)
        std = torch.tensor(processor.image_processor.image_std).reshape(1, 3, 1, 1)
        pixels = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - mean) / std  # 224^2: no resize or crop
        image = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        tokens = processor.tokenizer(["a corgi"], return_tensors="pt", padding=True)
        text = model.text_projection(model.text_model(**tokens).pooler_output)
    expected = 100 * torch.nn.functional.cosine_similarity(image, text)
    torch.testing.assert_close(scorer.score(images, "a corgi"), expected, rtol=1e-4, atol=1e-4)


def test_float_images_in_0_1_match_uint8_and_0_255_floats_are_rejected(scorer):
    floats = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    as_uint8 = (floats.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    torch.testing.assert_close(scorer.score(floats, "a cat"), scorer.score(as_uint8, "a cat"), rtol=0, atol=0.05)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scorer.score(floats * 255.0, "a cat")


def test_score_views_reads_a_render_folder(scorer, tmp_path):
    import imageio.v3 as iio

    for i in range(3):
        iio.imwrite(tmp_path / f"view_{i:03d}.png", np.full((32, 32, 3), 40 * i, dtype=np.uint8))
    with pytest.raises(FileNotFoundError, match="complete.json"):  # a folder no render finished is never scored
        score_views(scorer, tmp_path, "a corgi")
    mark_views_complete(tmp_path, 3)
    record = score_views(scorer, tmp_path, "a corgi")
    assert len(record["scores"]) == 3 and record["mean"] == pytest.approx(float(np.mean(record["scores"])))
    with pytest.raises(FileNotFoundError, match="the render job did not finish"):
        score_views(scorer, tmp_path / "empty", "a corgi")


def test_cli_evaluate_with_the_clip_metric(tiny_models, tmp_path):
    import json

    import imageio.v3 as iio

    from segmentdreamer.cli import main

    views = tmp_path / "views"
    views.mkdir()
    for i in range(2):
        iio.imwrite(views / f"view_{i:03d}.png", np.full((32, 32, 3), 100 + i, dtype=np.uint8))
    mark_views_complete(views, 2)
    prompts = tmp_path / "p.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\ncrown\tA DSLR photo of the Imperial State Crown of England\ta crown.\n")
    args = ["evaluate", "--metric", "clip", "--views", str(views), "--prompts", str(prompts), "--prompt-id", "crown",
            "--device", "cpu", "--model", f"clip={tiny_models / 'clip'}", "--out", str(tmp_path / "clip.json")]
    assert main(args) == 0
    record = json.loads((tmp_path / "clip.json").read_text())
    assert record["prompt_id"] == "crown" and record["metric"] == "clip" and len(record["scores"]) == 2
    assert record["mean"] == pytest.approx(float(np.mean(record["scores"])))
    assert main(args[:-4] + ["--model", f"clip={tmp_path / 'no-model'}", "--out", str(tmp_path / "x.json")]) == 2
    assert main(args[:-4] + ["--out", str(tmp_path / "x.json")]) == 2  # models.clip not given: named, exit 2
    assert not (tmp_path / "x.json").exists()


class KnownFeatures(ClipScorer):
    """CLIP with chosen features: prompt i is the unit vector e_i, each image a vector given by the test."""

    def __init__(self, images: torch.Tensor, prompts: list[str]):
        self.images, self.prompts = images, prompts

    def image_features(self, images):
        return torch.nn.functional.normalize(self.images[: len(images)], dim=-1)

    def text_features(self, prompts):
        return torch.eye(len(self.prompts))[[self.prompts.index(p) for p in prompts]]


def test_r_precision_counts_views_whose_own_prompt_ranks_first_and_ties_miss(tmp_path):
    import imageio.v3 as iio

    prompts = ["a corgi", "a cat", "a dog"]
    features = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.5, 0.5, 0.0]])  # hit, hit, miss, tie
    for i in range(4):
        iio.imwrite(tmp_path / f"view_{i:03d}.png", np.zeros((8, 8, 3), dtype=np.uint8))
    mark_views_complete(tmp_path, 4)
    record = score_views(KnownFeatures(features, prompts), tmp_path, "a corgi", batch=4, distractors=["a cat", "a dog"])
    assert record["r_precision"] == 0.5 and record["retrieval_candidates"] == 3
    expected = 100 * torch.nn.functional.normalize(features, dim=-1)[:, 0]
    np.testing.assert_allclose(record["scores"], expected.numpy(), rtol=1e-6)
    assert "r_precision" not in score_views(KnownFeatures(features, prompts), tmp_path, "a corgi", batch=4)
