"""Building the VAE a config describes (after checking it fits in memory), or the one a checkpoint holds."""

import math
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vae_lightning.errors import ConfigError
from vae_lightning.models.checkpoints import CONFIG_KEY, read_checkpoint
from vae_lightning.models.latents.base import Latents
from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.models.networks.base import Decoder, Encoder
from vae_lightning.models.objectives.base import Objective
from vae_lightning.models.posteriors.base import Posterior
from vae_lightning.models.priors.base import Prior
from vae_lightning.models.vae import VAE

#: bytes per parameter in training: float32 weights, gradients and Adam's two moment estimates
TRAINING_BYTES_PER_PARAMETER = 4 * 4
#: float32 copies of a batch's decoder output that computing its log-probability holds at once (at least)
DECODED_COPIES = 4


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(setting: str, needed: float, reason: str) -> None:
    """ConfigError, one line, naming ``setting`` when ``needed`` bytes exceed the available memory; ``reason``
    says what needs them, with ``{gb}`` where the amount goes."""
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(f"{setting} is not allowed; {reason.format(gb=f'{needed / 1e9:,.1f}')}, and "
                          f"{available / 1e9:.1f} GB are available")


def decoded_bytes(model: VAE, n_images: int) -> float:
    """What decoding ``n_images`` and scoring them holds in memory: the likelihood's parameters of every pixel."""
    return float(n_images) * math.prod(model.image_shape) * model.likelihood.params_per_pixel * 4 * DECODED_COPIES


def check_decodable(model: VAE, n: int) -> None:
    """ConfigError, one line naming ``n``, when decoding ``n`` images at once would not fit in memory (``sample``
    from the command line and from Python)."""
    check_memory(f"n={n}", decoded_bytes(model, n), f"decoding {n:,} images takes about {{gb}} GB")


def check_fits_in_memory(cfg: DictConfig) -> None:
    """ConfigError, one line, for a model whose training state, or whose decoded batch, would not fit in the
    available memory: the pre-flight's check, on a sketch built on PyTorch's meta device (shapes only, no memory)."""
    with torch.device("meta"):
        sketch = _instantiate(cfg)
    n_parameters = sum(p.numel() for p in sketch.parameters())
    check_memory(f"model.latent_dim={cfg.model.latent_dim} (with these networks)", n_parameters * TRAINING_BYTES_PER_PARAMETER,
                 f"the model has {n_parameters:,} parameters, about {{gb}} GB to train")
    batch = max(OmegaConf.select(cfg, f"data.{key}", default=0) or 0 for key in ("batch_size", "eval_batch_size"))
    check_memory(f"{type(sketch.likelihood).__name__} with {sketch.likelihood.params_per_pixel} parameters per pixel "
                 f"and batches of {batch} (data.batch_size, data.eval_batch_size)",
                 decoded_bytes(sketch, batch), "decoding one batch takes about {gb} GB")


def build_model(cfg: DictConfig) -> VAE:
    """The VAE described by a config's ``model`` and ``likelihood`` sections, each component checked against the
    contract of its kind."""
    model = _instantiate(cfg)
    check_contracts(model)
    return model


def check_contracts(model: VAE) -> None:
    """ConfigError, one line, for a component that is not an instance of its kind's base class (the contract
    the rest of the code relies on)."""
    components = [(getattr(model, attribute), base) for attribute, base in (
        ("encoder", Encoder), ("decoder", Decoder), ("likelihood", Likelihood), ("prior", Prior),
        ("posterior", Posterior), ("objective", Objective))]
    if model.layered:  # the configured prior and posterior sit inside the two layers' wrappers
        components[3:5] = [(model.prior.inner, Prior), (model.posterior.inner, Posterior)]
        components.append((model.posterior.layers, Latents))
    for built, base in components:
        if not isinstance(built, base):
            raise ConfigError(
                f"{base.config_section}._target_ builds {type(built).__name__}, which does not subclass "
                f"{base.__module__}.{base.__name__} (the contract of its kind)"
            )


def _instantiate(cfg: DictConfig) -> VAE:
    """The model; its test pass takes ``eval.k`` importance samples (the one name of that setting)."""
    k = {"iw_samples": cfg.eval.k} if OmegaConf.select(cfg, "eval.k") is not None else {}
    return hydra.utils.instantiate(cfg.model, likelihood=hydra.utils.instantiate(cfg.likelihood), **k)


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
