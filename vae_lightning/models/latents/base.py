"""Stochastic layers above the encoder's: a latent hierarchy instead of one Gaussian layer.

Contract: built as ``latents(latent_dim=D1)`` (D1, the first layer, is what the encoder and decoder see), a module
with ``units`` (the width D2 of the layer above) and two diagonal Gaussians between the layers, each returning
``(mu, logvar)``: ``infer(h1)``, q(h2|h1) (bottom-up), and ``generate(h2)``, p(h1|h2) (top-down).

The VAE then works on one latent vector z = [h1, h2]: :class:`LayeredPosterior` puts q(h2|h1) after the configured
posterior of h1, :class:`LayeredPrior` puts p(h1|h2) under the configured prior of h2, so every objective, the
importance-weighted NLL and the samplers use log q(z|x) = log q(h1|x) + log q(h2|h1) and
log p(z) = log p(h2) + log p(h1|h2) without knowing there are two layers.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from vae_lightning.models.gaussians import clamp_logvar, diagonal_gaussian_log_prob
from vae_lightning.models.posteriors.base import Posterior, diagonal_sample
from vae_lightning.models.priors.base import Prior

Gaussian = tuple[torch.Tensor, torch.Tensor]


class Latents(nn.Module, ABC):
    """A stochastic layer of ``units`` above the first; see the module docstring for the contract."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.latents"

    def __init__(self, latent_dim: int, units: int) -> None:
        super().__init__()
        self.latent_dim, self.units = latent_dim, units

    @abstractmethod
    def infer(self, h1: torch.Tensor) -> Gaussian:
        """(mu, logvar) of q(h2|h1), each (..., units)."""

    @abstractmethod
    def generate(self, h2: torch.Tensor) -> Gaussian:
        """(mu, logvar) of p(h1|h2), each (..., latent_dim)."""


class LayeredPosterior(Posterior):
    """q(h1, h2|x) = q(h1|x) q(h2|h1): the configured posterior of h1 (``inner``), then a Gaussian draw of h2.
    It owns the layers' weights (the prior reaches them through ``generate``)."""

    def __init__(self, inner: Posterior, layers: Latents) -> None:
        super().__init__(inner.latent_dim + layers.units)
        self.inner, self.layers = inner, layers

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1, log_q1 = self.inner(mu, logvar, eps[..., : self.inner.latent_dim])
        h2, log_q2 = diagonal_sample(*self.upper(h1), eps[..., self.inner.latent_dim:])
        return torch.cat([h1, h2], dim=-1), log_q1 + log_q2

    def upper(self, h1: torch.Tensor) -> Gaussian:
        """(mu, logvar) of q(h2|h1)."""
        mu, logvar = self.layers.infer(h1)
        return mu, clamp_logvar(logvar)


class LayeredPrior(Prior):
    """p(h1, h2) = p(h2) p(h1|h2): the configured prior of h2 (``inner``) and the top-down Gaussian ``generate``
    (a function, so the layers' weights are registered once, in the posterior)."""

    def __init__(self, inner: Prior, generate: Callable[[torch.Tensor], Gaussian], first_dim: int) -> None:
        super().__init__(first_dim + inner.latent_dim)
        self.inner, self._generate, self.first_dim = inner, generate, first_dim

    def lower(self, h2: torch.Tensor) -> Gaussian:
        """(mu, logvar) of p(h1|h2)."""
        mu, logvar = self._generate(h2)
        return mu, clamp_logvar(logvar)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        h1, h2 = z.split([self.first_dim, self.inner.latent_dim], dim=-1)
        return self.inner.log_prob(h2) + diagonal_gaussian_log_prob(h1, *self.lower(h2))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        h2 = self.inner.sample(n, generator=generator)
        mu, logvar = self.lower(h2)
        h1 = mu + torch.exp(0.5 * logvar) * self._normal(tuple(mu.shape), generator)
        return torch.cat([h1, h2], dim=-1)


def layer_kls(posterior: LayeredPosterior, prior: LayeredPrior, z: torch.Tensor, kl: torch.Tensor) -> Gaussian:
    """(KL of layer 1, KL of layer 2) per example, one-sample estimates at z whose joint KL estimate is ``kl``:
    kl_2 = log q(h2|h1) - log p(h2) and kl_1 = kl - kl_2 = log q(h1|x) - log p(h1|h2), as Burda et al. count them."""
    h1, h2 = z.split([prior.first_dim, prior.inner.latent_dim], dim=-1)
    kl_2 = diagonal_gaussian_log_prob(h2, *posterior.upper(h1)) - prior.inner.log_prob(h2)
    return kl - kl_2, kl_2
