"""Decoder distributions for 8-bit images: the continuous Bernoulli against torch.distributions, the
discretised logistic's normalisation, and one 8-bit scale for bits/dim."""

import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli

from vae_lightning.command_line import config_groups
from vae_lightning.data.datamodule import DigitsDataModule, datamodule_for
from vae_lightning.errors import ConfigError
from vae_lightning.models.build import build_model
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.likelihoods.continuous_bernoulli import ContinuousBernoulliLikelihood, log_normaliser
from vae_lightning.models.likelihoods.discretised_logistic import DiscretisedLogisticLikelihood
from vae_lightning.models.likelihoods.gaussian import GaussianLikelihood

# lambda on a grid through the unstable point 1/2 and out to both ends
LAMBDAS = [1e-6, 1e-4, 0.01, 0.2, 0.49, 0.499, 0.4999, 0.5 - 1e-6, 0.5, 0.5 + 1e-6, 0.5001, 0.501, 0.51, 0.8, 0.99,
           1 - 1e-4, 1 - 1e-6]
LEVELS = (torch.arange(256, dtype=torch.float64) / 255).view(256, 1, 1, 1)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_continuous_bernoulli_log_prob_matches_torch_on_a_grid_through_one_half(dtype, atol):
    lam = torch.tensor(LAMBDAS, dtype=torch.float64)
    x = torch.tensor([0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0], dtype=torch.float64)
    lam_grid, x_grid = torch.meshgrid(lam, x, indexing="ij")
    expected = ContinuousBernoulli(probs=lam_grid).log_prob(x_grid)  # float64 reference
    params = torch.logit(lam_grid).to(dtype).reshape(-1, 1, 1, 1)
    ours = ContinuousBernoulliLikelihood().log_prob(params, x_grid.to(dtype).reshape(-1, 1, 1, 1))
    torch.testing.assert_close(ours.double(), expected.reshape(-1), atol=atol, rtol=1e-6)


def test_continuous_bernoulli_normaliser_is_smooth_and_right_at_one_half():
    logits = torch.tensor([-1e-2 - 1e-9, -1e-2, 0.0, 1e-2, 1e-2 + 1e-9], dtype=torch.float64, requires_grad=True)
    values = log_normaliser(logits)
    assert values[2].item() == pytest.approx(math.log(2), abs=1e-15)  # C(1/2) = 2
    # no jump where the Taylor series hands over to the closed form
    assert abs(values[0] - values[1]).item() < 1e-9 and abs(values[3] - values[4]).item() < 1e-9
    values.sum().backward()
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(logits.grad, logits.detach() / 6, atol=1e-6, rtol=0)  # d/dl (l^2 / 12)


def test_continuous_bernoulli_density_integrates_to_one():
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    for logit in (-8.0, -1.0, 0.0, 1e-3, 2.0, 8.0):
        params = torch.full((len(x), 1, 1, 1), logit, dtype=torch.float64)
        density = ContinuousBernoulliLikelihood().log_prob(params, x.view(-1, 1, 1, 1)).exp()
        assert torch.trapezoid(density, x).item() == pytest.approx(1.0, abs=1e-6), logit


def logistic_params(likelihood: DiscretisedLogisticLikelihood, mean: float, log_scale: float) -> torch.Tensor:
    """Parameters of one pixel, repeated for the 256 levels; mixtures get unequal weights and spread means."""
    k = likelihood.components
    if k == 1:
        one = torch.tensor([mean, log_scale])
    else:
        one = torch.cat([torch.linspace(-2, 1, k), mean + torch.linspace(-0.3, 0.3, k), torch.full((k,), log_scale)])
    return one.view(1, -1, 1, 1).expand(256, -1, 1, 1)


@pytest.mark.parametrize("components", [1, 3])
@pytest.mark.parametrize("mean", [-50.0, -1.0, 0.0, 1e-3, 0.5, 0.999, 1.0, 2.0, 50.0])
@pytest.mark.parametrize("log_scale", [-20.0, -7.0, -4.0, 0.0, 3.0, 20.0])
def test_discretised_logistic_256_probabilities_sum_to_one(components, mean, log_scale):
    likelihood = DiscretisedLogisticLikelihood(components)
    probabilities = likelihood.log_prob(logistic_params(likelihood, mean, log_scale), LEVELS.float()).exp()
    assert torch.isfinite(probabilities).all() and (probabilities >= 0).all()
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_discretised_logistic_bins_are_the_logistic_mass_of_each_pixel_level():
    likelihood = DiscretisedLogisticLikelihood(1)
    mean, log_scale = 0.37, -3.1
    params = torch.tensor([mean, log_scale], dtype=torch.float64).view(1, 2, 1, 1).expand(256, -1, -1, -1)
    ours = likelihood.log_prob(params, LEVELS).exp()
    # the logistic's CDF, subtracted naively in float64 at the bin edges (k +- 1/2) / 255, ends open
    edges = torch.cat([torch.tensor([-math.inf]), (torch.arange(255, dtype=torch.float64) + 0.5) / 255,
                       torch.tensor([math.inf])])
    cdf = torch.sigmoid((edges - mean) / math.exp(log_scale))
    expected = cdf[1:] - cdf[:-1]
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-9)


def test_discretised_logistic_mixture_is_the_weighted_sum_of_its_components():
    mixture = DiscretisedLogisticLikelihood(2)
    single = DiscretisedLogisticLikelihood(1)
    logits, means, log_scales = torch.tensor([0.3, -0.9]), torch.tensor([0.2, 0.7]), torch.tensor([-2.5, -4.0])
    params = torch.cat([logits, means, log_scales]).view(1, 6, 1, 1).double()
    weights = torch.softmax(logits.double(), 0)
    x = torch.tensor([0.0, 40 / 255, 128 / 255, 1.0], dtype=torch.float64).view(4, 1, 1, 1)
    expected = sum(
        weights[i] * single.log_prob(torch.stack([means[i], log_scales[i]]).view(1, 2, 1, 1).double(), x).exp()
        for i in range(2)
    )
    torch.testing.assert_close(mixture.log_prob(params, x).exp(), expected)


