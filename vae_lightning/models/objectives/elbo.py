"""The evidence lower bound with one posterior sample; beta, KL warm-up and free bits."""

import torch

from vae_lightning.models.objectives.base import LatentModel, Objective, ObjectiveTerms, TrainingContext, kl_terms
from vae_lightning.rules import NonNegative, NonNegativeInt, checked


@checked
class ELBO(Objective):
    """-E_q[log p(x|z)] + w * KL with one posterior sample.

    w = ``beta`` (1: the ELBO; other values: beta-VAE), rising linearly from 0 over ``kl_warmup_steps``.
    ``free_bits`` = lambda nats per latent dimension (Kingma et al., 2016): the KL of dimension j enters the
    loss as max(lambda, batch mean of KL_j), so dimensions below lambda get no pressure towards the prior.
    Priors without a closed-form KL have no per-dimension KL; there the whole KL is floored at lambda * D.
    The logged ``train/kl`` is the KL itself, without the floor or the weight.
    """

    kl_weighted = True

    def __init__(self, beta: NonNegative = 1.0, kl_warmup_steps: NonNegativeInt = 0, free_bits: NonNegative = 0.0) -> None:
        self.beta, self.kl_warmup_steps, self.free_bits = beta, kl_warmup_steps, free_bits

    def kl_weight(self, context: TrainingContext) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, context.step / self.kl_warmup_steps)

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_posterior(x, n_samples=1)
        recon = -sample.log_px_z[0]
        kl, kl_per_dim = kl_terms(model, sample)
        if self.free_bits <= 0:
            penalty = kl.mean()
        elif kl_per_dim is not None:
            penalty = kl_per_dim.mean(0).clamp(min=self.free_bits).sum()
        else:
            penalty = kl.mean().clamp(min=self.free_bits * sample.mu.shape[-1])
        return ObjectiveTerms(loss=recon.mean() + self.kl_weight(context) * penalty, recon=recon, kl=kl)
