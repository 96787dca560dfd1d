"""Planar flows (Rezende & Mohamed, 2015) after the encoder's Gaussian."""

import torch
import torch.nn.functional as F
from torch import nn

from vae_lightning.models.posteriors.base import Posterior, diagonal_sample
from vae_lightning.rules import Count, NonNegative, checked


@checked
class PlanarFlowPosterior(Posterior):
    """z_k = z_{k-1} + u_k tanh(w_k . z_{k-1} + b_k), K steps with parameters shared by every x (not amortised).

    Each step is kept invertible by using u_hat = u + (m(w . u) - w . u) w / ||w||^2, m(a) = -1 + softplus(a), so
    w . u_hat >= -1; its log|det J| = log|1 + u_hat . w tanh'(w . z + b)|. With u = w = 0 every step is the identity.
    """

    def __init__(self, latent_dim: int, steps: Count = 4, init_std: NonNegative = 0.01) -> None:
        super().__init__(latent_dim)
        self.u = nn.Parameter(torch.randn(steps, latent_dim) * init_std)
        self.w = nn.Parameter(torch.randn(steps, latent_dim) * init_std)
        self.b = nn.Parameter(torch.zeros(steps))

    def constrained_u(self) -> torch.Tensor:
        """u_hat for every step (steps, D)."""
        wu = (self.w * self.u).sum(-1, keepdim=True)
        norm = self.w.pow(2).sum(-1, keepdim=True).clamp(min=1e-12)  # w = 0 leaves u as it is (0 when u = 0)
        return self.u + (F.softplus(wu) - 1 - wu) * self.w / norm

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_q = diagonal_sample(mu, logvar, eps)
        for u, w, b in zip(self.constrained_u(), self.w, self.b):
            activation = torch.tanh(z @ w + b)  # (S, B)
            log_q = log_q - torch.log((1 + (1 - activation.pow(2)) * (u @ w)).abs() + 1e-12)
            z = z + activation.unsqueeze(-1) * u
        return z, log_q
