"""Loading a trained VAE from a checkpoint file alone, safely (weights-only unpickling)."""

import pickle
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vae_lightning.earlier_versions import upgraded
from vae_lightning.errors import ConfigError
from vae_lightning.models.build import build_model
from vae_lightning.models.vae import CONFIG_KEY, VAE


def read_checkpoint(path: str | Path, for_training: bool = False) -> dict[str, Any]:
    """The checkpoint's contents, unpickled weights-only (no arbitrary code runs): the one reader behind
    ``ckpt_path=`` and ``resume=`` of train, evaluate and sample. ``for_training`` also asks for the
    training state (optimizer, loops) that continuing needs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={str(path)!r} is not allowed; no such file (give a .ckpt from a run's checkpoints/)")
    try:
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


def load_weights(model: VAE, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Put the checkpoint's weights into ``model``, or say in one line that they do not fit its config."""
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"ckpt_path={str(path)!r} does not fit its model config (model/likelihood overrides?): {first_line}"
        ) from err


def checkpoint_config(checkpoint: dict[str, Any]) -> DictConfig:
    """The run config stored in a checkpoint, in today's names (see ``earlier_versions``)."""
    return OmegaConf.create(upgraded(checkpoint[CONFIG_KEY]))


def load_model(path: str | Path, config_overrides: DictConfig | None = None) -> tuple[VAE, DictConfig]:
    """The model of a checkpoint, built from the config stored in it (optionally overridden)."""
    checkpoint = read_checkpoint(path)
    cfg = checkpoint_config(checkpoint)
    if config_overrides is not None:
        cfg = OmegaConf.merge(cfg, config_overrides)
    try:
        model = build_model(cfg)
    except (TypeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(f"ckpt_path={str(path)!r} holds a model config that cannot be built: {first_line}") from err
    load_weights(model, checkpoint, path)
    model.run_config = checkpoint[CONFIG_KEY]
    return model.eval(), cfg
