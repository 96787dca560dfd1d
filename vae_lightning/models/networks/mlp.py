"""Fully connected encoder and decoder (Kingma and Welling's 784-400-20 network by default)."""

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from vae_lightning.models.networks.base import Activation, Decoder, Encoder, Init, initialise, mlp, with_label
from vae_lightning.rules import checked


@checked
class MLPEncoder(Encoder):
    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (400,),
        activation: Activation = "relu",
        init: Init = "torch",
        label_dim: int = 0,
    ) -> None:
        super().__init__()
        self.label_dim = label_dim
        self.body = mlp([prod(image_shape) + label_dim, *hidden_dims], activation)
        self.head = nn.Linear(hidden_dims[-1] if hidden_dims else prod(image_shape) + label_dim, 2 * latent_dim)
        initialise(self, init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(with_label(x.flatten(1), y, self.label_dim))).chunk(2, dim=-1)
        return mu, logvar


@checked
class MLPDecoder(Decoder):
    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        out_channels: int,
        hidden_dims: Sequence[int] = (400,),
        activation: Activation = "relu",
        init: Init = "torch",
        label_dim: int = 0,
    ) -> None:
        super().__init__()
        _, height, width = image_shape
        self.out_shape, self.label_dim = (out_channels, height, width), label_dim
        self.body = mlp([latent_dim + label_dim, *hidden_dims], activation)
        self.head = nn.Linear(hidden_dims[-1] if hidden_dims else latent_dim + label_dim, prod(self.out_shape))
        initialise(self, init)

    @torch.no_grad()
    def set_output_bias(self, bias: torch.Tensor) -> None:
        self.head.bias.copy_(bias.flatten())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(with_label(z, y, self.label_dim))).unflatten(-1, self.out_shape)
