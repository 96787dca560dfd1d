"""Encoders q(z|x) and decoders p(x|z): their contract, and the layers the built-in ones share.

The VAE builds both (configs give them as ``_partial_: true``), since only it knows the image shape, the latent
size and how many parameters the likelihood needs per pixel:

* ``encoder(image_shape=(C, H, W), latent_dim=D, **settings)`` maps images (B, C, H, W) to (mu, logvar),
  each (B, D): q(z|x) = N(mu, diag exp(logvar));
* ``decoder(image_shape=(C, H, W), latent_dim=D, out_channels=C * params_per_pixel, **settings)`` maps latents
  (..., D), any number of leading axes, to raw likelihood parameters (..., out_channels, H, W).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from vae_lightning.choices import ACTIVATIONS, check_choice


class Encoder(nn.Module, ABC):
    """Images (B, C, H, W) -> (mu, logvar), each (B, latent_dim); see the module docstring."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.encoder"

    @abstractmethod
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Decoder(nn.Module, ABC):
    """Latents (..., latent_dim) -> likelihood parameters (..., out_channels, H, W); see the module docstring."""

    config_section: ClassVar[str] = "model.decoder"

    @abstractmethod
    def forward(self, z: torch.Tensor) -> torch.Tensor: ...


def make_activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return getattr(nn, ACTIVATIONS[name])()


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes with ``activation`` after each one."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), make_activation(activation)]
    return nn.Sequential(*layers)
