import os
import re
from pathlib import Path

import pytest
import torch

from segmentdreamer.prior.conditioning import view_conditioning
from tests.reference import ToyPrior, toy_embeddings


def pytest_collection_modifyitems(config, items):
    """GPU tests skip without CUDA (saying so); a test that starts Snakemake is slow (`-m "not slow"`: the quick subset)."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        if function is not None and "slow" not in item.keywords and re.search(r"\bsnakemake\(|\"snakemake\"", inspect.getsource(function)):
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on the H100); this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def toy() -> ToyPrior:
    return ToyPrior()


@pytest.fixture
def toy_cond():
    """Conditioning of 3 views at azimuths 0, 60, -150 degrees (float64)."""
    return view_conditioning(toy_embeddings(), torch.tensor([0.0, 60.0, -150.0]))


@pytest.fixture
def toy_cond_perp_neg():
    return view_conditioning(toy_embeddings(), torch.tensor([0.0, 60.0, -150.0]), perp_neg=True)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny random-weight models, built once per test session (or reused from SEGMENTDREAMER_TINY_MODELS)."""
    from segmentdreamer.testing.tiny_models import make_tiny_models

    given = os.environ.get("SEGMENTDREAMER_TINY_MODELS")
    if given and (Path(given) / "sd" / "model_index.json").exists():
        return Path(given)
    root = tmp_path_factory.mktemp("tiny-models")
    make_tiny_models(root)
    return root


@pytest.fixture(scope="session")
def tiny_prior(tiny_models, tmp_path_factory):
    from segmentdreamer.prior import DiffusionPrior

    return DiffusionPrior.from_pretrained(tiny_models / "sd", dtype=torch.float32, device="cpu",
                                          cache_dir=tmp_path_factory.mktemp("text-cache"))


@pytest.fixture
def tiny_train_config(tiny_models):
    """A few iterations of the default method on the tiny Stable Diffusion, CPU, small renders."""
    from segmentdreamer.config import DensifyConfig, TrainConfig

    config = TrainConfig(prompt="a corgi", iterations=6, views=2, resolution=32, sphere_points=400, checkpoint_every=2,
                         log_every=10, device="cpu", densify=DensifyConfig(start=100))
    config.models.sd = str(tiny_models / "sd")
    return config
