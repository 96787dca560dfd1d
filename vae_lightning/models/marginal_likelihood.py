"""The test-set estimate of -log p(x): the importance-weighted bound with many samples (Burda et al., 2016)."""

import math

import torch

from vae_lightning.models.objectives.base import LatentModel, PosteriorSample, log_importance_weights


@torch.no_grad()
def importance_weighted_nll(model: LatentModel, x: torch.Tensor, k: int, chunk_elements: int = 4096) -> torch.Tensor:
    """-log p(x) estimated with k importance samples from the model's q(z|x), per example (nats):
    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), an upper bound on -log p(x) that tightens as k grows.

    The samples are decoded in chunks of at most ``chunk_elements`` decoder passes and folded into a running
    log-sum-exp, so memory does not grow with k; the encoder runs once.
    """
    mu, logvar = model.encode(x)
    chunk = max(1, chunk_elements // x.shape[0])
    total = torch.full((x.shape[0],), -math.inf, device=x.device, dtype=x.dtype)
    for start in range(0, k, chunk):
        eps = torch.randn((min(chunk, k - start), len(mu), model.posterior.latent_dim), dtype=mu.dtype, device=mu.device)
        z, log_q = model.posterior(mu, logvar, eps)
        sample = PosteriorSample(mu=mu, logvar=logvar, z=z, log_q=log_q, log_px_z=model.likelihood.log_prob(model.decode(z), x))
        total = torch.logaddexp(total, torch.logsumexp(log_importance_weights(model.prior, sample), dim=0))
    return -(total - math.log(k))


@torch.no_grad()
def elbo_given_each_class(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The one-sample ELBO of log p(x|y) of each example at each of the K classes (B, K), at the noise ``eps``
    (B, D): a cheap stand-in for :func:`log_px_given_each_class` (validation)."""
    classes = torch.arange(model.labels.n_classes, device=x.device)
    return torch.stack([-sum(model(x, eps, c.expand(len(x)))[name] for name in ("recon", "kl")) for c in classes], -1)


@torch.no_grad()
def log_px_given_each_class(model, x: torch.Tensor, k: int, chunk_elements: int = 4096) -> torch.Tensor:
    """log p(x|y) of each example at each of the K classes (B, K), each by :func:`importance_weighted_nll` with
    k samples from q(z|x, y). With the uniform p(y), log p(x) = logsumexp_y log p(x|y) - log K: the sum over the
    classes is exact, the sampling is over z only."""
    classes = torch.arange(model.labels.n_classes, device=x.device)
    return torch.stack([-importance_weighted_nll(model.given(c.expand(len(x))), x, k, chunk_elements)
                        for c in classes], dim=-1)
