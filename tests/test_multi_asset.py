"""Several assets in one process sharing a prior (segmentdreamer/training/multi_asset.py): batching returns each caller
its own rows, and batched training equals training alone up to the UNet's rounding."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from segmentdreamer.config import ConfigError, TrainConfig
from segmentdreamer.scene.gaussians import load_ply
from segmentdreamer.training.multi_asset import BatchingPrior, train_assets
from segmentdreamer.training.trainer import Trainer


class RecordingPrior:
    """predict_noise = 2 x + t (per sample) + the embedding's mean; records each call's batch size."""

    def __init__(self):
        self.calls: list[int] = []

    def predict_noise(self, x, t, embedding):
        self.calls.append(x.shape[0])
        return 2 * x + t.reshape(-1, 1).to(x.dtype) + embedding.mean(dim=(1, 2))[:, None]


def test_batched_calls_return_each_caller_its_own_rows_and_wait_for_every_live_member():
    """Three members make 2, 3 and 3 calls of 2, 3 and 1 samples: two full batches of all three, then one of
    the two still training; a grad-enabled call bypasses the batch."""
    inner = RecordingPrior()
    shared = BatchingPrior(inner, members=3)
    results: dict[int, list] = {}

    def member(index: int, calls: int, size: int) -> None:
        out = []
        for call in range(calls):
            x = torch.full((size, 1), float(10 * index + call))
            with torch.no_grad():
                out.append((x, shared.predict_noise(x, 100 * index + call, torch.full((size, 2, 2), float(index)))))
        results[index] = out
        shared.leave()

    threads = [threading.Thread(target=member, args=args) for args in ((0, 2, 2), (1, 3, 3), (2, 3, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert inner.calls == [6, 6, 4]  # 2 + 3 + 1, twice; then members 1 and 2
    for index, out in results.items():
        for call, (x, eps) in enumerate(out):
            torch.testing.assert_close(eps, 2 * x + (100 * index + call) + float(index), rtol=0, atol=0)
    x = torch.ones(2, 1, requires_grad=True)
    assert shared.predict_noise(x, 5, torch.zeros(2, 2, 2)).requires_grad and inner.calls[-1] == 2


def test_members_that_left_to_wait_elsewhere_rejoin_and_batch_together_again():
    """A member that waits outside the UNet (a round barrier) leaves, so nobody waits for it; after ``rejoin`` the
    next calls of both members run as one batch again."""
    inner = RecordingPrior()
    shared = BatchingPrior(inner, members=2)
    shared.leave()
    with torch.no_grad():
        shared.predict_noise(torch.zeros(3, 1), 0, torch.zeros(3, 2, 2))  # alone: the other member left
    shared.leave()
    shared.rejoin(2)

    @torch.no_grad()  # grad mode is per thread
    def call(size: int) -> None:
        shared.predict_noise(torch.zeros(size, 1), 0, torch.zeros(size, 2, 2))

    threads = [threading.Thread(target=call, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert inner.calls == [3, 3] and shared.members == 2


def config(tiny_models, **changes) -> TrainConfig:
    settings = dict(prompt="a corgi", method="sctd", iterations=6, views=2, resolution=32, sphere_points=800,
                    checkpoint_every=3, log_every=3, device="cpu")
    settings.update(changes)
    cfg = TrainConfig(**settings)
    cfg.models.sd = str(tiny_models / "sd")
    return cfg


@pytest.mark.slow
def test_two_assets_batched_train_what_each_trains_alone(tiny_models, tmp_path):
    """SCTD (3-4 UNet calls per iteration) and SDS (1) with different prompts and seeds, batched: each ends
    where it ends alone, up to float32 rounding of the batched UNet (tiny random models, 6 iterations)."""
    configs = [config(tiny_models, seed=0), config(tiny_models, method="sds", prompt="a fox", seed=1)]
    errors = train_assets(configs, [tmp_path / "a", tmp_path / "b"])
    assert errors == [None, None]
    for cfg, name in zip(configs, "ab"):
        Trainer(cfg, tmp_path / f"alone_{name}").run()
        batched, alone = load_ply(tmp_path / name / "gaussians.ply"), load_ply(tmp_path / f"alone_{name}" / "gaussians.ply")
        for key in ("means", "scales", "opacities", "sh0"):
            torch.testing.assert_close(batched[key], alone[key], rtol=0, atol=1e-3)  # measured: 1.2e-4 at most
        assert (tmp_path / name / "finished.json").is_file()
    moved = load_ply(tmp_path / "a" / "gaussians.ply")["sh0"] - load_ply(tmp_path / "alone_b" / "gaussians.ply")["sh0"]
    assert moved.abs().max() > 1e-3  # the two assets are different runs


def test_assets_of_one_job_must_share_the_prior_settings(tiny_models, tmp_path):
    with pytest.raises(ConfigError, match="prior_dtype: assets trained in one job share one prior"):
        train_assets([config(tiny_models), config(tiny_models, prior_dtype="float16")], [tmp_path / "a", tmp_path / "b"])
    known = config(tiny_models)
    known.models.sd = "target-scene:totem"
    with pytest.raises(ConfigError, match="known-answer prior"):
        train_assets([known, known], [tmp_path / "c", tmp_path / "d"])


def test_a_compiled_shared_prior_takes_every_batch_size_in_one_graph(tiny_models, tmp_path, monkeypatch):
    """With compile_prior on, a job of several assets compiles the UNet for a symbolic batch size (its batches are
    sums of the live assets' call sizes: more sizes than torch recompiles for); a job of one, for static shapes."""
    from segmentdreamer.prior import DiffusionPrior
    from segmentdreamer.training import trainer

    calls = []
    monkeypatch.setattr(trainer, "compiles_prior", lambda config, device: True)
    monkeypatch.setattr(DiffusionPrior, "compile", lambda self, unet_mode="default", dynamic_batch=False: calls.append(dynamic_batch))
    assert train_assets([config(tiny_models, iterations=1), config(tiny_models, iterations=1, seed=1)],
                        [tmp_path / "a", tmp_path / "b"]) == [None, None]
    assert train_assets([config(tiny_models, iterations=1)], [tmp_path / "c"]) == [None]
    assert calls == [True, False]


def test_the_cli_trains_several_assets_in_one_process_and_checks_its_arguments(tiny_models, tmp_path, caplog):
    import yaml

    from segmentdreamer.cli import main

    arguments = []
    for name, method in (("a", "sds"), ("b", "ism")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"prompt": f"a {name}", "method": method, "iterations": 2, "views": 1, "resolution": 32,
                                        "sphere_points": 300, "checkpoint_every": 2, "device": "cpu",
                                        "models": {"sd": str(tiny_models / "sd")}}), encoding="utf-8")
        arguments += ["--config", str(path), "--out", str(tmp_path / name)]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    caplog.set_level("INFO")  # the CLI's own level in its process (pytest's root logger stops at WARNING)
    assert main(["train", *arguments, "--log", str(logs[0]), "--log", str(logs[1])]) == 0
    for name, other, log in (("a", "b", logs[0]), ("b", "a", logs[1])):
        assert (tmp_path / name / "finished.json").is_file()
        assert json.loads((tmp_path / name / "timing.json").read_text())["assets_in_process"] == 2
        text = log.read_text(encoding="utf-8")  # each asset's own records, none of the other's
        assert f"asset {'ab'.index(name) + 1} of 2" in text and f"wrote {tmp_path / name}" in text
        assert str(tmp_path / other) not in text
    assert main(["train", *arguments[:6]]) == 2  # two configs, one --out: refused, naming both counts
    assert main(["train", *arguments, "--log", str(logs[0])]) == 2  # two configs, one --log


