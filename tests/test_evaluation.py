"""Literature-style evaluation: the importance-weighted NLL, active units, the Frechet distance."""

import math
import warnings

import lightning as L
import pytest
import torch
from torch import nn

from vae_lightning.analysis.frechet import DigitClassifier, cached_test_statistics, frechet_distance
from vae_lightning.data.batching import tensor_loader
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.likelihoods.gaussian import GaussianLikelihood
from vae_lightning.models.marginal_likelihood import importance_weighted_nll
from vae_lightning.models.networks.base import Decoder, Encoder
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.vae import VAE


def small_vae(latent_dim: int = 4, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(encoder=MLPEncoder, decoder=MLPDecoder, likelihood=BernoulliLikelihood(), latent_dim=latent_dim).eval()


def repeated(fn, reps: int) -> torch.Tensor:
    return torch.stack([fn() for _ in range(reps)])  # (reps, B)


def test_k1_importance_weighted_estimate_is_the_negative_elbo_in_expectation():
    model = small_vae()
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    torch.manual_seed(1)
    with torch.no_grad():
        iw = repeated(lambda: importance_weighted_nll(model, x, 1), 3000)
        elbo = repeated(lambda: model(x)["recon"] + model(x)["kl"], 3000)
    standard_error = (iw.var(0) / len(iw) + elbo.var(0) / len(elbo)).sqrt()
    assert torch.all((iw.mean(0) - elbo.mean(0)).abs() < 4 * standard_error + 1e-3), (iw.mean(0), elbo.mean(0))


def test_more_importance_samples_give_a_tighter_bound():
    model = small_vae()
    x = (torch.rand(8, 1, 28, 28) > 0.5).float()
    torch.manual_seed(2)
    with torch.no_grad():
        estimates = {k: repeated(lambda k=k: importance_weighted_nll(model, x, k), 50) for k in (1, 10, 100, 1000)}
    means = [estimates[k].mean().item() for k in (1, 10, 100, 1000)]
    spreads = [estimates[k].std(0).mean().item() for k in (1, 10, 100, 1000)]
    assert means[0] > means[1] > means[2] > means[3], means  # lower NLL with more samples
    assert spreads[0] > spreads[1] > spreads[2] > spreads[3], spreads  # and less noise


def test_chunking_does_not_change_the_estimate():
    model = small_vae()
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    torch.manual_seed(3)
    chunked = importance_weighted_nll(model, x, 300, chunk_elements=5 * 7)  # 7 samples per chunk
    torch.manual_seed(3)
    single = importance_weighted_nll(model, x, 300, chunk_elements=10**6)  # one chunk
    # different random streams, same estimator: equal within Monte Carlo noise, both finite
    assert torch.isfinite(chunked).all() and (chunked - single).abs().max() < 2.0


class LinearDecoder(Decoder):
    def __init__(self, image_shape, latent_dim, out_channels):
        super().__init__()
        self.shape = (out_channels, *image_shape[1:])
        self.linear = nn.Linear(latent_dim, math.prod(self.shape))

    def forward(self, z):
        return self.linear(z).unflatten(-1, self.shape)

    def set_output_bias(self, bias):
        self.linear.bias.data.copy_(bias.flatten())


class AmortisedLinearEncoder(Encoder):
    """A deliberately imperfect q(z|x): linear mean, one fixed variance."""

    def __init__(self, image_shape, latent_dim):
        super().__init__()
        self.linear = nn.Linear(math.prod(image_shape), latent_dim)
        self.logvar = nn.Parameter(torch.full((latent_dim,), -0.5))

    def forward(self, x):
        mu = self.linear(x.flatten(1))
        return mu, self.logvar.expand_as(mu)


def test_estimate_converges_to_the_exact_likelihood_of_probabilistic_pca():
    """x = W z + b + sigma * noise, z ~ N(0, I): p(x) = N(b, W W^T + sigma^2 I) in closed form."""
    torch.manual_seed(4)
    sigma = 0.5
    likelihood = GaussianLikelihood(sigma_mode="fixed", sigma=sigma, mean_activation="identity")
    model = VAE(AmortisedLinearEncoder, LinearDecoder, likelihood, image_shape=(1, 2, 3), latent_dim=2).double()
    model.eval()
    W, b = model.decoder.linear.weight.detach(), model.decoder.linear.bias.detach()
    # q(z|x): the exact posterior mean, but a diagonal variance twice the posterior's (imperfect, overdispersed)
    posterior_precision = (W.T @ W + sigma**2 * torch.eye(2, dtype=torch.float64)) / sigma**2
    posterior_cov = torch.linalg.inv(posterior_precision)
    gain = posterior_cov @ W.T / sigma**2
    with torch.no_grad():
        model.encoder.linear.weight.copy_(gain)
        model.encoder.linear.bias.copy_(-gain @ b)
        model.encoder.logvar.copy_(torch.log(2 * posterior_cov.diagonal()))
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(6, dtype=torch.float64))
    x = marginal.sample((16,)).view(16, 1, 2, 3)
    exact = -marginal.log_prob(x.flatten(1))
    nll_1 = torch.stack([importance_weighted_nll(model, x, 1) for _ in range(200)]).mean(0)
    nll_100 = importance_weighted_nll(model, x, 100)
    nll_big = importance_weighted_nll(model, x, 50_000)
    assert (nll_1 - exact).mean() > 0.05  # the one-sample bound is visibly loose
    assert (nll_big - exact).abs().mean() < (nll_100 - exact).abs().mean()
    torch.testing.assert_close(nll_big, exact, atol=0.01, rtol=0)


