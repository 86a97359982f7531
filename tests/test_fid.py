"""FID: ~0 for identical sets, larger for a shifted set, equal to a SciPy Frechet distance on the same features."""

import numpy as np
import pytest
import scipy.linalg
import torch

from segmentdreamer.evaluate.fid import TINY_NAME, TinyFeatures, compute_fid
from segmentdreamer.models import MissingWeightsError


def write_images(folder, count, seed, shift=0):
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = np.clip(rng.normal(120 + shift, 40, size=(48, 48, 3)), 0, 255).astype(np.uint8)
        iio.imwrite(folder / f"img_{i:03d}.png", image)
    return sorted(folder.glob("*.png"))


def scipy_frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_identical_sets_give_zero_and_a_shift_gives_more(tmp_path):
    real = write_images(tmp_path / "real", 40, seed=0)
    same = compute_fid(real, real, extractor="tiny")
    shifted = compute_fid(real, write_images(tmp_path / "fake", 40, seed=1, shift=60), extractor="tiny")
    assert abs(same["value"]) < 1e-6 and shifted["value"] > 1e-3
    assert same["implementation"] == TINY_NAME and "not FID" in TINY_NAME
    assert shifted["reference_images"] == 40 and shifted["generated_images"] == 40


def test_equals_an_independent_scipy_frechet_distance(tmp_path):
    import imageio.v3 as iio

    real, fake = write_images(tmp_path / "real", 50, seed=2), write_images(tmp_path / "fake", 50, seed=3, shift=30)
    features = TinyFeatures()

    def feats(paths):
        images = torch.from_numpy(np.stack([iio.imread(p) for p in paths])).permute(0, 3, 1, 2)
        return features(images).numpy()

    expected = scipy_frechet(feats(real), feats(fake))
    assert compute_fid(real, fake, extractor="tiny")["value"] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_reference_statistics_are_cached(tmp_path, monkeypatch):
    from segmentdreamer.evaluate import fid

    real, fake = write_images(tmp_path / "real", 20, seed=4), write_images(tmp_path / "fake", 20, seed=5, shift=20)
    fed = []
    original = fid._feed
    monkeypatch.setattr(fid, "_feed", lambda metric, paths, real, batch: (fed.append(real), original(metric, paths, real, batch)))
    first = compute_fid(real, fake, extractor="tiny", cache_dir=tmp_path / "cache")
    assert fed == [True, False] and len(list((tmp_path / "cache").glob("*.pt"))) == 1
    second = compute_fid(real, fake, extractor="tiny", cache_dir=tmp_path / "cache")
    assert fed == [True, False, False]  # the reference set was not read again
    assert second["value"] == pytest.approx(first["value"], rel=1e-12)


def test_missing_inception_weights_name_the_key(tmp_path):
    real = write_images(tmp_path / "real", 2, seed=6)
    with pytest.raises(MissingWeightsError, match=r"models\.inception"):
        compute_fid(real, real, extractor="inception", inception_weights=tmp_path / "none.pth")
