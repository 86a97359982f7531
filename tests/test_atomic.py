"""atomic_target: the file is replaced only when the block succeeds; no temporary file is left either way."""

import pytest

from segmentdreamer.atomic import atomic_target


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "sub" / "state.pt"
    with atomic_target(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".pt"
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_target(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.pt"]
