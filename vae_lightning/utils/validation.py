"""Checks of the composed config that run before any data is loaded or model built.

Each failure is one line naming the key, the bad value and what is allowed.
"""

import importlib.resources
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_lightning.choices import DATASETS, SOURCES
from vae_lightning.errors import ConfigError
from vae_lightning.utils.contract_check import check_components


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def require_int(cfg: DictConfig, key: str, minimum: int) -> None:
    value = _get(cfg, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r} is not allowed; use an integer >= {minimum}")


def _require_positive_number(cfg: DictConfig, key: str, allow_zero: bool = False) -> None:
    value = _get(cfg, key)
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed; use a number {'>= 0' if allow_zero else '> 0'}")


def _require_choice(cfg: DictConfig, key: str, allowed: tuple | list) -> None:
    value = _get(cfg, key)
    if value is not None and value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; use one of {list(allowed)}")


def available_devices(accelerator: str) -> int:
    import torch  # only asked when more than one device is requested

    if accelerator in ("gpu", "cuda"):
        return torch.cuda.device_count()
    if accelerator == "mps":
        return int(torch.backends.mps.is_available())
    if accelerator == "auto" and torch.cuda.is_available():
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_devices(cfg: DictConfig) -> None:
    devices = _get(cfg, "trainer.devices")
    accelerator = str(_get(cfg, "trainer.accelerator") or "auto")
    if devices in (None, "auto", -1, 1):
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"trainer.devices={devices!r} is not allowed; use an integer >= 1, -1 or auto")
    available = available_devices(accelerator)
    if devices > available:
        kind = "CPU cores" if available == (os.cpu_count() or 1) else f"{accelerator} devices"
        raise ConfigError(f"trainer.devices={devices} is not allowed; this machine has {available} {kind}")


def check_writable(path: str, key: str) -> None:
    """The folder must exist or be creatable, and take a file (tried for real: root passes os.access)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={path!r} is not allowed; it is not a writable folder ({err.strerror})") from None


def validate_values(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first setting that cannot work (the output folder aside)."""
    require_int(cfg, "seed", 0)
    require_int(cfg, "threads", 1)
    require_int(cfg, "model.latent_dim", 1)
    require_int(cfg, "data.batch_size", 1)
    require_int(cfg, "data.eval_batch_size", 1)
    require_int(cfg, "trainer.max_epochs", 1)
    require_int(cfg, "eval.k", 1)
    require_int(cfg, "eval.fid_samples", 0)
    _require_positive_number(cfg, "model.optimizer.lr")
    _require_choice(cfg, "data.name", sorted(DATASETS))
    _require_choice(cfg, "data.source", SOURCES)
    fraction = _get(cfg, "data.val_fraction")
    if fraction is not None and not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ConfigError(f"data.val_fraction={fraction!r} is not allowed; use a number between 0 and 1")
    check_components(cfg)  # each component's target and settings, by its own contract
    check_devices(cfg)


def validate_evaluate_values(cfg: DictConfig) -> None:
    require_int(cfg, "seed", 0)
    require_int(cfg, "eval.k", 1)
    require_int(cfg, "eval.fid_samples", 0)
    check_devices(cfg)


def validate_sample_values(cfg: DictConfig) -> None:
    require_int(cfg, "seed", 0)
    require_int(cfg, "n", 1)
    require_int(cfg, "nrow", 1)


#: the value checks of each entry point's config
VALUE_CHECKS = {"train": validate_values, "evaluate": validate_evaluate_values, "sample": validate_sample_values}


def validate_train_config(cfg: DictConfig) -> None:
    """:func:`validate_values`, and the run folder must take files."""
    validate_values(cfg)
    check_writable(str(_get(cfg, "paths.output_dir")), "paths.output_dir")


#: the Hydra configs, shipped inside the package (``conf/`` at the top of a clone links here)
CONF_DIR = Path(str(importlib.resources.files("vae_lightning") / "conf"))


def config_groups(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Every config group under ``conf_dir`` (``likelihood``, ``model/encoder``, ...) and its options."""
    groups = {}
    for folder in conf_dir.rglob("*"):
        options = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        if options:
            groups[folder.relative_to(conf_dir).as_posix()] = options
    return groups


def setting_paths(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config (``model.latent_dim``, ...)."""
    paths = []
    for key in cfg.keys() if isinstance(cfg, DictConfig) else []:
        path = f"{prefix}{key}"
        paths.append(path)
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none() and not node._is_interpolation():
            paths += setting_paths(node, f"{path}.")
    return paths


