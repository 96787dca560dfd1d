"""Building the VAE a config describes, after checking it fits in memory."""

import hydra
import torch
from omegaconf import DictConfig

from vae_lightning.errors import ConfigError
from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.models.networks.base import Decoder, Encoder
from vae_lightning.models.objectives.base import Objective
from vae_lightning.models.priors.base import Prior
from vae_lightning.models.vae import VAE

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
