"""Inverse autoregressive flow (Kingma et al., 2016) after the encoder's Gaussian."""

import torch
from torch import nn

from vae_lightning.models.posteriors.base import Posterior, diagonal_sample
from vae_lightning.rules import Count, checked


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE, Germain et al., 2015)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class AutoregressiveStep(nn.Module):
    """[m, s] = MADE(z, context): output d depends on z_1..z_{d-1} only (and on all of the context)."""

    def __init__(self, latent_dim: int, context_dim: int, hidden: int) -> None:
        super().__init__()
        degrees = torch.arange(1, latent_dim + 1)
        hidden_degrees = torch.arange(hidden) % max(1, latent_dim - 1) + 1  # in 1..D-1
        self.inner = MaskedLinear((hidden_degrees.unsqueeze(1) >= degrees.unsqueeze(0)).float())
        self.context = nn.Linear(context_dim, hidden)
        outer = (degrees.unsqueeze(1) > hidden_degrees.unsqueeze(0)).float()
        self.mean, self.gate = MaskedLinear(outer), MaskedLinear(outer)
        for layer in (self.mean, self.gate):
            nn.init.zeros_(layer.weight)
        nn.init.constant_(self.gate.bias, 2.0)  # sigma = sigmoid(2) = 0.88: each step starts near the identity

    def forward(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = nn.functional.elu(self.inner(z) + self.context(context))
        return self.mean(h), self.gate(h)


@checked
class IAFPosterior(Posterior):
    """K steps z <- sigma * z + (1 - sigma) * m, [m, s] from an autoregressive network of z and a context,
    sigma = sigmoid(s); log|det J| = sum_d log sigma_d. The context is the encoder's (mu, logvar) for x (the paper
    takes a separate output h of the encoder). The order of the dimensions is reversed between steps."""

    def __init__(self, latent_dim: int, steps: Count = 2, hidden: Count = 64) -> None:
        super().__init__(latent_dim)
        self.steps = nn.ModuleList(AutoregressiveStep(latent_dim, 2 * latent_dim, hidden) for _ in range(steps))

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_q = diagonal_sample(mu, logvar, eps)
        context = torch.cat([mu, logvar], dim=-1).expand(*z.shape[:-1], 2 * self.latent_dim)
        for step in self.steps:
            m, s = step(z, context)
            sigma = torch.sigmoid(s)
            z = sigma * z + (1 - sigma) * m
            log_q = log_q - nn.functional.logsigmoid(s).sum(-1)
            z = z.flip(-1)  # the next step sees the dimensions in reverse order
        return z, log_q
