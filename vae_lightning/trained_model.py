"""A trained model in one line, for notebooks and scripts: ``vae = vae_lightning.load("outputs/runs/<run>")``.

The source may be a run folder (its best checkpoint), a checkpoint file, or a folder downloaded from a W&B ``model``
artifact (it holds ``model.ckpt``). The model is rebuilt from the config stored in the checkpoint, by the same
reader as ``evaluate`` and ``sample``, and bad sources are refused in one line (``ConfigError``).
"""

import json
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from vae_lightning.console import log
from vae_lightning.data.pixels import to_model_input
from vae_lightning.errors import ConfigError
from vae_lightning.models.build import check_decodable, load_model
from vae_lightning.models.labels.base import check_label
from vae_lightning.models.marginal_likelihood import importance_weighted_nll, log_px_given_each_class
from vae_lightning.models.vae import VAE
from vae_lightning.rules import Count, NonNegativeInt, Seed, check_value


def checkpoint_in(source: str | Path) -> Path:
    """The checkpoint a source names: the file itself, a run folder's best (else last) checkpoint, or the one
    ``.ckpt`` file of a folder (a downloaded artifact)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"load({str(source)!r}): no such file or folder; give a run folder, a .ckpt file or a "
                          "downloaded model artifact folder")
    best = None
    if (path / "metrics.json").is_file():
        try:
            best = json.loads((path / "metrics.json").read_text()).get("best_checkpoint")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            log.warning("load(%r): its metrics.json is unreadable, so its best checkpoint is unknown; taking "
                        "checkpoints/last.ckpt", str(source))
    candidates = [Path(best)] if best and Path(best).is_file() else []
    candidates += [path / "checkpoints" / "last.ckpt", *sorted(path.glob("*.ckpt"))]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        raise ConfigError(f"load({str(source)!r}): the folder holds no checkpoint (metrics.json's best_checkpoint, "
                          "checkpoints/last.ckpt or a .ckpt file)")
    return found


class TrainedVAE:
    """A trained VAE in eval mode. Images are a batch of B >= 1, as a tensor or a numpy array, shaped (B, C, H, W),
    (B, H, W) for one channel, or flat (B, C*H*W). uint8 pixels (0..255, as the data sets store them) are turned
    into the model's input the way its test set was (binarised with a fixed seed for a Bernoulli decoder,
    dequantised for a density on [0, 1], ...); float images in [0, 1] are taken as the model's input as they are.
    Anything else is refused with a ``ConfigError`` naming what was given; so are the limits the command line has
    (``n``, ``k``, ``seed``)."""

    def __init__(self, model: VAE, config: DictConfig, checkpoint: Path) -> None:
        self.model, self.config, self.checkpoint = model, config, checkpoint  # config: the run's resolved config
        self.pixels = model.likelihood.pixels

    def __repr__(self) -> str:
        return f"TrainedVAE({self.checkpoint}, latent_dim={self.model.latent_dim}, pixels={self.pixels!r})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: str | torch.device) -> "TrainedVAE":
        self.model.to(device)
        return self

    def inputs(self, x: Any) -> torch.Tensor:
        """The model's input for images x (see the class docstring), (B, C, H, W) on the model's device."""
        shape = tuple(self.model.image_shape)
        accepted = f"(B, {', '.join(map(str, shape))}), (B, {shape[1]}, {shape[2]}) or (B, {math.prod(shape)}) with B >= 1"
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        if x.dim() == 2 and x.shape[1] == math.prod(shape) or x.dim() == 3 and (1, *x.shape[1:]) == shape:
            x = x.reshape(len(x), *shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape or len(x) == 0:
            raise ConfigError(f"x of shape {tuple(x.shape)} is not allowed; give a batch of images shaped {accepted}")
        if x.dtype == torch.uint8:
            return to_model_input(x, self.pixels, torch.Generator().manual_seed(0)).to(self.device, torch.float32)
        if not x.is_floating_point():
            raise ConfigError(f"x of dtype {x.dtype} is not allowed; give uint8 pixels (0..255) or floats in [0, 1]")
        if not torch.isfinite(x).all():
            raise ConfigError("x holds NaN or infinite values; give floats in [0, 1] (or uint8 pixels 0..255)")
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(f"x holds values in [{x.min().item():g}, {x.max().item():g}]; give floats in [0, 1] "
                              "(or uint8 pixels 0..255)")
        return x.to(self.device, torch.float32)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, mean: bool = True, label: int | None = None) -> torch.Tensor:
        """n images decoded from z ~ p(z): the likelihood's mean (default) or a draw from it; (n, C, H, W). A model
        with labels draws class ``label`` (default: each image's class from the uniform p(y))."""
        check_value("n", n, Count)
        check_value("seed", seed, Seed)
        check_value("label", label, NonNegativeInt)
        check_label(None if self.model.labels is None else self.model.labels.n_classes, label)
        check_decodable(self.model, n)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return self.model.sample_images(n, mean=mean, generator=generator, label=label).cpu()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the encoder's Gaussian q(z|x) (of h1 with two stochastic layers), each (B, latent_dim)."""
        mu, logvar = self.model.encode(self.inputs(x))
        return mu.cpu(), logvar.cpu()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean decoded at z = E[z|x]; (B, C, H, W)."""
        return self.model.decode_images(self.model.encode(self.inputs(x))[0]).cpu()

    @torch.no_grad()
    def log_likelihood(self, x: Any, k: int = 1000, seed: int = 0) -> torch.Tensor:
        """log p(x) per image in nats, estimated with k importance samples drawn from ``seed`` (the same numbers
        on every call; the global random state is left as it was) — the bound of ``test/nll_iw``, which is its
        negative; divide by C*H*W*ln 2 for bits/dim; (B,)."""
        check_value("k", k, Count)
        check_value("seed", seed, Seed)
        x = self.inputs(x)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            if self.model.labels is None:
                return -importance_weighted_nll(self.model, x, k, self.model.iw_chunk_elements).cpu()
            # a model with labels: the marginal over the uniform p(y), as test/nll_iw
            log_px_y = log_px_given_each_class(self.model, x, k, self.model.iw_chunk_elements)
            return (torch.logsumexp(log_px_y, -1) - math.log(self.model.labels.n_classes)).cpu()


def load(source: str | Path, device: str | torch.device = "cpu") -> TrainedVAE:
    """The trained model of a run folder, a checkpoint or a downloaded artifact folder, on ``device``."""
    checkpoint = checkpoint_in(source)
    model, config = load_model(checkpoint)
    return TrainedVAE(model, config, checkpoint).to(device)
