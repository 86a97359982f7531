"""The package's structure: no import cycle and no upward import between its folders, no torch where planning does
not need it, one run layout that the rules never restate, no citation of files outside the repository, a clean lint.
(Extending it from outside: tests/test_plugins.py; typed loss settings: tests/test_loss_settings.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segmentdreamer.plan import layout
from tests import processes

ROOT = Path(__file__).resolve().parents[1]


# -- acceptance 3 and 4: citations and path patterns -----------------------------------------------------------
def test_no_comment_cites_a_file_outside_the_repository():
    offenders = []
    files = [ROOT / name for name in ("Snakefile", "config.yaml", "README.md", "pyproject.toml")]
    for folder in ("segmentdreamer", "workflow", "tests", "benchmarks", "prompts", "profiles", "docs"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".smk", ".yaml", ".rst", ".md", ".tsv"}]
    for path in files:
        if path.name != Path(__file__).name:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if re.search(r"\bSPEC\b|\.\./shared|SPEC\.md", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    cited = set()
    for path in (ROOT / "segmentdreamer").rglob("*.py"):
        cited |= set(re.findall(r"docs/([\w./-]+\.md)", path.read_text(encoding="utf-8")))
    assert cited and all((ROOT / "docs" / name).is_file() for name in cited), cited


def _smk_string_literals() -> list[tuple[str, str]]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    found = []
    for path in files:
        for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', path.read_text(encoding="utf-8")):
            found.append((path.name, literal))
    return found


def test_no_rule_spells_a_path_the_layout_owns():
    """Rules take every path from segmentdreamer/plan/layout.py; only includes, schemas, captions and the conda
    environment (files of the workflow itself, not of its results) are spelled in .smk files."""
    owned = [*layout.RUN_FILES.values(), *layout.TABLE1_FILES.values(), *layout.FIGURE_FILES.values(), "<results>", "<run>",
             "<logs>", "<benchmarks>", "runs/", "seed{", "{prompt_set}", "{variant}", "{prompt_id}", "cache", "tiny_models",
             "torch_extensions", "init/", "reference/", "fid/", "table1/", "figures/", ".ply", ".json", ".tsv", ".log", ".png"]
    workflow_files = re.compile(r"^(workflow/|\.\./)|^config\.yaml$")
    path_like = re.compile(r"^\S*(/|<\w+>|\.\w{2,4}$)\S*$")  # no spaces (not prose), a folder, a path variable or a suffix
    offenders = [(name, literal) for name, literal in _smk_string_literals()
                 if path_like.match(literal) and not workflow_files.search(literal) and any(piece in literal for piece in owned)]
    assert not offenders, offenders


def test_layout_patterns_and_concrete_paths_agree():
    from segmentdreamer.plan.runs import Run

    run = Run("smoke", "corgi", "sctd", 0)
    concrete = layout.Layout("results").run_file("ply", run)
    pattern = layout.RULES.run_file("ply")
    assert concrete == "results/runs/smoke/sctd/corgi/seed0/gaussians.ply"
    assert pattern == "<results>/runs/{prompt_set}/{variant}/{prompt_id}/seed{seed}/gaussians.ply"
    assert pattern.replace("<results>", "results").format(prompt_set="smoke", variant="sctd", prompt_id="corgi", seed=0) == concrete


# -- planning without torch -------------------------------------------------------------------------------------
def test_config_and_planner_import_no_torch():
    code = ("import sys, yaml; import segmentdreamer.config; from segmentdreamer.plan.experiment import load_experiment; "
            "from segmentdreamer.plan.manifests import table1_manifest; "
            "e = load_experiment(yaml.safe_load(open('config.yaml'))); table1_manifest(e, 'dreamfusion40'); "
            "print('torch' in sys.modules)")
    result = processes.run([sys.executable, "-c", code], 120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.fail("ruff is not installed beside this Python (it is in the dev extra: pip install -e '.[dev]')")
    result = subprocess.run([str(ruff), "check", "segmentdreamer", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_lists_no_methods():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    method = schema["properties"]["variants"]["additionalProperties"]["properties"]["method"]
    assert "enum" not in method  # the registry is the one list of methods


def package_imports() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports, function-local imports included (the AST of
    each file, so an import hidden inside a function counts as much as one at the top)."""
    import ast

    package = ROOT / "segmentdreamer"
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c.startswith("segmentdreamer") and c != name}
        modules[name] = found
    return {name: {d for d in deps if d in modules} for name, deps in modules.items()}


def test_no_import_cycle_between_modules_function_local_imports_included():
    graph = package_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dependency in sorted(graph[module]):
            if state.get(dependency) == 1:
                cycle = path[path.index(dependency):] + [dependency] if dependency in path else [module, dependency]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dependency not in state:
                visit(dependency, path + [dependency])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


FOUNDATIONS = ("segmentdreamer.typed", "segmentdreamer.atomic", "segmentdreamer.errors", "segmentdreamer.prompts",
               "segmentdreamer.scene", "segmentdreamer.prior", "segmentdreamer.losses")
"""Folders and modules below the pipeline's steps: the trainer, evaluation, planning and reports build on them."""
ABOVE = ("segmentdreamer.evaluate", "segmentdreamer.report", "segmentdreamer.export", "segmentdreamer.training",
         "segmentdreamer.cli", "segmentdreamer.preflight", "segmentdreamer.doctor",
         "segmentdreamer.viewer", "segmentdreamer.plan.experiment", "segmentdreamer.plan.manifests")


def test_no_foundation_imports_a_step_above_it():
    """e.g. the renderer never imports an evaluation module, the prompt reader never imports the planner (the plan's
    path patterns, plan/layout.py, are facts every layer may read)."""
    upward = [f"{module} -> {dependency}" for module, deps in package_imports().items()
              if module.startswith(FOUNDATIONS) for dependency in deps if dependency.startswith(ABOVE)]
    assert not upward, upward
