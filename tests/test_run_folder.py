"""A run folder's files on real disks: a full disk reported as such, two writers of one folder or two checkouts of one
results folder refused, outputs written atomically with the completion marker last."""

import json
import shutil

import numpy as np
import pytest
import torch

from segmentdreamer.config import ConfigError, TrainConfig
from segmentdreamer.plan.layout import RUN_FILES
from segmentdreamer.training.trainer import CHECKPOINT, Trainer


@pytest.fixture
def config(tiny_train_config) -> TrainConfig:
    return tiny_train_config


def test_a_full_disk_is_reported_as_such(config, tiny_prior, tmp_path, monkeypatch):
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.run(stop_after=1)

    def disk_full(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*last.pt: \d+ MB free on the disk holding"):
        trainer.checkpoint(4)
    monkeypatch.undo()
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 2  # the previous one is intact


def test_two_writers_of_one_run_folder_are_refused(config, tiny_prior, tmp_path):
    from segmentdreamer.atomic import exclusive_lock

    with exclusive_lock(tmp_path / ".lock"):
        with pytest.raises(RuntimeError, match="is being trained by pid"):
            Trainer(config, tmp_path, prior=tiny_prior).run()


def test_two_checkouts_do_not_share_a_results_folder(tmp_path):
    from segmentdreamer.plan.claim import claim_results_folder

    first, second = tmp_path / "checkout-a", tmp_path / "checkout-b"
    first.mkdir(), second.mkdir()
    claim_results_folder(tmp_path / "results", first)
    claim_results_folder(tmp_path / "results", first)  # the owner may come back
    with pytest.raises(ConfigError, match=r"pathvars.results: .* belongs to the workflow in .*checkout-a"):
        claim_results_folder(tmp_path / "results", second)
    shutil.rmtree(first)  # a checkout that is gone for good hands the folder over
    claim_results_folder(tmp_path / "results", second)


def test_resolved_outputs_are_written_atomically_and_finished_last(config, tiny_prior, tmp_path):
    Trainer(config, tmp_path, prior=tiny_prior).run()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"gaussians.ply", "timing.json", "finished.json"} <= names and not any(".tmp" in n for n in names)
    finished = tmp_path / RUN_FILES["finished"]
    assert finished.stat().st_mtime_ns >= (tmp_path / RUN_FILES["ply"]).stat().st_mtime_ns
    assert json.loads(finished.read_text())["finite"] is True
    assert np.isfinite(json.loads((tmp_path / RUN_FILES["timing"]).read_text())["minutes"])
