"""Two stochastic layers (Burda et al., 2016): x -> h1 -> h2 bottom-up, h2 -> h1 -> x top-down."""

from collections.abc import Sequence

import torch
from torch import nn

from vae_lightning.models.latents.base import Gaussian, Latents
from vae_lightning.models.networks.base import Activation, Init, initialise, mlp
from vae_lightning.rules import Count, checked


@checked
class TwoLayerLatents(Latents):
    """h2 of ``units`` above the encoder's h1, q(h2|h1) and p(h1|h2) each an MLP of ``hidden_dims`` giving a
    diagonal Gaussian. Burda et al.: h1 of 100 and h2 of 50 units, 100-100 tanh between them (and 200-200 between
    x and h1, the encoder's and decoder's ``hidden_dims``)."""

    def __init__(self, latent_dim: int, units: Count = 50, hidden_dims: Sequence[int] = (100, 100),
                 activation: Activation = "tanh", init: Init = "torch") -> None:
        super().__init__(latent_dim, units)
        width = hidden_dims[-1] if hidden_dims else None
        self.up = nn.Sequential(mlp([latent_dim, *hidden_dims], activation), nn.Linear(width or latent_dim, 2 * units))
        self.down = nn.Sequential(mlp([units, *hidden_dims], activation), nn.Linear(width or units, 2 * latent_dim))
        initialise(self, init)

    def infer(self, h1: torch.Tensor) -> Gaussian:
        mu, logvar = self.up(h1).chunk(2, dim=-1)
        return mu, logvar

    def generate(self, h2: torch.Tensor) -> Gaussian:
        mu, logvar = self.down(h2).chunk(2, dim=-1)
        return mu, logvar
