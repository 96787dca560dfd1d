"""The importance-weighted bound (Burda et al., 2016) as a training objective."""

import math

import torch

from vae_lightning.models.objectives.base import (
    LatentModel,
    Objective,
    ObjectiveTerms,
    TrainingContext,
    kl_terms,
    log_importance_weights,
)
from vae_lightning.rules import Count, checked


@checked
class IWAE(Objective):
    """The k-sample importance-weighted bound (Burda et al., 2016):
    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). k = 1 is the ELBO (with a one-sample KL);
    the bound tightens as k grows, and so does the gradient's target."""

    def __init__(self, k: Count = 5) -> None:
        self.k = k

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_posterior(x, n_samples=self.k)
        bound = torch.logsumexp(log_importance_weights(model.prior, sample), dim=0) - math.log(self.k)
        kl, _ = kl_terms(model, sample)
        return ObjectiveTerms(loss=-bound.mean(), recon=-sample.log_px_z[0].detach(), kl=kl.detach())
