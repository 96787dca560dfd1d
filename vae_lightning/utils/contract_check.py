"""The pre-flight check of component settings, from the components' own contracts and without importing them.

For each component group (``likelihood``, ``model.encoder``, ...) the ``_target_`` class's source is found
(``importlib.util.find_spec``: parent packages only, never the module itself, so no torch) and its ``__init__``
read with ``ast``: a setting the constructor does not take is refused, and a setting annotated with a contract
type of ``vae_lightning.contracts`` (``k: Count``) is checked against it. A component whose source cannot be
read is left to its constructor (``@checked``), which gives the same one line later.
"""

import ast
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_lightning.contracts import CONTRACTS, Rule, refusal
from vae_lightning.errors import ConfigError

#: the config section of each component group
COMPONENT_SECTIONS = ("model.encoder", "model.decoder", "model.prior", "model.objective", "likelihood")
#: arguments the VAE passes to components itself (a config may still give them): not listed as settings
BUILDER_ARGUMENTS = frozenset({"image_shape", "latent_dim", "out_channels", "encode"})
#: the plain types a reader can check without a contract
PLAIN_RULES = {"int": Rule("int"), "float": Rule("number")}


def _class_source(target: str) -> tuple[ast.Module, str] | None:
    module, _, name = target.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text()), name


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


@cache
def constructor_contract(target: str) -> tuple[dict[str, Rule | None], bool] | None:
    """(setting -> rule, whether it takes **kwargs) of a component class, read from its source; None if unreadable."""
    found = _class_source(target)
    init = _init_of(*found) if found else None
    if init is None:
        return None
    arguments = init.args.posonlyargs + init.args.args + init.args.kwonlyargs
    settings = {arg.arg: _rule(arg.annotation) for arg in arguments if arg.arg != "self"}
    return settings, init.args.kwarg is not None


def check_components(cfg: DictConfig) -> None:
    """ConfigError, one line, for the first component setting its contract does not allow."""
    for section in COMPONENT_SECTIONS:
        node = OmegaConf.select(cfg, section, default=None)
        if not isinstance(node, DictConfig) or not isinstance(node.get("_target_"), str):
            continue
        contract = constructor_contract(node._target_)
        if contract is None:
            continue
        settings, open_ended = contract
        values: dict[str, Any] = OmegaConf.to_container(node, resolve=True)
        class_name = node._target_.rpartition(".")[2]
        for name, value in values.items():
            if name.startswith("_"):
                continue
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
