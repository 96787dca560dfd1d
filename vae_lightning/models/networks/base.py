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
from typing import ClassVar, Literal

import torch
from torch import nn


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

    @abstractmethod
    def set_output_bias(self, bias: torch.Tensor) -> None:
        """Start the last layer's bias at ``bias`` (out_channels, H, W), or as near as its shape allows."""


#: model.encoder.init / model.decoder.init: PyTorch's default, or Glorot-uniform weights with zero biases (Burda et al.)
Init = Literal["torch", "glorot"]


def initialise(module: nn.Module, init: str) -> None:
    """``glorot``: every linear layer's weights U(-sqrt(6 / (fan_in + fan_out)), +...) and biases 0, as in
    Burda et al.'s code; ``torch`` leaves PyTorch's default."""
    if init == "glorot":
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)


#: model.encoder.activation / model.decoder.activation
Activation = Literal["relu", "tanh", "elu", "gelu", "leaky_relu", "softplus"]
#: each activation's torch.nn class
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU,
               "softplus": nn.Softplus}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes with ``activation`` after each one."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)
