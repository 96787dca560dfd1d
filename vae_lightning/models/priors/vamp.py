"""The VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs."""

import math

import torch
from torch import nn

from vae_lightning.models.gaussians import diagonal_gaussian_mixture_log_probs
from vae_lightning.models.priors.base import Encode, Prior
from vae_lightning.rules import Count, Positive, checked


@checked
class VampPrior(Prior):
    """VampPrior (Tomczak and Welling, 2018): p(z) = (1/K) sum_k q(z | u_k), the encoder's posteriors at
    K learned pseudo-inputs u_k (images in [0, 1], sigmoid of a free parameter, shape ``image_shape``).
    """

    def __init__(
        self,
        latent_dim: int,
        encode: Encode,
        image_shape: tuple[int, ...] = (1, 28, 28),
        n_components: Count = 500,
        init_std: Positive = 0.1,
    ) -> None:
        super().__init__(latent_dim)
        self.pseudo_input_logits = nn.Parameter(init_std * torch.randn(n_components, *image_shape))
        # The encoder belongs to the VAE: kept as a function, so its weights are not registered twice.
        self._encode = encode

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, logvars) of the K mixture components, each (K, latent_dim)."""
        return self._encode(torch.sigmoid(self.pseudo_input_logits))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        means, logvars = self.components()
        per_component = diagonal_gaussian_mixture_log_probs(z, means, logvars)  # (..., K)
        return torch.logsumexp(per_component, dim=-1) - math.log(means.shape[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        means, logvars = self.components()
        eps = self._normal((n, self.latent_dim), generator)
        uniform = torch.ones(means.shape[0])
        component = torch.multinomial(uniform, n, replacement=True, generator=generator).to(self._anchor.device)
        return means[component] + torch.exp(0.5 * logvars[component]) * eps
