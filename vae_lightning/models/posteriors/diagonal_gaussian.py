"""q(z|x) = N(mu, diag exp(logvar)): the encoder's Gaussian itself (Kingma & Welling, 2014)."""

from typing import ClassVar

import torch

from vae_lightning.models.posteriors.base import Posterior, diagonal_sample
from vae_lightning.rules import checked


@checked
class DiagonalGaussianPosterior(Posterior):
    diagonal: ClassVar[bool] = True

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return diagonal_sample(mu, logvar, eps)
