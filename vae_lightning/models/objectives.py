"""Training objectives: what a training step minimises, given the model's components.

Contract: an objective is called as ``objective(model, x, context)`` with the model (a :class:`LatentModel`:
``sample_latents`` and ``prior``; q(z|x) is a diagonal Gaussian), a batch x of shape (B, C, H, W) and a
:class:`TrainingContext` (step, epoch, steps per epoch, total steps, training-set size), and returns
:class:`ObjectiveTerms`: the scalar ``loss`` that is minimised, and the per-example ``recon`` = -log p(x|z) and
``kl`` estimates that are logged as ``train/recon`` and ``train/kl`` (so ``train/elbo`` = -(recon + kl) means the
same for every objective). A constructor refuses a bad argument with a ``ConfigError`` naming the setting.
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch

from vae_lightning.contracts import Count, Fraction, NonNegative, NonNegativeInt, checked
from vae_lightning.errors import ConfigError
from vae_lightning.models.diagonal_normal import LOG_2PI, diagonal_normal_log_prob
from vae_lightning.models.priors import Prior


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


@dataclass(frozen=True)
class TrainingContext:
    """What an objective may know about the run besides the batch; the VAE fills it in on every step."""

    step: int = 0  # optimiser steps taken so far (0 on the first)
    epoch: int = 0
    steps_per_epoch: int = 1
    total_steps: int = 0  # of the whole run (max_epochs x steps per epoch, or max_steps); 0: unbounded
    dataset_size: int = 0  # training examples per epoch (N of the minibatch estimators); 0: unknown


class LatentModel(Protocol):
    """What an objective may ask of the model."""

    prior: Prior

    def sample_latents(self, x: torch.Tensor, n_samples: int = 1) -> LatentSample: ...


def kl_terms(model: LatentModel, terms: LatentSample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(KL per example from the first sample, KL per dimension (B, D) or None when not in closed form)."""
    kl_per_dim = model.prior.analytic_kl(terms.mu, terms.logvar)
    if kl_per_dim is not None:
        return kl_per_dim.sum(-1), kl_per_dim
    z = terms.z[0]
    return diagonal_normal_log_prob(z, terms.mu, terms.logvar) - model.prior.log_prob(z), None


class Objective(ABC):
    """Turns the model's components into a loss; see the module docstring."""

    @abstractmethod
    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms: ...


@checked("model.objective")
class ELBO(Objective):
    """-E_q[log p(x|z)] + w * KL with one posterior sample.

    w = ``beta`` (1: the ELBO; other values: beta-VAE), rising linearly from 0 over ``kl_warmup_steps``.
    ``free_bits`` = lambda nats per latent dimension (Kingma et al., 2016): the KL of dimension j enters the
    loss as max(lambda, batch mean of KL_j), so dimensions below lambda get no pressure towards the prior.
    Priors without a closed-form KL have no per-dimension KL; there the whole KL is floored at lambda * D.
    The logged ``train/kl`` is the KL itself, without the floor or the weight.
    """

    def __init__(self, beta: NonNegative = 1.0, kl_warmup_steps: NonNegativeInt = 0, free_bits: NonNegative = 0.0) -> None:
        self.beta, self.kl_warmup_steps, self.free_bits = beta, kl_warmup_steps, free_bits

    def kl_weight(self, context: TrainingContext) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, context.step / self.kl_warmup_steps)

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_latents(x, n_samples=1)
        recon = -sample.log_px_z[0]
        kl, kl_per_dim = kl_terms(model, sample)
        if self.free_bits <= 0:
            penalty = kl.mean()
        elif kl_per_dim is not None:
            penalty = kl_per_dim.mean(0).clamp(min=self.free_bits).sum()
        else:
            penalty = kl.mean().clamp(min=self.free_bits * sample.mu.shape[-1])
        return ObjectiveTerms(loss=recon.mean() + self.kl_weight(context) * penalty, recon=recon, kl=kl)


