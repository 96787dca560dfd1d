"""The beta-TC-VAE objective (Chen et al., 2018), minibatch-weighted sampling."""

import math
from typing import ClassVar

import torch

from vae_lightning.errors import ConfigError
from vae_lightning.models.gaussians import LOG_2PI, diagonal_gaussian_log_prob
from vae_lightning.models.objectives.base import (
    LatentModel,
    Objective,
    ObjectiveTerms,
    PosteriorSample,
    TrainingContext,
    kl_terms,
)
from vae_lightning.rules import NonNegative, checked


@checked
class BetaTCVAE(Objective):
    """beta-TC-VAE (Chen et al., 2018): the KL term split into index-code mutual information, total correlation
    and dimension-wise KL, weighted ``alpha``, ``beta`` and ``gamma``:

        loss = recon + alpha E[log q(z|x) - log q(z)] + beta E[log q(z) - sum_d log q(z_d)]
                     + gamma E[sum_d log q(z_d) - log p(z)]

    with the aggregate posterior estimated by minibatch-weighted sampling over the batch of M:
    log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M), and likewise per dimension for log q(z_id); N is the
    training-set size (from the context, so it follows the data and ``val_fraction``). alpha = beta = gamma = 1
    is the ELBO with a one-sample KL."""

    #: its minibatch estimate of q(z) is a mixture of the encoder's Gaussians
    needs_diagonal_posterior: ClassVar[bool] = True
    #: with one example the total-correlation term is a constant
    min_batch_size: ClassVar[int] = 2

    def __init__(self, beta: NonNegative = 6.0, alpha: NonNegative = 1.0, gamma: NonNegative = 1.0) -> None:
        self.beta, self.alpha, self.gamma = beta, alpha, gamma

    def decomposition(self, sample: PosteriorSample, log_p_z: torch.Tensor, dataset_size: int) -> dict[str, torch.Tensor]:
        """Per-example mutual information, total correlation and dimension-wise KL (nats) at the first sample."""
        if dataset_size < 1:
            raise ConfigError("model/objective=beta_tc needs the training-set size; the data module reports none")
        z, mu, logvar = sample.z[0], sample.mu, sample.logvar  # (M, D)
        # log q(z_id | x_j) for every pair (i, j) and dimension d: (M, M, D)
        pairwise = -0.5 * (LOG_2PI + logvar + (z.unsqueeze(1) - mu).pow(2) * torch.exp(-logvar))
        log_nm = math.log(dataset_size * z.shape[0])
        log_q_z = torch.logsumexp(pairwise.sum(-1), dim=1) - log_nm
        log_q_zd = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(-1)
        log_q_z_x = diagonal_gaussian_log_prob(z, mu, logvar)
        return {"mutual_information": log_q_z_x - log_q_z, "total_correlation": log_q_z - log_q_zd,
                "dimension_kl": log_q_zd - log_p_z}

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        if context.step == 0 and len(x) < 2:  # the first batch is a whole one: data.batch_size is 1
            raise ConfigError("data.batch_size=1 is not allowed with model/objective=beta_tc; its minibatch estimate "
                              "of q(z) needs a batch of at least 2 (with one example the TC term is a constant)")
        sample = model.sample_posterior(x, n_samples=1)
        parts = self.decomposition(sample, model.prior.log_prob(sample.z[0]), context.dataset_size)
        recon = -sample.log_px_z[0]
        penalty = (self.alpha * parts["mutual_information"] + self.beta * parts["total_correlation"]
                   + self.gamma * parts["dimension_kl"])
        kl, _ = kl_terms(model, sample)
        return ObjectiveTerms(loss=(recon + penalty).mean(), recon=recon, kl=kl)
