"""Damaged weights are named with their config key (truncated safetensors, a truncated Point-E checkpoint)."""

import re
import shutil

import pytest
import torch


@pytest.mark.parametrize("component", ["unet", "text_encoder"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_safetensors_are_named_with_the_key(tiny_models, tmp_path, component, damage):
    from segmentdreamer.models import CorruptWeightsError
    from segmentdreamer.prior import DiffusionPrior

    sd = tmp_path / "sd"
    shutil.copytree(tiny_models / "sd", sd)
    weights = sorted((sd / component).glob("*.safetensors"))[0]
    data = weights.read_bytes()
    weights.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"<html>404 Not Found</html>" * 50}[damage])
    words = {"empty": "is empty", "truncated": "is truncated", "garbage": "is not a safetensors file"}[damage]
    with pytest.raises(CorruptWeightsError, match=rf"models.sd: {re.escape(str(weights))} {words}"):
        DiffusionPrior.from_pretrained(sd, dtype=torch.float32)


def test_a_truncated_pointe_checkpoint_is_named_with_the_key(tiny_models, tmp_path):
    from segmentdreamer.init import PointE
    from segmentdreamer.models import CorruptWeightsError

    folder = tmp_path / "pointe"
    shutil.copytree(tiny_models / "pointe", folder)
    base = folder / "base_40m_textvec.pt"
    base.write_bytes(base.read_bytes()[:100])
    with pytest.raises(CorruptWeightsError, match=rf"models.pointe: {re.escape(str(base))} cannot be read"):
        PointE.from_folder(folder, tiny_models / "pointe" / "clip.pt")