@checked("model.objective")
class CyclicalKLELBO(ELBO):
    """The ELBO with the KL weight annealed in cycles (Fu et al., 2019, "Cyclical Annealing Schedule"): the run's
    T steps are split into ``cycles`` periods of T / M steps; in each the weight rises linearly from 0 to
    ``beta`` over the first ``ratio`` of the period and then stays at ``beta``:
    w_t = beta * min(1, tau_t / R), tau_t = ((t - 1) mod ceil(T / M)) / (T / M), t = 1, 2, ... T.
    Needs a bounded run (``trainer.max_epochs`` or ``trainer.max_steps``)."""

    def __init__(self, cycles: Count = 4, ratio: Fraction = 0.5, beta: NonNegative = 1.0, free_bits: NonNegative = 0.0):
        super().__init__(beta=beta, free_bits=free_bits)
        self.cycles, self.ratio = cycles, ratio

    def kl_weight(self, context: TrainingContext) -> float:
        if context.total_steps < 1:
            raise ConfigError("model/objective=cyclical_elbo needs a bounded run; set trainer.max_epochs or trainer.max_steps")
        period = context.total_steps / self.cycles
        tau = (context.step % math.ceil(period)) / period
        return self.beta * min(1.0, tau / self.ratio)


@checked("model.objective")
class BetaTCVAE(Objective):
    """beta-TC-VAE (Chen et al., 2018): the KL term split into index-code mutual information, total correlation
    and dimension-wise KL, weighted ``alpha``, ``beta`` and ``gamma``:

        loss = recon + alpha E[log q(z|x) - log q(z)] + beta E[log q(z) - sum_d log q(z_d)]
                     + gamma E[sum_d log q(z_d) - log p(z)]

    with the aggregate posterior estimated by minibatch-weighted sampling over the batch of M:
    log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M), and likewise per dimension for log q(z_id); N is the
    training-set size (from the context, so it follows the data and ``val_fraction``). alpha = beta = gamma = 1
    is the ELBO with a one-sample KL."""

    def __init__(self, beta: NonNegative = 6.0, alpha: NonNegative = 1.0, gamma: NonNegative = 1.0) -> None:
        self.beta, self.alpha, self.gamma = beta, alpha, gamma

    def decomposition(self, sample: LatentSample, log_p_z: torch.Tensor, dataset_size: int) -> dict[str, torch.Tensor]:
        """Per-example mutual information, total correlation and dimension-wise KL (nats) at the first sample."""
        if dataset_size < 1:
            raise ConfigError("model/objective=beta_tc needs the training-set size; the data module reports none")
        z, mu, logvar = sample.z[0], sample.mu, sample.logvar  # (M, D)
        # log q(z_id | x_j) for every pair (i, j) and dimension d: (M, M, D)
        pairwise = -0.5 * (LOG_2PI + logvar + (z.unsqueeze(1) - mu).pow(2) * torch.exp(-logvar))
        log_nm = math.log(dataset_size * z.shape[0])
        log_q_z = torch.logsumexp(pairwise.sum(-1), dim=1) - log_nm
        log_q_zd = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(-1)
        log_q_z_x = diagonal_normal_log_prob(z, mu, logvar)
        return {"mutual_information": log_q_z_x - log_q_z, "total_correlation": log_q_z - log_q_zd,
                "dimension_kl": log_q_zd - log_p_z}

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_latents(x, n_samples=1)
        parts = self.decomposition(sample, model.prior.log_prob(sample.z[0]), context.dataset_size)
        recon = -sample.log_px_z[0]
        penalty = (self.alpha * parts["mutual_information"] + self.beta * parts["total_correlation"]
                   + self.gamma * parts["dimension_kl"])
        kl, _ = kl_terms(model, sample)
        return ObjectiveTerms(loss=(recon + penalty).mean(), recon=recon, kl=kl)


@checked("model.objective")
class IWAE(Objective):
    """The k-sample importance-weighted bound (Burda et al., 2016):
    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). k = 1 is the ELBO (with a one-sample KL);
    the bound tightens as k grows, and so does the gradient's target."""

    def __init__(self, k: Count = 5) -> None:
        self.k = k

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_latents(x, n_samples=self.k)
        log_weights = (
            sample.log_px_z
            + model.prior.log_prob(sample.z)
            - diagonal_normal_log_prob(sample.z, sample.mu, sample.logvar)
        )
        bound = torch.logsumexp(log_weights, dim=0) - math.log(self.k)
        kl, _ = kl_terms(model, sample)
        return ObjectiveTerms(loss=-bound.mean(), recon=-sample.log_px_z[0].detach(), kl=kl.detach())
