"""OmegaConf resolvers used by the configs; registered before Hydra composes them."""

import os
import secrets
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from vae_lightning.user_cache import user_cache_dir


def unique_suffix() -> str:
    return secrets.token_hex(3)


def run_dir_of_checkpoint(ckpt_path: str) -> Path:
    """The run folder a checkpoint belongs to (``RUN/checkpoints/x.ckpt`` -> ``RUN``)."""
    parent = Path(ckpt_path).expanduser().resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def invocation_dir(kind: str, ckpt_path: str) -> str:
    """A new folder for one ``evaluate`` or ``sample`` of a checkpoint, in ``RUN/<kind>/`` beside the run's
    outputs, never reused: each invocation keeps its own record (``status.json``, W&B run)."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    name = f"{Path(ckpt_path).stem}_{stamp}_{unique_suffix()}"
    return str(run_dir_of_checkpoint(ckpt_path) / kind / name)


def register_resolvers() -> None:
    # Cached, so every use within one config gives the same value: run folders are unique even for
    # runs started in the same second.
    resolvers = {
        "unique": unique_suffix,
        "cwd": os.getcwd,
        "invocation_dir": invocation_dir,
    }
    for name, function in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)
    if not OmegaConf.has_resolver("user_cache"):  # read at each use: the environment may change between composes
        OmegaConf.register_new_resolver("user_cache", lambda: str(user_cache_dir()))
