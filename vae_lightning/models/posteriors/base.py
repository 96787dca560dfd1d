"""Posteriors q(z|x): what turns the encoder's Gaussian into latent samples and their log-density.

Contract: a posterior is built as ``posterior(latent_dim=D)``; called with the encoder's ``mu`` and ``logvar``
(B, D) and standard normal noise ``eps`` (S, B, D), it returns samples z (S, B, D) and log q(z|x) (S, B) in nats.
Flows start from the diagonal Gaussian z_0 = mu + sigma * eps and transform it: log q(z_K|x) = log q_0(z_0|x) -
sum_k log|det J_k|. ``diagonal`` says q is N(mu, diag exp(logvar)) itself, so a prior with a closed-form KL may use it.
"""

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from vae_lightning.models.gaussians import diagonal_gaussian_log_prob, reparameterise


class Posterior(nn.Module, ABC):
    """q(z|x) for latents of size ``latent_dim``; see the module docstring for the contract."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.posterior"
    #: whether q(z|x) is the encoder's diagonal Gaussian itself (closed-form KL where the prior has one)
    diagonal: ClassVar[bool] = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    @abstractmethod
    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log q(z|x)) for noise ``eps`` (S, B, D): shapes (S, B, D) and (S, B)."""


def diagonal_sample(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z_0 = mu + sigma * eps and its log N(z_0; mu, diag exp(logvar))."""
    z = reparameterise(mu, logvar, eps=eps)
    return z, diagonal_gaussian_log_prob(z, mu, logvar)
