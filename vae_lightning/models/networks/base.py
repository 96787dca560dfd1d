"""Encoders q(z|x) and decoders p(x|z): their contract, and the layers the built-in ones share.

The VAE builds both (configs give them as ``_partial_: true``), since only it knows the image shape, the latent
size and how many parameters the likelihood needs per pixel:

* ``encoder(image_shape=(C, H, W), latent_dim=D, label_dim=K, **settings)`` maps images (B, C, H, W) to
  (mu, logvar), each (B, D): q(z|x) = N(mu, diag exp(logvar));
* ``decoder(image_shape=(C, H, W), latent_dim=D, out_channels=C * params_per_pixel, label_dim=K, **settings)``
  maps latents (..., D), any number of leading axes, to raw likelihood parameters (..., out_channels, H, W).

With ``label_dim`` K > 0 (a model with labels, ``model/labels``) both also take a one-hot label y (B, K) as a
second input, next to the image or the latent: q(z|x, y) and p(x|y, z). Without a label they read the uniform
vector 1/K (no label information: what a prior defined through the encoder, the VampPrior, encodes with). With
K = 0 the networks are exactly those of a model without labels (the same layers, the same initial weights).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import nn


class Encoder(nn.Module, ABC):
    """Images (B, C, H, W) [and labels (B, K)] -> (mu, logvar), each (B, latent_dim); see the module docstring."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.encoder"

    @abstractmethod
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...


class Decoder(nn.Module, ABC):
    """Latents (..., latent_dim) [and labels (..., K)] -> likelihood parameters (..., out_channels, H, W); see the
    module docstring."""

    config_section: ClassVar[str] = "model.decoder"

    @abstractmethod
    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...

    @abstractmethod
    def set_output_bias(self, bias: torch.Tensor) -> None:
        """Start the last layer's bias at ``bias`` (out_channels, H, W), or as near as its shape allows."""


def with_label(h: torch.Tensor, y: torch.Tensor | None, label_dim: int) -> torch.Tensor:
    """``h`` (..., F) with the one-hot label y (B, K) appended, broadcast over h's leading axes (posterior
    samples); the uniform 1/K without a label; ``h`` itself for a network without labels (K = 0)."""
    if not label_dim:
        return h
    if y is None:
        y = torch.full((label_dim,), 1.0 / label_dim, dtype=h.dtype, device=h.device)
    return torch.cat([h, y.to(h.dtype).expand(*h.shape[:-1], label_dim)], dim=-1)


#: model.encoder.init / model.decoder.init: PyTorch's default, Glorot-uniform weights with zero biases (Burda et
#: al.), or weights from N(0, 0.001^2) with zero biases (Kingma et al., 2014)
Init = Literal["torch", "glorot", "normal_0.001"]


def initialise(module: nn.Module, init: str) -> None:
    """``glorot``: every linear layer's weights U(-sqrt(6 / (fan_in + fan_out)), +...) and biases 0, as in
    Burda et al.'s code; ``normal_0.001``: weights N(0, 0.001^2) and biases 0, as in Kingma et al. (2014), section 4;
    ``torch`` leaves PyTorch's default."""
    if init == "torch":
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if init == "glorot":
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.normal_(layer.weight, std=1e-3)
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
