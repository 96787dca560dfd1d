"""The standard normal prior N(0, I), with its closed-form KL."""

import math

import torch

from vae_lightning.models.gaussians import kl_to_standard_normal
from vae_lightning.models.priors.base import Encode, Prior


class StandardNormalPrior(Prior):
    """p(z) = N(0, I): the KL term has a closed form."""

    def __init__(self, latent_dim: int, encode: Encode | None = None) -> None:
        super().__init__(latent_dim)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._normal((n, self.latent_dim), generator)

    def marginal_quantiles(self, levels: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(0.0, 1.0).icdf(levels.float()).unsqueeze(1).expand(len(levels), self.latent_dim)

    def analytic_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return kl_to_standard_normal(mu, logvar)