def test_discretised_logistic_mean_and_samples_are_its_expectation_and_its_levels():
    likelihood = DiscretisedLogisticLikelihood(3)
    params = logistic_params(likelihood, 0.4, -2.0)[:1].double()
    probabilities = likelihood.log_prob(params.expand(256, -1, -1, -1), LEVELS).exp()
    expected_mean = (probabilities * LEVELS.flatten()).sum()
    assert likelihood.mean(params).item() == pytest.approx(expected_mean.item(), abs=1e-9)
    for components, mean, log_scale in [(1, 0.4, -2.0), (1, -0.3, -6.5), (1, 1.2, -7.0), (1, 0.5, 2.0), (2, 0.99, -5.0)]:
        other = DiscretisedLogisticLikelihood(components)  # one logistic, near and beyond the end bins, narrow, wide
        one_pixel = logistic_params(other, mean, log_scale)[:1].double()
        levels_p = other.log_prob(one_pixel.expand(256, -1, -1, -1), LEVELS).exp()
        assert other.mean(one_pixel).item() == pytest.approx((levels_p * LEVELS.flatten()).sum().item(), abs=1e-9)
    torch.manual_seed(0)
    draws = likelihood.sample(params.expand(40_000, -1, -1, -1)).flatten()
    levels = torch.round(draws * 255)
    assert torch.allclose(levels / 255, draws) and levels.min() >= 0 and levels.max() <= 255
    frequencies = torch.bincount(levels.long(), minlength=256).double() / len(levels)
    assert (frequencies - probabilities).abs().max().item() < 0.01


def test_every_8bit_likelihood_reports_the_same_scale():
    """What each likelihood's -log p is: the VAE turns it into bits/dim of the 8-bit images only where it can."""
    assert DiscretisedLogisticLikelihood().data_model == "8-bit"
    assert ContinuousBernoulliLikelihood().data_model == "8-bit dequantised"
    assert GaussianLikelihood(dequantize=True).data_model == "8-bit dequantised"
    assert GaussianLikelihood(dequantize=False).data_model == "none"
    assert BernoulliLikelihood("dynamic").data_model == "binarised"
    assert BernoulliLikelihood("none").data_model == "none"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_logistic_components_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=rf"likelihood.components={bad!r} is not allowed; use an integer >= 1"):
        DiscretisedLogisticLikelihood(bad)


#: the pixels each data model needs: what the likelihood scores must be what the data module serves
PIXELS_FOR = {"8-bit": {"grey"}, "8-bit dequantised": {"dequantize"}, "binarised": {"dynamic", "static"},
              "none": {"grey"}}


@pytest.mark.parametrize("option", config_groups()["likelihood"])
def test_the_data_module_serves_the_pixels_the_built_likelihood_declares(compose_train, option):
    cfg = compose_train([f"likelihood={option}"])
    assert "binarize" not in cfg.data and "dequantize" not in cfg.data  # no second place that says it
    likelihood = build_model(cfg).likelihood
    assert likelihood.pixels in PIXELS_FOR[likelihood.data_model]
    datamodule = datamodule_for(cfg.data, likelihood.pixels)
    datamodule.setup()
    test_x = datamodule.splits["test"][0]
    if likelihood.pixels == "dequantize":
        levels = datamodule.test_pixels.float()
        assert torch.all(test_x * 256 >= levels) and torch.all(test_x * 256 <= levels + 1)  # float32 can round up
    elif likelihood.pixels == "grey":
        torch.testing.assert_close(test_x, datamodule.test_pixels.float() / 255)
    else:
        assert set(test_x.unique().tolist()) <= {0.0, 1.0}


class EightBitDensity(GaussianLikelihood):
    """A new dequantised density written without any data setting: it still gets (k + u) / 256."""


def test_a_new_density_gets_its_pixels_without_a_data_setting(compose_train):
    density = EightBitDensity(dequantize=True)
    assert (density.pixels, density.data_model) == ("dequantize", "8-bit dequantised")
    cfg = compose_train(["likelihood=gaussian"])
    datamodule = datamodule_for(cfg.data, density.pixels)
    assert datamodule.pixel_mode == "dequantize"


def test_the_data_module_refuses_pixels_no_likelihood_asks_for(compose_train):
    assert datamodule_for(compose_train([]).data, "dynamic").pixel_mode == "dynamic"
    with pytest.raises(ConfigError, match=r"^data.pixels='bits' is not allowed; use one of \['grey', 'dynamic'"):
        DigitsDataModule(pixels="bits")


def test_each_likelihood_turns_its_test_nll_into_scores_of_the_images():
    d = 784
    assert DiscretisedLogisticLikelihood().data_scores(1000.0, d) == pytest.approx(
        {"test/nll_8bit": 1000.0, "test/bits_per_dim": 1000.0 / (d * math.log(2))})
    bound = -2000.0 + d * math.log(256)  # the dequantised density's bound on -log P(k)
    assert GaussianLikelihood().data_scores(-2000.0, d) == pytest.approx(
        {"test/nll_8bit": bound, "test/bits_per_dim": bound / (d * math.log(2))})
    assert BernoulliLikelihood("dynamic").data_scores(90.0, d) == pytest.approx({"test/bits_per_dim": 90.0 / (d * math.log(2))})
    assert BernoulliLikelihood("none").data_scores(90.0, d) == {}
