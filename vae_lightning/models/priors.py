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

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn

from vae_lightning.contracts import Count, NonNegative, Positive, checked
from vae_lightning.models.diagonal_normal import diagonal_normal_mixture_log_probs, kl_to_standard_normal

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Prior(nn.Module, ABC):
    """p(z) for latents of size ``latent_dim``; see the module docstring for the contract."""

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


@checked("model.prior")
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
        per_component = diagonal_normal_mixture_log_probs(z, self.means, self.logvars)  # (..., K)
        return torch.logsumexp(per_component + log_weights, dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = self._normal((n, self.latent_dim), generator)  # first: the same noise as N(0, I) would use
        weights = torch.softmax(self.weight_logits.detach().cpu(), dim=0)
        component = torch.multinomial(weights, n, replacement=True, generator=generator).to(self._anchor.device)
        return self.means[component] + torch.exp(0.5 * self.logvars[component]) * eps


@checked("model.prior")
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
        per_component = diagonal_normal_mixture_log_probs(z, means, logvars)  # (..., K)
        return torch.logsumexp(per_component, dim=-1) - math.log(means.shape[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        means, logvars = self.components()
        eps = self._normal((n, self.latent_dim), generator)
        uniform = torch.ones(means.shape[0])
        component = torch.multinomial(uniform, n, replacement=True, generator=generator).to(self._anchor.device)
        return means[component] + torch.exp(0.5 * logvars[component]) * eps
