"""Building lists of callbacks and loggers from config groups (dicts of ``_target_`` entries)."""

from typing import Any

import hydra
from omegaconf import DictConfig

from vae_lightning.console import log


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Every entry of ``group`` that has a ``_target_``; a factory may return None to opt out."""
    objects = []
    for name, entry in (group or {}).items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            obj = hydra.utils.instantiate(entry)
            if obj is None:
                log.info("%s is switched off", name)
            else:
                objects.append(obj)
    return objects