@pytest.mark.slow
def test_a_diverging_asset_ends_alone_and_the_retry_costs_the_finished_one_nothing(tiny_models, tmp_path, caplog):
    """One asset of two diverges: it fails with TrainingDiverged (no result), the other trains to the end. Run
    again with resume (what a rerun of the failed workflow job does): the finished asset resumes at its last
    iteration and writes the same .ply, the diverged one fails at once."""
    from segmentdreamer.config import OptimConfig
    from segmentdreamer.training.divergence import TrainingDiverged

    configs = [config(tiny_models, method="sds", seed=0), config(tiny_models, method="sds", seed=1, optim=OptimConfig(means_lr=(1e30, 1e30)))]
    folders = [tmp_path / "good", tmp_path / "bad"]
    first = train_assets(configs, folders)
    assert first[0] is None and isinstance(first[1], TrainingDiverged)
    assert not (folders[1] / "finished.json").exists() and (folders[0] / "finished.json").is_file()
    ply = (folders[0] / "gaussians.ply").read_bytes()
    (folders[0] / "gaussians.ply").unlink()  # Snakemake removes a failed job's outputs
    (folders[0] / "finished.json").unlink()
    caplog.set_level("INFO")  # as in the CLI's process
    again = train_assets(configs, folders, resume=True, log_files=[tmp_path / "good.log", tmp_path / "bad.log"])
    assert again[0] is None and isinstance(again[1], TrainingDiverged) and "already diverged" in str(again[1])
    assert (folders[0] / "gaussians.ply").read_bytes() == ply
    assert "at iteration 6" in (tmp_path / "good.log").read_text(encoding="utf-8")
