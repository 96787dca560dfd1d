"""Building the VAE a config describes (after checking it fits in memory), or the one a checkpoint holds."""

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vae_lightning.errors import ConfigError
from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.models.networks.base import Decoder, Encoder
from vae_lightning.models.objectives.base import Objective
from vae_lightning.models.priors.base import Prior
from vae_lightning.models.vae import VAE
from vae_lightning.runs.checkpoints import CONFIG_KEY, read_checkpoint

#: bytes per parameter in training: float32 weights, gradients and Adam's two moment estimates
TRAINING_BYTES_PER_PARAMETER = 4 * 4


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def build_model(cfg: DictConfig) -> VAE:
    """The VAE described by a config's ``model`` and ``likelihood`` sections.

    It is first built on PyTorch's meta device (shapes only, no memory) to count its parameters; a model
    whose training state would not fit in the available memory is refused in one line.
    """
    with torch.device("meta"):
        sketch = _instantiate(cfg)
        check_contracts(sketch)
        n_parameters = sum(p.numel() for p in sketch.parameters())
    needed, available = n_parameters * TRAINING_BYTES_PER_PARAMETER, available_memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(
            f"model.latent_dim={cfg.model.latent_dim} (with these networks) is not allowed; the model has "
            f"{n_parameters:,} parameters, about {needed / 1e9:,.1f} GB to train, and {available / 1e9:.1f} GB are available"
        )
    return _instantiate(cfg)


def check_contracts(model: VAE) -> None:
    """ConfigError, one line, for a component that is not an instance of its kind's base class (the contract
    the rest of the code relies on)."""
    for attribute, base in (("encoder", Encoder), ("decoder", Decoder), ("likelihood", Likelihood),
                            ("prior", Prior), ("objective", Objective)):
        built = getattr(model, attribute)
        if not isinstance(built, base):
            raise ConfigError(
                f"{base.config_section}._target_ builds {type(built).__name__}, which does not subclass "
                f"{base.__module__}.{base.__name__} (the contract of its kind)"
            )


def _instantiate(cfg: DictConfig) -> VAE:
    return hydra.utils.instantiate(cfg.model, likelihood=hydra.utils.instantiate(cfg.likelihood))


def load_weights(model: VAE, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Put the checkpoint's weights into ``model``, or say in one line that they do not fit its config."""
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"ckpt_path={str(path)!r} does not fit its model config (model/likelihood overrides?): {first_line}"
        ) from err


def load_model(path: str | Path, config_overrides: DictConfig | None = None) -> tuple[VAE, DictConfig]:
    """The model of a checkpoint, built from the config stored in it (optionally overridden)."""
    checkpoint = read_checkpoint(path)
    cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
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
