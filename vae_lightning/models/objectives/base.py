"""Training objectives: what a training step minimises, given the model's components.

Contract: an objective is called as ``objective(model, x, context)`` with the model (a :class:`LatentModel`:
``sample_posterior``, ``prior`` and ``posterior``, which is the encoder's diagonal Gaussian or a flow after it), a
batch x of shape (B, C, H, W) and a :class:`TrainingContext` (step, epoch, total steps, training-set size), and returns
:class:`ObjectiveTerms`: the scalar ``loss`` that is minimised, and the per-example ``recon`` = -log p(x|z) and
``kl`` estimates that are logged as ``train/recon`` and ``train/kl`` (so ``train/elbo`` = -(recon + kl) means the
same for every objective). A constructor refuses a bad argument with a ``ConfigError`` naming the setting.
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.models.posteriors.base import Posterior
from vae_lightning.models.priors.base import Prior


@dataclass
class ObjectiveTerms:
    loss: torch.Tensor  # scalar, minimised (nats per example)
    recon: torch.Tensor  # (B,) -log p(x|z) at one posterior sample per example
    kl: torch.Tensor  # (B,) KL(q(z|x) || p(z)): closed form when the prior has one, else one-sample MC


@dataclass
class PosteriorSample:
    """The encoder's Gaussian, S posterior samples per example, their log q(z|x) and decoder log-likelihoods."""

    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (S, B, D)
    log_q: torch.Tensor  # (S, B)
    log_px_z: torch.Tensor  # (S, B)


@dataclass(frozen=True)
class TrainingContext:
    """What an objective may know about the run besides the batch; the VAE fills it in on every step."""

    step: int = 0  # optimiser steps taken so far (0 on the first)
    epoch: int = 0
    total_steps: int = 0  # of the whole run (max_epochs x steps per epoch, or max_steps); 0: unbounded
    dataset_size: int = 0  # training examples per epoch (N of the minibatch estimators); 0: unknown
    labelled_size: int = 0  # of those, the ones whose label is used (model/labels=semi_supervised: data.labelled)


def run_shape(trainer: Any) -> dict[str, int]:
    """The fixed part of a run's TrainingContext (total optimizer steps, training-set size), from a Lightning
    trainer whose fit has started, with the project's data module or any loader of a sized data set."""
    total = trainer.estimated_stepping_batches
    info = getattr(trainer.datamodule, "info", None) or {}
    dataset = getattr(trainer.train_dataloader, "dataset", None)
    return {
        "total_steps": int(total) if math.isfinite(total) else 0,
        "dataset_size": int(info.get("n_train", len(dataset) if hasattr(dataset, "__len__") else 0)),
        "labelled_size": int(info.get("n_labelled", 0)),
    }


class LatentModel(Protocol):
    """What an objective (or an estimate of log p(x)) may ask of the model."""

    prior: Prior
    posterior: Posterior
    likelihood: Likelihood

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def sample_posterior(self, x: torch.Tensor, n_samples: int = 1) -> PosteriorSample: ...


def kl_terms(model: LatentModel, terms: PosteriorSample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(KL per example, KL per dimension (B, D) or None): in closed form where q is the encoder's Gaussian and the
    prior has one, else the one-sample estimate log q(z|x) - log p(z) at the first sample."""
    kl_per_dim = model.prior.analytic_kl(terms.mu, terms.logvar) if model.posterior.diagonal else None
    if kl_per_dim is not None:
        return kl_per_dim.sum(-1), kl_per_dim
    return terms.log_q[0] - model.prior.log_prob(terms.z[0]), None


def log_importance_weights(prior: Prior, sample: PosteriorSample) -> torch.Tensor:
    """log p(x|z_s) + log p(z_s) - log q(z_s|x) for each sample, shape (S, B): the terms of the
    importance-weighted bound, whose log-mean-exp estimates log p(x)."""
    return sample.log_px_z + prior.log_prob(sample.z) - sample.log_q


class Objective(ABC):
    """Turns the model's components into a loss; see the module docstring."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.objective"
    #: whether it needs q(z|x) to be the encoder's diagonal Gaussian (the VAE refuses other posteriors)
    needs_diagonal_posterior: ClassVar[bool] = False
    #: the smallest training batch it can estimate from
    min_batch_size: ClassVar[int] = 1
    #: whether it needs the run's length (trainer.max_epochs or trainer.max_steps)
    needs_bounded_run: ClassVar[bool] = False
    #: whether its loss is -log p(x|z) + kl_weight(context) * KL per example (what M2's bounds are made of)
    kl_weighted: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms: ...
