"""Two stochastic layers: log q and log p against torch.distributions, the per-layer KL, the importance-weighted NLL
against brute-force quadrature on a small model, sampling from the layered prior, and the refusals."""

import math
from functools import partial

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vae_lightning.errors import ConfigError
from vae_lightning.models.latents.two_layer import TwoLayerLatents
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.marginal_likelihood import importance_weighted_nll
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.objectives.base import kl_terms
from vae_lightning.models.objectives.beta_tc import BetaTCVAE
from vae_lightning.models.posteriors.iaf import IAFPosterior
from vae_lightning.models.priors.mixture import GaussianMixturePrior
from vae_lightning.models.vae import VAE


def two_layer_vae(d1: int = 3, d2: int = 2, image_shape=(1, 28, 28), **kwargs) -> VAE:
    torch.manual_seed(0)
    model = VAE(encoder=partial(MLPEncoder, hidden_dims=(16,)), decoder=partial(MLPDecoder, hidden_dims=(16,)),
                likelihood=BernoulliLikelihood(), latent_dim=d1, image_shape=image_shape,
                latents=partial(TwoLayerLatents, units=d2, hidden_dims=(8,)), **kwargs)
    return model.eval()


def normal(mu_logvar: tuple[torch.Tensor, torch.Tensor]) -> Normal:
    mu, logvar = mu_logvar
    return Normal(mu, torch.exp(0.5 * logvar))


def test_log_q_and_log_p_are_the_products_of_each_layers_gaussians():
    """log q(h1, h2|x) = log N(h1; encoder) + log N(h2; up(h1)); log p(h1, h2) = log N(h2; 0, I) + log N(h1; down(h2)),
    each from torch.distributions on the layers' own networks."""
    model = two_layer_vae()
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        sample = model.sample_posterior(x, n_samples=6)
        assert sample.z.shape == (6, 4, 5) and sample.log_q.shape == (6, 4)
        h1, h2 = sample.z[..., :3], sample.z[..., 3:]
        layers = model.posterior.layers
        log_q = normal(model.encode(x)).log_prob(h1).sum(-1) + normal(layers.infer(h1)).log_prob(h2).sum(-1)
        log_p = Normal(0.0, 1.0).log_prob(h2).sum(-1) + normal(layers.generate(h2)).log_prob(h1).sum(-1)
        torch.testing.assert_close(sample.log_q, log_q)
        torch.testing.assert_close(model.prior.log_prob(sample.z), log_p)
        # the decoder reads h1 only: p(x|z) does not change with h2
        moved = torch.cat([h1, h2 + 3.0], dim=-1)
        torch.testing.assert_close(model.decode(moved), model.decode(sample.z))


def test_each_layers_kl_and_their_sum():
    """kl_1 = log q(h1|x) - log p(h1|h2), kl_2 = log q(h2|h1) - log p(h2), summing to the joint estimate."""
    model = two_layer_vae()
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    eps = torch.randn(5, 5)
    with torch.no_grad():
        out = model(x, eps=eps)
        sample = model.sample_posterior(x, eps=eps.unsqueeze(0))
        h1, h2 = sample.z[0, :, :3], sample.z[0, :, 3:]
        layers = model.posterior.layers
        kl_1 = normal(model.encode(x)).log_prob(h1).sum(-1) - normal(layers.generate(h2)).log_prob(h1).sum(-1)
        kl_2 = normal(layers.infer(h1)).log_prob(h2).sum(-1) - Normal(0.0, 1.0).log_prob(h2).sum(-1)
    torch.testing.assert_close(out["kl_1"], kl_1)
    torch.testing.assert_close(out["kl_2"], kl_2)
    torch.testing.assert_close(out["kl"], kl_1 + kl_2)
    assert out["kl_per_dim"] is None and out["mu"].shape == (5, 5)


