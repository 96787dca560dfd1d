"""A learned mixture-of-Gaussians prior."""

import torch
from torch import nn

from vae_lightning.models.gaussians import diagonal_gaussian_mixture_log_probs
from vae_lightning.models.priors.base import Encode, Prior
from vae_lightning.rules import Count, NonNegative, checked


@checked
class GaussianMixturePrior(Prior):
    """A learned mixture of ``n_components`` diagonal Gaussians, sum_k pi_k N(z; m_k, diag exp(s_k)).

    Means start at ``init_scale`` * N(0, I) draws, variances at 1, weights equal; with one component
    and ``init_scale: 0`` it starts as N(0, I).
    """

    def __init__(
        self, latent_dim: int, n_components: Count = 10, init_scale: NonNegative = 1.0, encode: Encode | None = None
    ) -> None:
        super().__init__(latent_dim)
        self.means = nn.Parameter(init_scale * torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.weight_logits = nn.Parameter(torch.zeros(n_components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        log_weights = torch.log_softmax(self.weight_logits, dim=0)
        per_component = diagonal_gaussian_mixture_log_probs(z, self.means, self.logvars)  # (..., K)
        return torch.logsumexp(per_component + log_weights, dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = self._normal((n, self.latent_dim), generator)  # first: the same noise as N(0, I) would use
        weights = torch.softmax(self.weight_logits.detach().cpu(), dim=0)
        component = torch.multinomial(weights, n, replacement=True, generator=generator).to(self._anchor.device)
        return self.means[component] + torch.exp(0.5 * self.logvars[component]) * eps
