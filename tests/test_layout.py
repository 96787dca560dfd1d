"""Imports point down: entry points -> pipelines -> components -> helpers, never the other way."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vae_lightning"

#: layer of each top-level module or subpackage of vae_lightning (higher imports lower, never the reverse)
LAYERS = {
    "train": 3, "evaluate": 3, "sample": 3,
    "pipelines": 2,
    "models": 1, "data": 1, "callbacks": 1, "analysis": 1, "loggers": 1, "report": 1, "checkpoints": 1,
    "utils": 0, "console": 0, "choices": 0, "earlier_versions": 0, "contracts": 0, "errors": 0, "resolvers": 0,
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
    bad.write_text("from vae_lightning.pipelines.fit_and_test import train\n")
    assert LAYERS[unit(next(iter(imports(bad))))] > LAYERS["utils"]
