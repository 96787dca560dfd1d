"""Training objectives: what a training step minimises, given the model's components.

Contract: an objective is called as ``objective(model, x, step)`` with the model (it uses
``model.sample_latents`` and ``model.prior``; q(z|x) is a diagonal Gaussian), a batch x of shape
(B, C, H, W) and the global step, and returns :class:`ObjectiveTerms`: the scalar ``loss`` that is
minimised, and the per-example ``recon`` = -log p(x|z) and ``kl`` estimates that are logged as
``train/recon`` and ``train/kl`` (so ``train/elbo`` = -(recon + kl) means the same for every objective).
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from vae_lightning.models.diagonal_normal import diagonal_normal_log_prob


@dataclass
class ObjectiveTerms:
    loss: torch.Tensor  # scalar, minimised (nats per example)
    recon: torch.Tensor  # (B,) -log p(x|z) at one posterior sample per example
    kl: torch.Tensor  # (B,) KL(q(z|x) || p(z)): closed form when the prior has one, else one-sample MC


@dataclass
class LatentSample:
    """Posterior parameters and S samples per example with their decoder log-likelihoods."""

    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (S, B, D)
    log_px_z: torch.Tensor  # (S, B)


def kl_terms(model: Any, terms: LatentSample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(KL per example from the first sample, KL per dimension (B, D) or None when not in closed form)."""
    kl_per_dim = model.prior.analytic_kl(terms.mu, terms.logvar)
    if kl_per_dim is not None:
        return kl_per_dim.sum(-1), kl_per_dim
    z = terms.z[0]
    return diagonal_normal_log_prob(z, terms.mu, terms.logvar) - model.prior.log_prob(z), None


class Objective(ABC):
    """Turns the model's components into a loss; see the module docstring."""

    @abstractmethod
    def __call__(self, model: Any, x: torch.Tensor, step: int) -> ObjectiveTerms: ...


class ELBO(Objective):
    """-E_q[log p(x|z)] + w * KL with one posterior sample.

    w = ``beta`` (1: the ELBO; other values: beta-VAE), rising linearly from 0 over ``kl_warmup_steps``.
    ``free_bits`` = lambda nats per latent dimension (Kingma et al., 2016): the KL of dimension j enters the
    loss as max(lambda, batch mean of KL_j), so dimensions below lambda get no pressure towards the prior.
    Priors without a closed-form KL have no per-dimension KL; there the whole KL is floored at lambda * D.
    The logged ``train/kl`` is the KL itself, without the floor or the weight.
    """

    def __init__(self, beta: float = 1.0, kl_warmup_steps: int = 0, free_bits: float = 0.0) -> None:
        self.beta, self.kl_warmup_steps, self.free_bits = beta, kl_warmup_steps, free_bits

    def kl_weight(self, step: int) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, step / self.kl_warmup_steps)

    def __call__(self, model: Any, x: torch.Tensor, step: int) -> ObjectiveTerms:
        sample = model.sample_latents(x, n_samples=1)
        recon = -sample.log_px_z[0]
        kl, kl_per_dim = kl_terms(model, sample)
        if self.free_bits <= 0:
            penalty = kl.mean()
        elif kl_per_dim is not None:
            penalty = kl_per_dim.mean(0).clamp(min=self.free_bits).sum()
        else:
            penalty = kl.mean().clamp(min=self.free_bits * sample.mu.shape[-1])
        return ObjectiveTerms(loss=recon.mean() + self.kl_weight(step) * penalty, recon=recon, kl=kl)


class IWAE(Objective):
    """The k-sample importance-weighted bound (Burda et al., 2016):
    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). k = 1 is the ELBO (with a one-sample KL);
    the bound tightens as k grows, and so does the gradient's target."""

    def __init__(self, k: int = 5) -> None:
        self.k = k

    def __call__(self, model: Any, x: torch.Tensor, step: int) -> ObjectiveTerms:
        sample = model.sample_latents(x, n_samples=self.k)
        log_weights = (
            sample.log_px_z
            + model.prior.log_prob(sample.z)
            - diagonal_normal_log_prob(sample.z, sample.mu, sample.logvar)
        )
        bound = torch.logsumexp(log_weights, dim=0) - math.log(self.k)
        kl, _ = kl_terms(model, sample)
        return ObjectiveTerms(loss=-bound.mean(), recon=-sample.log_px_z[0].detach(), kl=kl.detach())
