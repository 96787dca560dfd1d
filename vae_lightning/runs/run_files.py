"""Files every run folder gets: the resolved config, reproducibility info, metrics, a summary."""

import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_lightning.console import on_rank_zero
from vae_lightning.errors import NonFiniteLossError


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config with every interpolation resolved, as plain Python containers (no Hydra internals)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def to_float(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Lightning's callback metrics as plain floats, sorted by name."""
    return {name: to_float(value) for name, value in sorted(metrics.items()) if getattr(value, "numel", lambda: 1)() == 1}


def nonfinite_names(metrics: dict[str, float]) -> str:
    """'val/loss (inf) and val/recon (nan)' for the values that are not finite numbers ('' if none)."""
    return " and ".join(f"{name} ({value})" for name, value in metrics.items() if not math.isfinite(value))


def raise_if_nonfinite(metrics: dict[str, float], when: str) -> None:
    """NonFiniteLossError naming every value of ``metrics`` that is not a finite number, and ``when``."""
    bad = nonfinite_names(metrics)
    if bad:
        raise NonFiniteLossError(f"{bad} became non-finite {when}")


def strict_json(payload: Any, where: str = "", notes: dict[str, str] | None = None) -> Any:
    """``payload`` with every non-finite float replaced by None; ``notes`` gets 'dotted.key': 'inf'."""
    if isinstance(payload, dict):
        return {key: strict_json(value, f"{where}.{key}" if where else str(key), notes) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [strict_json(value, f"{where}[{i}]", notes) for i, value in enumerate(payload)]
    if isinstance(payload, float) and not math.isfinite(payload):
        if notes is not None:
            notes[where] = str(payload)
        return None
    return payload


@on_rank_zero
def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Strict JSON (no NaN/Infinity tokens): a value that is not a finite number is written as null and named
    in a ``nonfinite_values`` entry ('metrics.test/nll_iw': 'inf')."""
    notes: dict[str, str] = {}
    strict = strict_json(payload, notes=notes)
    if notes:
        strict["nonfinite_values"] = notes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strict, indent=2, sort_keys=False, allow_nan=False) + "\n")


@on_rank_zero
def write_yaml(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(payload)))


def format_metrics(metrics: dict[str, float]) -> str:
    width = max((len(name) for name in metrics), default=0)
    lines = []
    for name, value in metrics.items():
        shown = f"{value:.4f}" if math.isfinite(value) and abs(value) < 1e6 else f"{value:.4g}"
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines)
