"""Argument contracts of components, written once as annotations and read twice.

A component annotates its constructor's settings with the types below (``k: Count``, ``ratio: Fraction``,
``binarize: Binarize``) and is decorated ``@checked``; its base class names its config section
(``Objective.config_section = "model.objective"``). Then

* building it checks every argument against its annotation (:func:`checked`), and
* the pre-flight check reads the same annotations from the component's *source* (``utils/contract_check.py``,
  no torch import), so a bad value of any component, a new one included, is one line in about a second.

Plain Python: imported by the pre-flight check before torch.
"""

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from vae_lightning.choices import ACTIVATIONS, BINARIZE_MODES, MEAN_ACTIVATIONS, SIGMA_MODES
from vae_lightning.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What values a setting allows: ``kind`` int / number / choice, with bounds or choices."""

    kind: str
    minimum: float | None = None
    open_minimum: bool = False  # > minimum instead of >=
    maximum: float | None = None
    choices: tuple = ()

    def allows(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choices
        numeric = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return False
        if self.minimum is not None and (value <= self.minimum if self.open_minimum else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} in {'(' if self.open_minimum else '['}{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"{noun} {'>' if self.open_minimum else '>='} {self.minimum:g}"
        return noun


Count = Annotated[int, Rule("int", minimum=1)]
NonNegativeInt = Annotated[int, Rule("int", minimum=0)]
Positive = Annotated[float, Rule("number", minimum=0, open_minimum=True)]
NonNegative = Annotated[float, Rule("number", minimum=0)]
Fraction = Annotated[float, Rule("number", minimum=0, open_minimum=True, maximum=1)]
Binarize = Annotated[str, Rule("choice", choices=BINARIZE_MODES)]
SigmaMode = Annotated[str, Rule("choice", choices=SIGMA_MODES)]
MeanActivation = Annotated[str, Rule("choice", choices=MEAN_ACTIVATIONS)]
Activation = Annotated[str, Rule("choice", choices=tuple(ACTIVATIONS))]

#: the contract types by name, for the pre-flight reader of annotations in source
CONTRACTS: dict[str, Rule] = {
    name: typing.get_args(value)[1]
    for name, value in dict(globals()).items()
    if typing.get_origin(value) is Annotated and isinstance(typing.get_args(value)[1], Rule)
}


def rule_of(annotation: Any) -> Rule | None:
    """The Rule inside an annotation (``Count``, ``Count | None``), or None."""
    if typing.get_origin(annotation) is Annotated:
        return next((extra for extra in typing.get_args(annotation)[1:] if isinstance(extra, Rule)), None)
    return next((rule for arg in typing.get_args(annotation) if (rule := rule_of(arg))), None)


def refusal(setting: str, value: Any, rule: Rule) -> ConfigError:
    return ConfigError(f"{setting}={value!r} is not allowed; use {rule.describe()}")


def checked(cls: type) -> type:
    """Class decorator: the constructor refuses any argument its annotation does not allow, naming the setting
    as ``section.name`` (e.g. ``model.objective.k``), the section being the class's ``config_section``."""
    init = cls.__init__
    signature = inspect.signature(init)
    rules = {name: rule for name, hint in typing.get_type_hints(init, include_extras=True).items()
             if (rule := rule_of(hint)) is not None}

    @functools.wraps(init)
    def checked_init(self, *args: Any, **kwargs: Any) -> None:
        for name, value in signature.bind(self, *args, **kwargs).arguments.items():
            rule = rules.get(name)
            if rule is not None and value is not None and not rule.allows(value):
                raise refusal(f"{cls.config_section}.{name}", value, rule)
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls
