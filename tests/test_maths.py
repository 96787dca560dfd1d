"""The ELBO's pieces against torch.distributions, on random inputs."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_lightning.models.gaussians import (
    diagonal_gaussian_log_prob,
    kl_to_standard_normal,
    reparameterise,
    standard_normal_log_prob,
)
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.likelihoods.gaussian import GaussianLikelihood
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.vae import VAE

torch.manual_seed(0)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(64, 16) * 2, torch.randn(64, 16) * 3
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), expected, rtol=1e-5, atol=1e-5)


def test_kl_is_zero_only_at_the_prior():
    zero = kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4))
    assert torch.all(zero == 0)
    assert torch.all(kl_to_standard_normal(torch.full((3, 4), 0.1), torch.zeros(3, 4)) > 0)


def test_gaussian_log_densities_match_torch_distributions():
    z, mu, logvar = torch.randn(5, 32, 8), torch.randn(32, 8), torch.randn(32, 8)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    torch.testing.assert_close(diagonal_gaussian_log_prob(z, mu, logvar), q.log_prob(z))
    prior = Independent(Normal(torch.zeros(8), torch.ones(8)), 1)
    torch.testing.assert_close(standard_normal_log_prob(z), prior.log_prob(z))


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_log_prob_matches_torch_distributions(binary):
    logits = torch.randn(10, 1, 28, 28) * 4
    x = torch.rand(10, 1, 28, 28)
    x = (x > 0.5).float() if binary else x
    expected = Bernoulli(logits=logits, validate_args=False).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(BernoulliLikelihood().log_prob(logits, x), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("mode", ["fixed", "learned"])
def test_gaussian_shared_sigma_log_prob_matches_torch_distributions(mode):
    sigma = 0.37
    likelihood = GaussianLikelihood(sigma_mode=mode, sigma=sigma)
    params, x = torch.randn(10, 1, 28, 28), torch.rand(10, 1, 28, 28)
    expected = Normal(torch.sigmoid(params), sigma).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(likelihood.log_prob(params, x), expected, rtol=1e-5, atol=1e-3)


def test_gaussian_fixed_sigma_is_scaled_mse_plus_constant():
    """With fixed sigma, -log p = ||x - mu||^2 / (2 sigma^2) + D (log sigma + log(2 pi) / 2): the square and
    the constant are both there."""
    sigma, d = 0.5, 784
    likelihood = GaussianLikelihood(sigma_mode="fixed", sigma=sigma)
    params, x = torch.randn(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    sq_err = (x - torch.sigmoid(params)).pow(2).flatten(1).sum(-1)
    expected = sq_err / (2 * sigma**2) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    torch.testing.assert_close(-likelihood.log_prob(params, x), expected, rtol=1e-5, atol=1e-3)


def test_gaussian_per_pixel_sigma_log_prob_matches_torch_distributions():
    likelihood = GaussianLikelihood(sigma_mode="per_pixel")
    assert likelihood.params_per_pixel == 2
    params, x = torch.randn(6, 2, 28, 28), torch.rand(6, 1, 28, 28)
    params[:, 1] = params[:, 1].clamp(-3, 1)  # inside the clamp range
    expected = Normal(torch.sigmoid(params[:, :1]), torch.exp(params[:, 1:])).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(likelihood.log_prob(params, x), expected, rtol=1e-5, atol=1e-3)


def test_learned_sigma_is_a_parameter_and_fixed_sigma_is_not():
    learned = GaussianLikelihood("learned")
    assert [p is learned.log_sigma for p in learned.parameters()] == [True]
    assert list(GaussianLikelihood("fixed").parameters()) == []


def test_likelihoods_broadcast_over_a_sample_dimension():
    """log p(x|z) for k samples z: params (k, B, C, H, W), x (B, C, H, W) -> (k, B)."""
    params, x = torch.randn(3, 5, 1, 28, 28), (torch.rand(5, 1, 28, 28) > 0.5).float()
    for likelihood in (BernoulliLikelihood(), GaussianLikelihood()):
        out = likelihood.log_prob(params, x)
        assert out.shape == (3, 5)
        torch.testing.assert_close(out[1], likelihood.log_prob(params[1], x))


def test_reparameterised_samples_have_the_right_moments():
    mu, logvar = torch.tensor([1.0, -2.0]), torch.tensor([0.0, math.log(4.0)])
    z = reparameterise(mu.expand(200_000, 2), logvar.expand(200_000, 2))
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0]), atol=0.02, rtol=0)


def test_gradient_reaches_the_encoder_through_the_sample():
    """Only the reconstruction term (not the KL) is back-propagated: the encoder still gets gradients,
    because z = mu + sigma * eps is differentiable in mu and sigma."""
    model = VAE(encoder=MLPEncoder, decoder=MLPDecoder, likelihood=BernoulliLikelihood(), latent_dim=4)
    x = (torch.rand(8, 1, 28, 28) > 0.5).float()
    model(x)["recon"].sum().backward()
    head = model.encoder.head.weight.grad
    assert head is not None and torch.isfinite(head).all()
    mu_rows, logvar_rows = head[:4], head[4:]
    assert mu_rows.abs().sum() > 0 and logvar_rows.abs().sum() > 0


def test_negative_elbo_is_recon_plus_kl():
    model = VAE(encoder=MLPEncoder, decoder=MLPDecoder, likelihood=BernoulliLikelihood(), latent_dim=4)
    x = (torch.rand(8, 1, 28, 28) > 0.5).float()
    torch.manual_seed(1)
    out = model(x)
    mu, logvar = model.encode(x)
    torch.manual_seed(1)
    z = reparameterise(mu, logvar)
    log_px_z = Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(out["recon"], -log_px_z, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(out["kl"], kl_to_standard_normal(mu, logvar).sum(-1))