def test_the_importance_weighted_nll_matches_quadrature_of_both_layers():
    """On a 1 + 1-dimensional model of 4 Bernoulli pixels, -log p(x) = -log of the integral of
    p(x|h1) p(h1|h2) p(h2) over a fine grid; the k = 200,000 estimate lands on it (within 0.01 nats), and k = 1 is
    the negative ELBO at the same noise."""
    model = two_layer_vae(d1=1, d2=1, image_shape=(1, 2, 2)).double()
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64).view(2, 1, 2, 2)
    grid = torch.linspace(-9, 9, 1201, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    h1, h2 = torch.meshgrid(grid, grid, indexing="ij")
    z = torch.stack([h1, h2], dim=-1).view(-1, 2)
    with torch.no_grad():
        params = model.decode(z).unsqueeze(1).expand(-1, len(x), -1, -1, -1)
        log_joint = model.likelihood.log_prob(params, x) + model.prior.log_prob(z).unsqueeze(1)
        exact = -(torch.logsumexp(log_joint, dim=0) + 2 * math.log(step))
        torch.manual_seed(1)
        estimate = importance_weighted_nll(model, x, k=200_000, chunk_elements=200_000)
        torch.manual_seed(2)
        one = importance_weighted_nll(model, x, k=1)
        torch.manual_seed(2)
        sample = model.sample_posterior(x)
    torch.testing.assert_close(estimate, exact, atol=0.01, rtol=0)
    torch.testing.assert_close(one, -sample.log_px_z[0] + kl_terms(model, sample)[0])


def test_the_layered_prior_samples_h2_then_h1_given_h2():
    """h2 ~ N(0, I); (h1 - mu(h2)) / sigma(h2) ~ N(0, I): moments of 20,000 draws within 5 standard errors."""
    model = two_layer_vae()
    with torch.no_grad():
        z = model.prior.sample(20_000, generator=torch.Generator().manual_seed(0))
        mu, logvar = model.prior.lower(z[:, 3:])
        standardised = torch.cat([(z[:, :3] - mu) * torch.exp(-0.5 * logvar), z[:, 3:]], dim=-1)
    tolerance = 5 / math.sqrt(len(z))
    assert standardised.mean(0).abs().max() < tolerance
    assert (standardised.var(0) - 1).abs().max() < 5 * math.sqrt(2 / len(z))
    assert model.sample_images(3).shape == (3, 1, 28, 28)


def test_flows_and_priors_of_h2_compose_and_the_weights_are_registered_once():
    model = two_layer_vae(posterior=lambda latent_dim: IAFPosterior(latent_dim, steps=1, hidden=8),
                          prior=partial(GaussianMixturePrior, n_components=3))
    names = [name for name, _ in model.named_parameters()]
    assert sum(name.startswith("posterior.layers.") for name in names) == 8  # up and down: 2 linear layers each
    assert sorted(name for name in names if name.startswith("prior.")) == [
        "prior.inner.logvars", "prior.inner.means", "prior.inner.weight_logits"]  # p(h2) only; p(h1|h2) is shared
    assert any(name.startswith("posterior.inner.") for name in names)
    # log p(h1, h2) = log p(h2) (the mixture, of h2's 2 units) + log N(h1; p(h1|h2)), from torch.distributions
    z = torch.randn(4, 5)
    h1, h2 = z.split([3, 2], dim=-1)
    inner = model.prior.inner
    mixture = MixtureSameFamily(Categorical(logits=inner.weight_logits),
                                Independent(Normal(inner.means, torch.exp(0.5 * inner.logvars)), 1))
    expected = mixture.log_prob(h2) + normal(model.prior.lower(h2)).log_prob(h1).sum(-1)
    torch.testing.assert_close(model.prior.log_prob(z), expected)
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    assert torch.isfinite(importance_weighted_nll(model, x, k=4)).all()


def test_beta_tc_refuses_two_layers_when_the_model_is_built():
    with pytest.raises(ConfigError, match=r"^BetaTCVAE \(model.objective\) needs q\(z\|x\) to be the encoder's "
                                          r"diagonal Gaussian: .* one stochastic layer \(no model/latents\)$"):
        two_layer_vae(objective=BetaTCVAE())
