"""One home per default: the evaluation ring, Point-E's sampler steps and the FID reference batch are each defined once
(a dataclass of the library), and the CLI, the workflow's schema and configs, and every other module refer to it.

How it is checked: each fact has its home file and the spellings a second definition would take (a Python default
``name: type = value`` / ``name=value``, an argparse ``default=value``, a YAML ``key: value`` or schema
``default: value``); the code and config files are searched, comments stripped, and only the home may match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _assigned(names: str, value: str) -> str:
    """``name = value`` / ``name: type = value`` / ``name=value`` for any of ``names`` (a regex alternation)."""
    return rf"\b({names})\b\s*(:\s*[^=\n]+)?=\s*{value}(?![\d.])"


FACTS = {
    "the ring's view count": ("segmentdreamer/scene/ring.py",
                              [_assigned("views|count|VIEWS", "120"), r"^\s*views:\s*120\b", r"default[=:]\s*120\b"]),
    "the ring's radius": ("segmentdreamer/scene/ring.py", [_assigned(r"radius|\w*DISTANCE", r"3\.5"), r"\b0\.0, 3\.5, 0\.55\b"]),
    "the ring's field of view": ("segmentdreamer/scene/ring.py", [_assigned("fovx", r"0\.55")]),
    "Point-E's sampler steps": ("segmentdreamer/init/settings.py",
                                [_assigned("steps|pointe_steps", "64"), r"^\s*(pointe_)?steps:\s*64\b", r"default[=:]\s*64\b",
                                 r"steps\s*==\s*64\b"]),
    "the FID reference batch": ("segmentdreamer/evaluate/settings.py",
                                [r"^\s*batch: Annotated\[int, AtLeastOne\] = \d+", r"ref\.add_argument\(\"--batch\"[^\n]*default=\d",
                                 r"^\s{6}batch:\s*\d+", r"batch: \{[^}]*default"]),
}

SOURCES = [*sorted((ROOT / "segmentdreamer").rglob("*.py")), *sorted((ROOT / "workflow").rglob("*.smk")),
           *sorted((ROOT / "workflow").glob("*.yaml")), ROOT / "workflow" / "schemas" / "config.schema.yaml",
           ROOT / "config.yaml", ROOT / "Snakefile"]


def _code_lines(path: Path) -> list[str]:
    """The file's lines with ``#`` comments removed (a rough cut: enough for these spellings)."""
    return [line.split("  #")[0].split("# ")[0] if not line.lstrip().startswith("#") else ""
            for line in path.read_text(encoding="utf-8").splitlines()]


def definitions(patterns: list[str]) -> dict[str, list[str]]:
    """File -> the lines where any pattern matches."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        lines = [line for line in _code_lines(path) if any(re.search(p, line) for p in patterns)]
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    return found


@pytest.mark.parametrize("fact", FACTS)
def test_a_default_is_defined_in_its_home_only(fact):
    home, patterns = FACTS[fact]
    found = definitions(patterns)
    assert list(found) == [home], f"{fact}: defined in {found} (its one home: {home})"


def test_the_checker_sees_a_second_definition(tmp_path, monkeypatch):
    """Mutation: a module that restates the ring's view count or Point-E's steps is found."""
    stray = tmp_path / "stray.py"
    stray.write_text("def render(views: int = 120, steps=64):\n    pass\n", encoding="utf-8")
    monkeypatch.setattr("tests.test_defaults.SOURCES", [stray])
    monkeypatch.setattr("tests.test_defaults.ROOT", tmp_path)
    assert definitions(FACTS["the ring's view count"][1]) == {"stray.py": ["def render(views: int = 120, steps=64):"]}
    assert list(definitions(FACTS["Point-E's sampler steps"][1])) == ["stray.py"]


def test_schema_leaves_the_typed_blocks_defaults_to_the_library():
    """The init and eval blocks' keys have types and ranges in the schema, their defaults in the dataclasses."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))

    def defaults(node: dict, path: str) -> list[str]:
        found = [path] if "default" in node and node.get("type") != "object" else []
        for key, child in (node.get("properties") or {}).items():
            found += defaults(child, f"{path}.{key}")
        return found

    assert defaults(schema["properties"]["eval"], "eval") == []
    assert defaults(schema["properties"]["init"], "init") == []


def test_the_workflow_fills_the_typed_blocks_from_the_library():
    from segmentdreamer.evaluate.settings import EvaluationSettings
    from segmentdreamer.init.settings import InitSettings
    from segmentdreamer.plan.experiment import load_experiment

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    experiment = load_experiment(config)
    assert experiment.evaluation == EvaluationSettings() and experiment.init == InitSettings()
    smoke = load_experiment(yaml.safe_load((ROOT / "workflow" / "smoke.yaml").read_text(encoding="utf-8")))
    assert smoke.evaluation.fid.batch == 8 and smoke.init.steps == 2  # a config's own values win, the rest default
    assert smoke.evaluation.elevation == EvaluationSettings().elevation and smoke.evaluation.fid.seed == 0


def test_config_yaml_restates_no_default_of_the_typed_blocks():
    """config.yaml sets, in its eval and init blocks, only what differs from the library (init.method stays: it is
    the switch users flip, pointe | sphere)."""
    from segmentdreamer.evaluate.settings import EvaluationSettings
    from segmentdreamer.init.settings import InitSettings

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))

    def restated(values: dict, defaults, path: str) -> list[str]:
        found = []
        for key, value in (values or {}).items():
            default = getattr(defaults, key)
            if isinstance(value, dict):
                found += restated(value, default, f"{path}.{key}")
            elif value == default and f"{path}.{key}" != "init.method":
                found.append(f"{path}.{key} = {value!r}")
        return found

    assert restated(config.get("eval"), EvaluationSettings(), "eval") == []
    assert restated(config.get("init"), InitSettings(), "init") == []
