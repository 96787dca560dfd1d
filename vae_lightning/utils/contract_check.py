"""The pre-flight check of component settings, from the components' own contracts and without importing them.

Every config section whose ``_target_`` is a class of this package (``likelihood``, ``model.encoder``, ...,
callbacks too) is checked: the class's source is found (``importlib.util.find_spec``: parent packages only,
never the module itself, so no torch) and its ``__init__`` read with ``ast``: a target that names no class is
refused, a setting the constructor does not take is refused, and a setting annotated with a contract type of
``vae_lightning.contracts`` (``k: Count``) is checked against it. A class whose ``__init__`` cannot be read
(inherited from another module) is left to its constructor (``@checked``), which gives the same one line later;
so are components of other packages.
"""

import ast
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vae_lightning.contracts import CONTRACTS, Rule, refusal
from vae_lightning.errors import ConfigError

#: the package whose classes are read from source
PACKAGE = "vae_lightning."
#: arguments the VAE passes to components itself (a config may still give them): not listed as settings
BUILDER_ARGUMENTS = frozenset({"image_shape", "latent_dim", "out_channels", "encode"})
#: the plain types a reader can check without a contract
PLAIN_RULES = {"int": Rule("int"), "float": Rule("number")}


@cache
def _module_source(module: str) -> ast.Module | None:
    """The parsed source of a module (one parse per module and process: the target check and the constructor
    contract both read it)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text())


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether the module defines or imports ``name`` at its top level."""
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return True
    return False


def _init_of(tree: ast.Module, name: str, depth: int = 0) -> ast.FunctionDef | None:
    """The ``__init__`` of class ``name`` in ``tree``, or of the nearest base class defined in the same file."""
    cls = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name), None)
    if cls is None or depth > 5:
        return None
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return init
    for base in cls.bases:
        if isinstance(base, ast.Name) and (found := _init_of(tree, base.id, depth + 1)):
            return found
    return None


def _rule(annotation: ast.expr | None) -> Rule | None:
    """A contract name, ``int`` / ``float``, ``X | None`` or ``Literal[...]``; anything else: no check."""
    if isinstance(annotation, ast.Name):
        return CONTRACTS.get(annotation.id) or PLAIN_RULES.get(annotation.id)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _rule(annotation.left) or _rule(annotation.right)
    if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", None) == "Literal":
        items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        if all(isinstance(item, ast.Constant) for item in items):
            return Rule("choice", choices=tuple(item.value for item in items))
    return None


def check_target(section: str, target: str) -> None:
    """ConfigError, one line, if a ``_target_`` of this package names no module or nothing in it."""
    module, _, name = target.rpartition(".")
    tree = _module_source(module)
    if tree is None or not _defines(tree, name):
        where = f"no {name} in {module}" if tree is not None else f"there is no module {module}"
        raise ConfigError(f"{section}._target_={target!r} is not allowed; {where}")


@cache
def constructor_contract(target: str) -> tuple[dict[str, Rule | None], bool] | None:
    """(setting -> rule, whether it takes **kwargs) of a component class, read from its source; None if unreadable."""
    module, _, name = target.rpartition(".")
    tree = _module_source(module)
    init = _init_of(tree, name) if tree is not None else None
    if init is None:
        return None
    arguments = init.args.posonlyargs + init.args.args + init.args.kwonlyargs
    settings = {arg.arg: _rule(arg.annotation) for arg in arguments if arg.arg != "self"}
    return settings, init.args.kwarg is not None


def targets(node: Any, path: str = "") -> list[tuple[str, DictConfig]]:
    """(section, node) of every config section under ``node`` whose ``_target_`` is a class of this package."""
    if not isinstance(node, DictConfig):
        return []
    found = []
    if isinstance(node.get("_target_"), str) and node._target_.startswith(PACKAGE):
        found.append((path, node))
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            found += targets(child, f"{path}.{key}" if path else str(key))
    return found


def _value(node: DictConfig, name: str) -> Any:
    """The setting's plain value, or None when it cannot be resolved yet (``${hydra:...}`` before Hydra runs)."""
    try:
        value = node[name]
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    except OmegaConfBaseException:
        return None


def check_components(cfg: DictConfig) -> None:
    """ConfigError, one line, for the first component target or setting its own contract does not allow."""
    for section, node in targets(cfg):
        check_target(section, node._target_)
        contract = constructor_contract(node._target_)
        if contract is None:
            continue
        settings, open_ended = contract
        class_name = node._target_.rpartition(".")[2]
        for name in node.keys():
            if str(name).startswith("_"):
                continue
            value = _value(node, str(name))
            if name not in settings:
                if open_ended:
                    continue
                raise ConfigError(
                    f"{section}.{name} is not a setting of {class_name}; its settings are "
                    f"{sorted(set(settings) - BUILDER_ARGUMENTS)}"
                )
            rule = settings[name]
            if rule is not None and value is not None and not rule.allows(value):
                raise refusal(f"{section}.{name}", value, rule)
