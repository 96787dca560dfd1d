"""Reading a checkpoint file safely (weights-only unpickling), for ``ckpt_path=`` and ``resume=``."""

import pickle
import shlex
import warnings
from pathlib import Path
from typing import Any

import torch

from vae_lightning.errors import ConfigError

#: where a checkpoint keeps the resolved run config, so that a checkpoint alone rebuilds its model
CONFIG_KEY = "vae_lightning_config"
#: where a checkpoint keeps the metrics logged when it was saved (a run continued with nothing left to train reports them)
METRICS_KEY = "vae_lightning_metrics"


def read_checkpoint(path: str | Path, for_training: bool = False) -> dict[str, Any]:
    """The checkpoint's contents, unpickled weights-only (no arbitrary code runs): the one reader behind
    ``ckpt_path=`` and ``resume=`` of train, evaluate and sample. ``for_training`` also asks for the
    training state (optimizer, loops) that continuing needs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={str(path)!r} is not allowed; no such file (give a .ckpt from a run's checkpoints/)")
    try:
        with warnings.catch_warnings():  # torch warns about a legacy (non-zip) pickle: the refusal below says it all
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # not a pickle at all, or a broken one
            raise ConfigError(f"ckpt_path={str(path)!r} is not allowed; it is not a readable checkpoint") from err
        # weights-only loading met a global (a class or function) it does not allow
        raise ConfigError(
            f"ckpt_path={str(path)!r} is not loaded; it holds objects other than tensors and plain values "
            "(code could run on loading), which a vae_lightning checkpoint never does"
        ) from err
    except Exception as err:  # RuntimeError, EOFError... for truncated or foreign files
        reason = " ".join(str(err).split(". ")[0].split())[:160]
        raise ConfigError(f"ckpt_path={str(path)!r} is not allowed; it is not a readable checkpoint ({reason})") from err
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise ConfigError(f"ckpt_path={str(path)!r} is not allowed; it was not written by vae_lightning.train")
    if for_training and not {"optimizer_states", "loops"} <= set(checkpoint):
        raise ConfigError(
            f"ckpt_path={str(path)!r} is not allowed; it holds weights only, not the training state to continue "
            "from (give last.ckpt or interrupted.ckpt)"
        )
    return checkpoint


def epochs_trained(checkpoint: dict[str, Any]) -> int:
    """The whole epochs a training checkpoint has behind it."""
    return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])


def check_something_to_train(checkpoint: dict[str, Any], max_epochs: int | None, path: str) -> None:
    """ConfigError, one line, when continuing from ``checkpoint`` would train nothing."""
    done = epochs_trained(checkpoint)
    if max_epochs is not None and max_epochs != -1 and done >= max_epochs:
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is not allowed here; {path} has trained {done} epochs already, so "
            f"there is nothing to train: give trainer.max_epochs > {done}, or test it with "
            f"python -m vae_lightning.evaluate {shlex.quote(f'ckpt_path={path}')}"
        )
