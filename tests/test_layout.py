"""Imports point down: entry points -> pipelines -> components -> run life-cycle -> shared pieces, never up."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vae_lightning"

#: layer of each top-level module or subpackage of vae_lightning (higher imports lower, never the reverse)
LAYERS = {
    # entry points, and the command line they share
    "train": 4, "evaluate": 4, "sample": 4, "report": 4, "command_line": 4, "trained_model": 4,
    # what a command does
    "pipelines": 3,
    # components: the model and its parts, the data, callbacks, pictures and sample quality
    "models": 2, "data": 2, "callbacks": 2, "analysis": 2,
    # the run life-cycle: task, status, resume, run files, DDP relaunch; interruption; experiment tracking
    "runs": 1, "interruption": 1, "tracking": 1,
    # small shared pieces
    "console": 0, "errors": 0, "rules": 0, "resolvers": 0, "user_cache": 0,
}


def unit(module: str) -> str:
    """'vae_lightning.models.priors' -> 'models'."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vae_lightning."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("vae_lightning.")}
    return found


def test_every_module_has_a_layer():
    units = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.rglob("*.py")}
    assert units - {"__init__"} == set(LAYERS)


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for module in imports(path):
            if LAYERS[unit(module)] > LAYERS[here]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert upward == []


def test_the_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from vae_lightning.pipelines.fit_and_test import fit_and_test\n")
    assert LAYERS[unit(next(iter(imports(bad))))] > LAYERS["runs"]


def test_the_model_and_the_data_know_nothing_of_runs():
    """models/ and data/ are components a notebook uses alone: no run life-cycle (folders, signals, resume)."""
    found = [f"{path.relative_to(PACKAGE)} imports {module}" for room in ("models", "data")
             for path in (PACKAGE / room).rglob("*.py") for module in imports(path) if unit(module) == "runs"]
    assert found == []
