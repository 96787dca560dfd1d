"""Encoders q(z|x) and decoders p(x|z): an MLP pair and a small convolutional pair.

Encoders map images (B, C, H, W) to (mu, logvar), each (B, latent_dim).
Decoders map latents (..., latent_dim) to raw likelihood parameters (..., out_channels, H, W).
Both are built by the LightningModule, which knows the image shape, latent size and how many
parameters the likelihood needs per pixel; configs give them as ``_partial_: true``.
"""

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from vae_lightning.choices import ACTIVATIONS, check_choice
from vae_lightning.contracts import Activation, Count, checked


def make_activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return getattr(nn, ACTIVATIONS[name])()


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes with ``activation`` after each one."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), make_activation(activation)]
    return nn.Sequential(*layers)


@checked("model.encoder")
class MLPEncoder(nn.Module):
    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (400,),
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        self.body = mlp([prod(image_shape), *hidden_dims], activation)
        self.head = nn.Linear(hidden_dims[-1] if hidden_dims else prod(image_shape), 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x.flatten(1))).chunk(2, dim=-1)
        return mu, logvar


@checked("model.decoder")
class MLPDecoder(nn.Module):
    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        out_channels: int,
        hidden_dims: Sequence[int] = (400,),
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        _, height, width = image_shape
        self.out_shape = (out_channels, height, width)
        self.body = mlp([latent_dim, *hidden_dims], activation)
        self.head = nn.Linear(hidden_dims[-1] if hidden_dims else latent_dim, prod(self.out_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z)).unflatten(-1, self.out_shape)


@checked("model.encoder")
class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 -> 14 -> 7) then a linear head."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        hidden_dim: Count = 256,
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        in_channels, height, width = image_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), make_activation(activation)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, in_channels, height, width)).shape[-1]
        self.head = nn.Sequential(
            nn.Linear(n_features, hidden_dim), make_activation(activation), nn.Linear(hidden_dim, 2 * latent_dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x)).chunk(2, dim=-1)
        return mu, logvar


@checked("model.decoder")
class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear to (C, H/4, W/4), then two stride-2 transposed convolutions."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        out_channels: int,
        channels: Sequence[int] = (64, 32),
        hidden_dim: Count = 256,
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        _, height, width = image_shape
        if height % 4 or width % 4:
            raise ValueError(f"ConvDecoder needs image height and width divisible by 4, got {height}x{width}")
        self.seed_shape = (channels[0], height // 4, width // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            make_activation(activation),
            nn.Linear(hidden_dim, prod(self.seed_shape)),
            make_activation(activation),
        )
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels, [*channels[1:], out_channels])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(channels) - 1:
                layers.append(make_activation(activation))
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch_shape = z.shape[:-1]
        h = self.project(z.reshape(-1, z.shape[-1])).unflatten(-1, self.seed_shape)
        out = self.upsample(h)
        return out.reshape(*batch_shape, *out.shape[1:])
