"""DVC lineage is complete: every source file a stage's command really imports (directly or
through other augflow modules, at the top or inside a function) is among that stage's `deps` in
dvc.yaml, so editing any of them makes `dvc repro` rerun the stage instead of reporting stale
results as up to date."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SRC = REPO / "src"
PKG = SRC / "augflow"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, nodes=None) -> set[str]:
    """augflow modules named by the import statements anywhere in `path` (or in `nodes`)."""
    package = path.relative_to(SRC).with_suffix("").parts[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in (n for top in (nodes or [tree]) for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "augflow"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] +
                                ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            if base.split(".")[0] != "augflow":
                continue
            found.add(base)
            # `from augflow.data import files` imports the submodule files
            found |= {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    return found


def _closure(start: str | list[str]) -> set[Path]:
    """Files of `start` and every augflow module it imports, and their parent packages."""
    todo, seen = list(start) if isinstance(start, list) else [start], set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):     # importing a.b.c runs a/__init__, a/b/__init__
            prefix = ".".join(parts[:i])
            if prefix not in seen and _module_file(prefix):
                seen.add(prefix)
                todo.extend(_imports(_module_file(prefix)))
    return {_module_file(n) for n in seen}


def _stage_entry_module(stage: str) -> str:
    """The module `augflow.cli` imports for the stage (from its `_<stage>` function)."""
    tree = ast.parse((PKG / "cli.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == f"_{stage}")
    return next(n.module for n in ast.walk(fn) if isinstance(n, ast.ImportFrom))


def _stage_files(stage: str) -> set[Path]:
    """What `python -m augflow.cli <stage>` runs: the CLI's module-level imports and the ones
    on its path to the stage (main, run_stage), not the other stages' entry imports."""
    cli = PKG / "cli.py"
    tree = ast.parse(cli.read_text())
    on_path = [n for n in tree.body if not isinstance(n, ast.FunctionDef)
               or n.name in ("main", "run_stage", "_pin_torch_threads")]
    # main's own lazy import serves `lowdata`, not a stage
    start = sorted(m for m in _imports(cli, on_path) if m != "augflow.lowdata")
    return {cli} | _closure(start) | _closure(_stage_entry_module(stage))


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_imported_source_file_is_a_dep_of_its_stage(stage):
    spec = STAGES[stage]
    assert spec["cmd"] == f"python -m augflow.cli {stage}"
    needed = _stage_files(stage)
    deps = [REPO / d for d in spec["deps"]]
    missing = sorted(str(f.relative_to(REPO)) for f in needed
                     if not any(f == d or d in f.parents for d in deps))
    assert missing == [], f"{stage} imports files its deps in dvc.yaml do not name: {missing}"


def test_the_closure_sees_function_level_and_submodule_imports():
    # the test's own reading of imports, on facts that hold in this code base
    cli = {f.relative_to(PKG).as_posix() for f in _stage_files("validate")}
    assert {"cli.py", "config.py", "errors.py", "io.py", "paths.py", "__init__.py"} <= cli
    assert "stages/track.py" not in cli      # imported inside _track only: not by validate
    assert _stage_entry_module("track") == "augflow.stages.track"
    ev = {f.relative_to(PKG).as_posix() for f in _closure("augflow.stages.evaluate")}
    assert {"evaluation/stats.py", "stages/__init__.py"} <= ev


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(f): f for f in sorted(PKG.rglob("*.py"))}
# Above the stages: the CLI and the low-data study, which runs a chain of stages.
ABOVE_STAGES = {"augflow.cli", "augflow.lowdata"}


def _edges(name: str) -> set[str]:
    """augflow modules `name` imports anywhere in its file (top level or inside functions)."""
    return {m for m in _imports(MODULES[name]) if m in MODULES and m != name}


def test_stages_never_import_each_other_and_the_library_never_imports_a_stage():
    bad = []
    for name in MODULES:
        stages = {m for m in _edges(name) if m.startswith("augflow.stages.")}
        if name.startswith("augflow.stages.") or name in ABOVE_STAGES:
            if name.startswith("augflow.stages."):
                bad += [f"{name} -> {m}" for m in stages]
        else:
            bad += [f"{name} -> {m}" for m in stages | (_edges(name) & ABOVE_STAGES)]
    assert bad == [], f"imports against the layers: {bad}"


def test_no_import_cycles():
    """Counting imports inside functions too: a lazy import hides a cycle, it does not remove it."""
    graph = {name: _edges(name) for name in MODULES}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_has_one_documented_entry(stage):
    tree = ast.parse((PKG / "stages" / f"{stage}.py").read_text())
    entry = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == f"run_{stage}"]
    assert len(entry) == 1 and ast.get_docstring(entry[0]), f"run_{stage} needs a docstring"
    assert "paths" in [a.arg for a in entry[0].args.args]
