"""ImageReward on transformers' BLIP equals the reference package (image-reward 1.5) on its own fixtures."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from segmentdreamer.evaluate.image_reward import (
    PUBLISHED_MEAN,
    PUBLISHED_STD,
    ImageRewardScorer,
    official_to_ours,
    ours_to_official,
)
from segmentdreamer.evaluate.views import score_views
from segmentdreamer.models import MissingWeightsError
from segmentdreamer.scene.render_folder import mark_views_complete

FIXTURES = Path(__file__).parent / "data" / "image_reward"


@pytest.fixture(scope="module")
def package_record():
    record = json.loads((FIXTURES / "scores.json").read_text(encoding="utf-8"))
    images = np.stack([iio.imread(FIXTURES / name) for name in record["images"]])
    return record, images


@pytest.fixture(scope="module")
def fixture_scorer():
    return ImageRewardScorer.from_pretrained(FIXTURES)


@pytest.fixture(scope="module")
def tiny_scorer(tiny_models):
    return ImageRewardScorer.from_pretrained(tiny_models / "image_reward")


def test_scores_equal_the_package_on_its_fixtures(fixture_scorer, package_record):
    record, images = package_record
    ours = torch.stack([fixture_scorer.score(images, prompt) for prompt in record["prompts"]])
    for key in ("score", "inference_rank"):  # the package's single-image and batched entry points
        torch.testing.assert_close(ours, torch.tensor(record[key]), rtol=1e-5, atol=1e-4)
    assert ours.std() > 1.0  # the fixture separates images and prompts, so a wiring error cannot hide


def test_normalisation_constants_are_the_published_ones(fixture_scorer, package_record):
    assert (PUBLISHED_MEAN, PUBLISHED_STD) == (0.16717362830052426, 1.0333394966054072)
    record, images = package_record
    model, scorer = fixture_scorer.model, fixture_scorer
    with torch.no_grad():  # reward = (head(text [CLS]) - mean) / std, recomputed from the head's raw output
        from segmentdreamer.evaluate.image_reward import preprocess

        tokens = scorer.tokenizer([record["prompts"][0]] * 3, padding="max_length", max_length=35, return_tensors="pt")
        image_tokens = model.vision(pixel_values=preprocess(images)).last_hidden_state
        cls = model.text(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                         encoder_hidden_states=image_tokens).last_hidden_state[:, 0]
        raw = model.mlp(cls)
    torch.testing.assert_close(scorer.score(images, record["prompts"][0]), (raw - PUBLISHED_MEAN) / PUBLISHED_STD)


def test_key_map_round_trips_and_rejects_foreign_checkpoints():
    official = torch.load(FIXTURES / "ImageReward.pt", weights_only=True)
    kept = {k: v for k, v in official.items() if not k.startswith(("blip.vision_proj", "blip.text_proj")) and "position_ids" not in k}
    assert ours_to_official(official_to_ours(official)).keys() == kept.keys()
    with pytest.raises(KeyError, match="unexpected keys"):
        official_to_ours({**official, "blip.text_decoder.cls.weight": torch.zeros(1)})


def test_tiny_model_is_reproducible_and_range_checked(tiny_models, tiny_scorer):
    images = (torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    first = tiny_scorer.score(images, 'a "corgi" / café; $(rm -rf ~)')
    again = ImageRewardScorer.from_pretrained(tiny_models / "image_reward").score(images, 'a "corgi" / café; $(rm -rf ~)')
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert first.shape == (2,) and first.dtype == torch.float32 and torch.isfinite(first).all()
    assert (first[0] - first[1]).abs() > 1e-3  # different images, different rewards
    as_uint8 = (images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    torch.testing.assert_close(first, tiny_scorer.score(as_uint8, 'a "corgi" / café; $(rm -rf ~)'), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tiny_scorer.score(images * 255, "a corgi")


def test_missing_files_name_the_config_key(tmp_path):
    with pytest.raises(MissingWeightsError, match="models.image_reward"):
        ImageRewardScorer.from_pretrained(tmp_path / "absent")
    (tmp_path / "partial").mkdir()
    with pytest.raises(MissingWeightsError, match="med_config.json"):
        ImageRewardScorer.from_pretrained(tmp_path / "partial")


def test_score_views_gives_the_per_run_record(tiny_scorer, tmp_path):
    for index in range(3):
        iio.imwrite(tmp_path / f"view_{index:03d}.png", np.full((32, 32, 3), 40 * index, dtype=np.uint8))
    mark_views_complete(tmp_path, 3)
    record = score_views(tiny_scorer, tmp_path, "an imperial crown", batch=2)
    assert record["views"] == ["view_000.png", "view_001.png", "view_002.png"]
    assert record["mean"] == pytest.approx(np.mean(record["scores"]))
