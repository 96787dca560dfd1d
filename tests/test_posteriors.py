"""Posteriors q(z|x): each flow's log-determinant against autograd's Jacobian, log q by the change of variables,
the identity flow equals the diagonal Gaussian, and the importance-weighted NLL of a flow is a valid bound."""

import math

import pytest
import torch

from vae_lightning.models.gaussians import diagonal_gaussian_log_prob
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.marginal_likelihood import importance_weighted_nll
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.objectives.base import kl_terms
from vae_lightning.models.posteriors.diagonal_gaussian import DiagonalGaussianPosterior
from vae_lightning.models.posteriors.iaf import IAFPosterior
from vae_lightning.models.posteriors.planar_flow import PlanarFlowPosterior
from vae_lightning.models.vae import VAE

D = 3


def flows(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    planar = PlanarFlowPosterior(D, steps=3, init_std=1.0)  # far from the identity
    iaf = IAFPosterior(D, steps=2, hidden=16)
    for parameter in iaf.parameters():  # the zero-initialised output layers too: a flow that does something
        torch.nn.init.normal_(parameter, std=0.5)
    return {"planar": planar, "iaf": iaf}


@pytest.mark.parametrize("name", ["planar", "iaf"])
def test_log_q_is_the_base_density_minus_the_log_determinant_of_autograds_jacobian(name):
    """For one example: log q(z_K) = log N(z_0; mu, sigma) - log|det dz_K/dz_0|, with the Jacobian from autograd."""
    flow = flows()[name].double()
    torch.manual_seed(1)
    mu, logvar = torch.randn(1, D, dtype=torch.float64), torch.randn(1, D, dtype=torch.float64) * 0.3
    sigma = torch.exp(0.5 * logvar)
    for _ in range(5):
        z0 = mu + sigma * torch.randn(1, 1, D, dtype=torch.float64)
        z, log_q = flow(mu, logvar, (z0 - mu) / sigma)

        def transform(point: torch.Tensor) -> torch.Tensor:
            return flow(mu, logvar, ((point - mu) / sigma).view(1, 1, D))[0].view(D)

        jacobian = torch.autograd.functional.jacobian(transform, z0.view(D))
        expected = diagonal_gaussian_log_prob(z0.view(D), mu.view(D), logvar.view(D)) - torch.linalg.slogdet(jacobian)[1]
        torch.testing.assert_close(log_q.view(()), expected)
        assert not torch.allclose(z.view(D), z0.view(D))  # the flow moved the sample


def test_planar_steps_stay_invertible_whatever_their_parameters():
    """w . u_hat = -1 + softplus(w . u) >= -1, the condition for tanh steps to be invertible (checked in float64)."""
    flow = PlanarFlowPosterior(D, steps=50, init_std=3.0).double()
    assert ((flow.constrained_u() * flow.w).sum(-1) >= -1 - 1e-9).all()  # rounding of w . u ~ -40 aside


def test_the_identity_planar_flow_is_the_diagonal_gaussian_exactly():
    flow = PlanarFlowPosterior(D, steps=4)
    with torch.no_grad():
        flow.u.zero_()
        flow.w.zero_()
        flow.b.normal_()
    torch.manual_seed(2)
    mu, logvar, eps = torch.randn(5, D), torch.randn(5, D), torch.randn(7, 5, D)
    z, log_q = flow(mu, logvar, eps)
    z_diag, log_q_diag = DiagonalGaussianPosterior(D)(mu, logvar, eps)
    assert torch.equal(z, z_diag) and torch.equal(log_q, log_q_diag)


def flow_vae(posterior) -> VAE:
    torch.manual_seed(0)
    return VAE(encoder=MLPEncoder, decoder=MLPDecoder, likelihood=BernoulliLikelihood(), latent_dim=D,
               posterior=posterior).eval()


@pytest.mark.parametrize("name", ["planar", "iaf"])
def test_the_importance_weighted_nll_of_a_flow_is_a_valid_bound(name):
    """k = 1 is the negative ELBO at the same noise (recon + log q - log p); the bound tightens with k."""
    model = flow_vae(lambda latent_dim: flows()[name])
    x = (torch.rand(64, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        torch.manual_seed(3)
        one = importance_weighted_nll(model, x, k=1)
        torch.manual_seed(3)
        sample = model.sample_posterior(x, n_samples=1)
        kl, per_dim = kl_terms(model, sample)
        torch.testing.assert_close(one, -sample.log_px_z[0] + kl)
        assert per_dim is None  # no closed form: the one-sample estimate log q - log p
        means = [importance_weighted_nll(model, x, k=k).mean().item() for k in (1, 10, 100)]
        # k = 10 by hand, at the same noise: Bernoulli and N(0, I) from torch.distributions, log q(z_K|x) from
        # the flow (its Jacobian is checked against autograd above)
        torch.manual_seed(5)
        estimate = importance_weighted_nll(model, x, k=10)
        torch.manual_seed(5)
        mu, logvar = model.encode(x)
        z, log_q = model.posterior(mu, logvar, torch.randn(10, 64, D))
        log_px_z = torch.distributions.Bernoulli(logits=model.decoder(z)).log_prob(x).sum((-3, -2, -1))
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        expected = -(torch.logsumexp(log_px_z + log_pz - log_q, dim=0) - math.log(10))
        torch.testing.assert_close(estimate, expected, rtol=0, atol=1e-3)
    assert means[0] > means[1] > means[2] and all(math.isfinite(m) for m in means)


def test_the_diagonal_posterior_keeps_the_closed_form_kl():
    model = flow_vae(DiagonalGaussianPosterior)
    sample = model.sample_posterior((torch.rand(8, 1, 28, 28) > 0.5).float())
    kl, per_dim = kl_terms(model, sample)
    q = torch.distributions.Normal(sample.mu, torch.exp(0.5 * sample.logvar))
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))  # (B, D)
    torch.testing.assert_close(per_dim, expected)
    torch.testing.assert_close(kl, expected.sum(-1))


def test_the_post_hoc_mixture_samples_the_encodings_distribution():
    """Two well separated clusters of encodings: the mixture's draws reproduce their mean, covariance and the
    share of each cluster, in random order."""
    from vae_lightning.analysis.posthoc_sampling import gmm_samples

    torch.manual_seed(4)
    encodings = torch.cat([torch.randn(3000, 2) * 0.3 + torch.tensor([4.0, 0.0]),
                           torch.randn(1000, 2) * 0.5 - torch.tensor([4.0, 0.0])])
    z = gmm_samples(encodings, 8000, components=2)
    assert z.shape == (8000, 2) and z.dtype == torch.float32
    torch.testing.assert_close(z.mean(0), encodings.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), torch.cov(encodings.T), atol=0.15, rtol=0)
    assert (z[:, 0] > 0).float().mean().item() == pytest.approx(0.75, abs=0.02)
    assert 0.6 < (z[:4000, 0] > 0).float().mean().item() < 0.9  # shuffled, not grouped by component


def test_the_post_hoc_mixture_is_fitted_where_the_decoder_reads():
    """For a flow the encodings are z_K = f(mu) (the flow at zero noise), not the encoder's mean z_0."""
    from vae_lightning.analysis.posthoc_sampling import encoding

    model = flow_vae(lambda latent_dim: flows()["planar"])
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        mu = model.encode(x)[0]
        z = mu  # the planar steps by hand, from z_0 = mu
        for u, w, b in zip(model.posterior.constrained_u(), model.posterior.w, model.posterior.b):
            z = z + torch.tanh(z @ w + b).unsqueeze(-1) * u
        torch.testing.assert_close(encoding(model, x), z)
        assert (encoding(model, x) - mu).abs().max() > 0.1  # the flow moved it
        diagonal = flow_vae(DiagonalGaussianPosterior)
        torch.testing.assert_close(encoding(diagonal, x), diagonal.encode(x)[0])