class KnownActivityEncoder(Encoder):
    """mu_0, mu_1 follow the input (variance over x >> 1e-2); mu_2, mu_3 barely move (<< 1e-2)."""

    def __init__(self, image_shape, latent_dim):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        signal = x.flatten(1)[:, :2] * 4.0
        quiet = x.flatten(1)[:, 2:4] * 0.01
        mu = torch.cat([signal, quiet], dim=1) + self.dummy
        return mu, torch.zeros_like(mu)


def test_active_units_counted_on_a_constructed_encoder():
    model = VAE(KnownActivityEncoder, MLPDecoder, BernoulliLikelihood(), latent_dim=4, iw_samples=2)
    x = torch.rand(500, 1, 28, 28)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.test(model, dataloaders=tensor_loader(x, torch.zeros(500, dtype=torch.long), 100, shuffle=False),
                 verbose=False)
    assert trainer.callback_metrics["test/active_units"].item() == 2
    variances = model.test_details["mu_variance_per_dim"]
    assert variances[0] > 1.0 and variances[3] < 1e-3
    expected = (x.flatten(1)[:, :4] * torch.tensor([4.0, 4.0, 0.01, 0.01])).var(0, unbiased=False)
    torch.testing.assert_close(torch.tensor(variances), expected, rtol=1e-3, atol=1e-7)
    kl = model.test_details["kl_per_dim"]
    assert kl[0] > kl[2] and len(kl) == 4


def reference_frechet(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """||m_a - m_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)), with scipy's matrix square root, in float64."""
    import numpy as np
    from scipy.linalg import sqrtm

    a, b = features_a.double().numpy(), features_b.double().numpy()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # the product is singular (dead ReLU features): its root is still exact here
        warnings.simplefilter("ignore")
        root = sqrtm(cov_a @ cov_b).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_the_frechet_distance_matches_a_reference_and_is_zero_for_the_test_images_themselves(tmp_path):
    torch.manual_seed(5)
    classifier = DigitClassifier().eval()
    test_images, labels = torch.rand(400, 1, 28, 28), torch.randint(0, 10, (400,))
    samples = torch.rand(300, 1, 28, 28) * 4  # another distribution of images
    statistics = cached_test_statistics(tmp_path, classifier, test_images, labels)
    with torch.no_grad():
        expected = reference_frechet(classifier.features(samples), classifier.features(test_images))
    assert expected > 1.0 and frechet_distance(classifier, samples, statistics) == pytest.approx(expected, rel=1e-3)
    assert frechet_distance(classifier, test_images, statistics) == pytest.approx(0.0, abs=1e-3)


def test_the_test_images_statistics_are_computed_once_per_classifier_and_test_set(tmp_path):
    torch.manual_seed(0)
    classifier = DigitClassifier().eval()
    images, labels = torch.rand(60, 1, 28, 28), torch.randint(0, 10, (60,))
    first = cached_test_statistics(tmp_path, classifier, images, labels)
    with torch.no_grad():
        features = classifier.features(images).double()
        assert float(first["accuracy"]) == (classifier(images).argmax(-1) == labels).double().mean().item()
    assert int(first["real_features_num_samples"]) == 60
    torch.testing.assert_close(first["real_features_sum"], features.sum(0))
    torch.testing.assert_close(first["real_features_cov_sum"], features.T @ features)

    passes = []
    classifier.classify.register_forward_pre_hook(lambda module, inputs: passes.append(1))
    again = cached_test_statistics(tmp_path, classifier, images, labels)
    assert passes == [] and all(torch.equal(again[key], first[key]) for key in first)  # read, not recomputed
    cached_test_statistics(tmp_path, classifier, images[:30], labels[:30])  # other test images: their own file
    with torch.no_grad():
        classifier.classify.bias.add_(1.0)  # other weights (a retrained classifier): their own file
    cached_test_statistics(tmp_path, classifier, images, labels)
    assert len(passes) == 2 and len(list(tmp_path.glob("test_statistics_v3_*.pt"))) == 3
