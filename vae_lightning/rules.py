"""What values a setting allows, written once: as the annotation of the constructor argument it configures
(``k: Count``, ``binarize: Literal["dynamic", ...]``), the class decorated ``@checked``.

The pre-flight check (:func:`check_section`) reads the annotations from the class's source, so a bad value is
one line before torch is imported; ``@checked`` refuses the same values when a component is built from Python.
One reading per value and process: a value the pre-flight has checked is not checked again by its constructor.
"""

import ast
import functools
import importlib.util
import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from vae_lightning.errors import ConfigError

#: the package whose classes the pre-flight reads from source
PACKAGE = "vae_lightning."
#: arguments the VAE passes to components itself (a config may still give them): not listed as settings
BUILDER_ARGUMENTS = frozenset({"image_shape", "latent_dim", "out_channels", "encode", "pixels", "label_dim"})


@dataclass(frozen=True)
class Rule:
    """What values a setting allows: ``kind`` int / number / choice, with bounds or choices."""

    kind: str
    minimum: float | None = None
    open_minimum: bool = False  # > minimum instead of >=
    maximum: float | None = None
    open_maximum: bool = False  # < maximum instead of <=
    choices: tuple = ()

    def allows(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return value in self.choices
        numeric = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return False
        if self.minimum is not None and (value <= self.minimum if self.open_minimum else value < self.minimum):
            return False
        return self.maximum is None or (value < self.maximum if self.open_maximum else value <= self.maximum)

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None and self.maximum is not None:
            left, right = "(" if self.open_minimum else "[", ")" if self.open_maximum else "]"
            return f"{noun} in {left}{_number(self.minimum)}, {_number(self.maximum)}{right}"
        if self.minimum is not None:
            return f"{noun} {'>' if self.open_minimum else '>='} {_number(self.minimum)}"
        return noun


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


Count = Annotated[int, Rule("int", minimum=1)]
NonNegativeInt = Annotated[int, Rule("int", minimum=0)]
Positive = Annotated[float, Rule("number", minimum=0, open_minimum=True)]
NonNegative = Annotated[float, Rule("number", minimum=0)]
Fraction = Annotated[float, Rule("number", minimum=0, open_minimum=True, maximum=1)]
OpenFraction = Annotated[float, Rule("number", minimum=0, open_minimum=True, maximum=1, open_maximum=True)]
Seed = Annotated[int, Rule("int", minimum=0, maximum=2**32 - 1)]  # what numpy and torch generators take
PLAIN = {int: Rule("int"), float: Rule("number"), bool: Rule("bool")}


def rule_of(annotation: Any) -> Rule | None:
    """The Rule an annotation states: a type above, ``Literal[...]``, ``int`` / ``float``, or ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return next((extra for extra in typing.get_args(annotation)[1:] if isinstance(extra, Rule)), None)
    if origin is Literal:
        return Rule("choice", choices=typing.get_args(annotation))
    if annotation in PLAIN:
        return PLAIN[annotation]
    if origin in (typing.Union, types.UnionType):
        return next((rule for arg in typing.get_args(annotation) if (rule := rule_of(arg))), None)
    return None


def refusal(setting: str, value: Any, rule: Rule) -> ConfigError:
    return ConfigError(f"{setting}={value!r} is not allowed; use {rule.describe()}")


def check_value(setting: str, value: Any, annotation: Any) -> None:
    """ConfigError, one line, if ``value`` (None: not set) is not what ``annotation`` allows."""
    rule = rule_of(annotation)
    if rule is not None and value is not None and not rule.allows(value):
        raise refusal(setting, value, rule)


#: (setting, type, value) of every value the pre-flight has checked in this process
_checked_before: set[tuple[str, type, Any]] = set()


def checked(cls: type) -> type:
    """Class decorator: the constructor refuses any argument its annotation does not allow, naming the setting
    as ``section.name`` (e.g. ``model.objective.k``), the section being the class's ``config_section``."""
    init = cls.__init__
    signature = inspect.signature(init)
    hints = typing.get_type_hints(init, include_extras=True)

    @functools.wraps(init)
    def checked_init(self, *args: Any, **kwargs: Any) -> None:
        for name, value in signature.bind(self, *args, **kwargs).arguments.items():
            setting = f"{cls.config_section}.{name}"
            plain = isinstance(value, (int, float, str, bool))  # what the pre-flight reads from a config
            if name in hints and not (plain and (setting, type(value), value) in _checked_before):
                check_value(setting, value, hints[name])
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls


# ----------------------------------------------------------------------------------------------------------
# The same annotations, read from source (no import) for the pre-flight check


@functools.cache
def _source(module: str) -> ast.Module | None:
    """The parsed source of a module of the package (``find_spec`` imports parent packages only)."""
    if not module.startswith(PACKAGE):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text())


