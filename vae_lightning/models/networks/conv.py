"""A small convolutional encoder and its mirror-image decoder."""

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from vae_lightning.models.networks.base import ACTIVATIONS, Activation, Decoder, Encoder, with_label
from vae_lightning.rules import Count, checked


@checked
class ConvEncoder(Encoder):
    """Two stride-2 convolutions (28 -> 14 -> 7) then a linear head (which also reads the label, if any)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        hidden_dim: Count = 256,
        activation: Activation = "relu",
        label_dim: int = 0,
    ) -> None:
        super().__init__()
        self.label_dim = label_dim
        in_channels, height, width = image_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), ACTIVATIONS[activation]()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, in_channels, height, width)).shape[-1]
        self.head = nn.Sequential(
            nn.Linear(n_features + label_dim, hidden_dim), ACTIVATIONS[activation](),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(with_label(self.features(x), y, self.label_dim)).chunk(2, dim=-1)
        return mu, logvar


@checked
class ConvDecoder(Decoder):
    """Mirror of :class:`ConvEncoder`: linear (from the latent and the label, if any) to (C, H/4, W/4), then two
    stride-2 transposed convolutions."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        out_channels: int,
        channels: Sequence[int] = (64, 32),
        hidden_dim: Count = 256,
        activation: Activation = "relu",
        label_dim: int = 0,
    ) -> None:
        super().__init__()
        self.label_dim = label_dim
        _, height, width = image_shape
        if height % 4 or width % 4:
            raise ValueError(f"ConvDecoder needs image height and width divisible by 4, got {height}x{width}")
        self.seed_shape = (channels[0], height // 4, width // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + label_dim, hidden_dim),
            ACTIVATIONS[activation](),
            nn.Linear(hidden_dim, prod(self.seed_shape)),
            ACTIVATIONS[activation](),
        )
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels, [*channels[1:], out_channels])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(channels) - 1:
                layers.append(ACTIVATIONS[activation]())
        self.upsample = nn.Sequential(*layers)

    @torch.no_grad()
    def set_output_bias(self, bias: torch.Tensor) -> None:
        """A transposed convolution has one bias per channel: each channel's mean over the pixels."""
        self.upsample[-1].bias.copy_(bias.mean(dim=(-2, -1)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        batch_shape, z = z.shape[:-1], with_label(z, y, self.label_dim)
        h = self.project(z.reshape(-1, z.shape[-1])).unflatten(-1, self.seed_shape)
        out = self.upsample(h)
        return out.reshape(*batch_shape, *out.shape[1:])
