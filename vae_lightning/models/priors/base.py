"""Priors p(z) over the latent space.

Contract (what the VAE and the objectives rely on): a prior is built as
``prior(latent_dim=D, encode=encode)``, where ``encode(x) -> (mu, logvar)`` is the model's encoder
(only priors defined through the encoder, like the VampPrior, use it). It provides

* ``log_prob(z)``: log p(z) in nats for z of shape (..., D), returning shape (...);
* ``sample(n, generator=None)``: n draws, shape (n, D), on the prior's device (noise drawn on the
  CPU from ``generator`` when one is given, so fixed pictures do not depend on the device);
* ``analytic_kl(mu, logvar)``: KL(N(mu, diag exp(logvar)) || p) per latent dimension, shape (B, D),
  when it has a closed form, else None; objectives then use the Monte Carlo estimate log q(z|x) - log p(z).
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Prior(nn.Module, ABC):
    """p(z) for latents of size ``latent_dim``; see the module docstring for the contract."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.prior"

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        # marks the prior's device for sample(); not a parameter and not saved in checkpoints
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last axis (nats)."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ p(z), shape (n, latent_dim)."""

    def analytic_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor | None:
        """Closed-form KL(q || p) per dimension, or None when there is none."""
        return None

    @torch.no_grad()
    def marginal_quantiles(self, levels: torch.Tensor) -> torch.Tensor:
        """Quantiles of each latent dimension's marginal at ``levels`` in (0, 1): shape (len(levels), latent_dim),
        on the CPU. The pictures use them for their axes, so they follow any prior's scale. By default
        estimated from 20,000 seeded samples; a prior with closed-form marginals overrides it."""
        draws = self.sample(20_000, generator=torch.Generator().manual_seed(0)).float().cpu()
        return torch.quantile(draws, levels.float(), dim=0)

    def _normal(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        if generator is None:
            return torch.randn(shape, device=self._anchor.device)
        return torch.randn(shape, generator=generator).to(self._anchor.device)