def _definition(module: str, name: str, depth: int = 0) -> tuple[str, ast.AST] | None:
    """(module, node) defining ``name`` as ``module`` sees it: a class, a function or the value of an assignment,
    following ``from X import name`` inside the package; an import from elsewhere is returned as it is."""
    tree = _source(module)
    if tree is None or depth > 8:
        return None
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return module, node
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            return module, node.value
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    found = _definition(node.module, alias.name, depth + 1)
                    return found or (node.module, node)
        if isinstance(node, ast.Import) and any((alias.asname or alias.name) == name for alias in node.names):
            return module, node
    return None


def _signature_of(module: str, name: str, depth: int = 0) -> tuple[str, ast.FunctionDef] | None:
    """The function, or the ``__init__`` of the class (its own or the nearest base's in the package)."""
    found = _definition(module, name)
    if found is None or depth > 8:
        return None
    where, node = found
    if isinstance(node, ast.FunctionDef):
        return where, node
    if not isinstance(node, ast.ClassDef):
        return None
    init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is not None:
        return where, init
    for base in node.bases:
        if isinstance(base, ast.Name) and (inherited := _signature_of(where, base.id, depth + 1)):
            return inherited
    return None


def class_constant(target: str, name: str, depth: int = 0) -> Any:
    """The literal value of a class attribute (``needs_diagonal_posterior: ClassVar[bool] = True``) of the class
    ``target`` names, its own or the nearest base's in the package; None where the source does not say."""
    module, _, class_name = target.rpartition(".")
    found = _definition(module, class_name)
    if found is None or not isinstance(found[1], ast.ClassDef) or depth > 8:
        return None
    where, node = found
    for item in node.body:
        targets = item.targets if isinstance(item, ast.Assign) else [item.target] if isinstance(item, ast.AnnAssign) else []
        if any(getattr(t, "id", None) == name for t in targets) and isinstance(item.value, ast.Constant):
            return item.value.value
    for base in node.bases:
        if isinstance(base, ast.Name) and (value := class_constant(f"{where}.{base.id}", name, depth + 1)) is not None:
            return value
    return None


def module_constant(module: str, name: str) -> Any:
    """The literal value of a module-level constant of the package (``ONLY_FOR = {...}``), read from source;
    None where the source does not say."""
    found = _definition(module, name)
    if found is None or not isinstance(found[1], ast.expr):
        return None
    try:
        return ast.literal_eval(found[1])
    except ValueError:
        return None


def _source_rule(module: str, annotation: ast.expr | None) -> Rule | None:
    """The Rule of an annotation in source; anything it cannot read is left to the constructor."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _source_rule(module, annotation.left) or _source_rule(module, annotation.right)
    if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", None) == "Literal":
        items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        if all(isinstance(item, ast.Constant) for item in items):
            return Rule("choice", choices=tuple(item.value for item in items))
        return None
    if not isinstance(annotation, ast.Name):
        return None
    if annotation.id in ("int", "float", "bool"):
        return PLAIN[{"int": int, "float": float, "bool": bool}[annotation.id]]
    found = _definition(module, annotation.id)
    if found is None:
        return None
    where, node = found
    if where == __name__:  # one of the types above
        return rule_of(globals().get(annotation.id))
    return _source_rule(where, node) if isinstance(node, ast.expr) else None


def _value(node: DictConfig, name: str) -> Any:
    """The setting's plain value, or None when it cannot be resolved yet (``${hydra:...}`` before Hydra runs)."""
    try:
        value = node[name]
    except OmegaConfBaseException:
        return None
    return value if isinstance(value, (int, float, str, bool)) else None


def check_section(section: str, node: DictConfig) -> None:
    """ConfigError, one line, if the section's ``_target_`` (a class or function of the package) does not exist,
    names a setting it does not take, or is given a value its annotation does not allow."""
    module, _, name = str(node._target_).rpartition(".")
    if _definition(module, name) is None:
        where = f"no {name} in {module}" if _source(module) is not None else f"there is no module {module}"
        raise ConfigError(f"{section}._target_={node._target_!r} is not allowed; {where}")
    found = _signature_of(module, name)
    if found is None:  # defined outside the package's source (or not a class): its constructor answers
        return
    where, function = found
    arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
    settings = {arg.arg: arg.annotation for arg in arguments if arg.arg != "self"}
    for key in (str(key) for key in node.keys() if not str(key).startswith("_")):
        if key not in settings:
            if function.args.kwarg is not None:
                continue
            raise ConfigError(
                f"{section}.{key} is not a setting of {name}; its settings are {sorted(set(settings) - BUILDER_ARGUMENTS)}"
            )
        rule = _source_rule(where, settings[key])
        value = _value(node, key)
        if rule is not None and value is not None:
            if not rule.allows(value):
                raise refusal(f"{section}.{key}", value, rule)
            _checked_before.add((f"{section}.{key}", type(value), value))
