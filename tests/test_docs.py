"""The documents a reader starts from: README's length, and every file, module and link that the docs and the
package's docstrings name exists (a rename that forgets its documentation fails here)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "segmentdreamer"
DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted(PACKAGE.rglob("*.py"))
README_MAX_LINES = 220

REPO_PATH = re.compile(r"(?<![\w/.<-])((?:segmentdreamer|tests|workflow|benchmarks|docs|prompts|profiles)/[\w/.-]*\w)(?![{*\w])")
MODULE = re.compile(r"(?<![\w/.])(segmentdreamer(?:\.\w+)+)")
PY_FILE = re.compile(r"`([\w/]+\.py)")
LINK = re.compile(r"\]\(((?!https?:)[^)#\s]+)")
WRITTEN_BY_THE_READER = {"prompts/mine.tsv"}  # README's own-prompts example: a file the reader creates


def _texts() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in DOCUMENTS + SOURCES}


def _module_exists(dotted: str) -> bool:
    """True when some prefix of ``dotted`` (at least package.module) is a module: the rest is an attribute."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        try:
            if importlib.util.find_spec(".".join(parts[:end])) is not None:
                return True
        except ModuleNotFoundError:
            continue
    return False


def test_readme_is_a_newcomers_length():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_every_repository_path_the_docs_name_exists():
    missing = [f"{path.relative_to(ROOT)}: {match.group(1)}" for path, text in _texts().items()
               for match in REPO_PATH.finditer(text)
               if match.group(1) not in WRITTEN_BY_THE_READER and not (ROOT / match.group(1)).exists()]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_every_module_the_docs_name_imports():
    missing = [f"{path.relative_to(ROOT)}: {match.group(1)}" for path, text in _texts().items()
               for match in MODULE.finditer(text) if not _module_exists(match.group(1))]
    assert not missing, "no such module:\n" + "\n".join(missing)


def test_every_python_file_the_docs_name_exists():
    """`trainer.py`, `losses/base.py`: a bare name is some file of the repository; a relative one, a package file."""
    names = {path.name for path in ROOT.rglob("*.py") if ".venv" not in path.parts}
    package_files = [str(path.relative_to(PACKAGE)) for path in SOURCES]
    missing = []
    for path, text in _texts().items():
        for match in PY_FILE.finditer(text):
            name = match.group(1)
            found = ((ROOT / name).exists() or any(f == name or f.endswith("/" + name) for f in package_files)) if "/" in name \
                else name in names
            if not found:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "no such file:\n" + "\n".join(missing)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_resolves(document):
    text = document.read_text(encoding="utf-8")
    broken = [target for target in LINK.findall(text) if not (document.parent / target).exists()]
    assert not broken, f"{document.name} links to missing files: {broken}"


def test_the_checker_sees_a_stale_name(tmp_path):
    """Mutation: a docstring naming a module that does not exist is found."""
    assert not _module_exists("segmentdreamer.no_such_module")
    assert _module_exists("segmentdreamer.prior.base.Prior")
    assert REPO_PATH.findall("see `segmentdreamer/old_place.py`") == ["segmentdreamer/old_place.py"]
