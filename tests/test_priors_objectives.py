"""Priors and objectives: against torch.distributions, against each other, and their defining properties."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vae_lightning.errors import ConfigError
from vae_lightning.models.gaussians import (
    diagonal_gaussian_log_prob,
    diagonal_gaussian_mixture_log_probs,
    kl_to_standard_normal,
)
from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.marginal_likelihood import importance_weighted_nll
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.objectives.base import TrainingContext
from vae_lightning.models.objectives.beta_tc import BetaTCVAE
from vae_lightning.models.objectives.cyclical_elbo import CyclicalKLELBO
from vae_lightning.models.objectives.elbo import ELBO
from vae_lightning.models.objectives.iwae import IWAE
from vae_lightning.models.priors.mixture import GaussianMixturePrior
from vae_lightning.models.priors.standard_normal import StandardNormalPrior
from vae_lightning.models.priors.vamp import VampPrior
from vae_lightning.models.vae import VAE


def make_vae(prior=StandardNormalPrior, objective=None, latent_dim: int = 4, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(
        encoder=lambda **kw: MLPEncoder(hidden_dims=[32], **kw),
        decoder=lambda **kw: MLPDecoder(hidden_dims=[32], **kw),
        likelihood=BernoulliLikelihood(),
        prior=prior,
        objective=objective,
        latent_dim=latent_dim,
    )


def binary_images(n: int = 16, seed: int = 1) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) > 0.7).float()


def one_standard_component(latent_dim: int, encode=None) -> GaussianMixturePrior:
    return GaussianMixturePrior(latent_dim, n_components=1, init_scale=0.0)


def test_mixture_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    prior = GaussianMixturePrior(3, n_components=4)
    with torch.no_grad():
        prior.logvars.normal_()
        prior.weight_logits.normal_()
    reference = MixtureSameFamily(
        Categorical(logits=prior.weight_logits),
        Independent(Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1),
    )
    z = torch.randn(7, 5, 3) * 2
    torch.testing.assert_close(prior.log_prob(z), reference.log_prob(z), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("log_scale", [0.0, -9.0])  # -9: variances ~1e-8, where the expanded terms nearly cancel
def test_every_components_log_density_matches_torch_distributions(log_scale):
    generator = torch.Generator().manual_seed(3)
    means = torch.randn(6, 5, generator=generator)
    logvars = torch.randn(6, 5, generator=generator) + 2 * log_scale
    z = means[2] + torch.exp(0.5 * logvars[2]) * torch.randn(4, 7, 5, generator=generator)  # near component 2
    reference = Independent(Normal(means, torch.exp(0.5 * logvars)), 1).log_prob(z.unsqueeze(-2))  # (4, 7, 6)
    ours = diagonal_gaussian_mixture_log_probs(z, means, logvars)
    assert ours.shape == (4, 7, 6)
    torch.testing.assert_close(ours[..., 2], reference[..., 2], rtol=1e-5, atol=1e-4)  # the one z is near
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-3)


def test_mixture_samples_have_the_mixture_mean_and_variance():
    torch.manual_seed(0)
    prior = GaussianMixturePrior(2, n_components=3, init_scale=3.0)
    with torch.no_grad():
        prior.weight_logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        prior.logvars.fill_(math.log(0.25))
    draws = prior.sample(200_000, generator=torch.Generator().manual_seed(0))
    weights = torch.softmax(prior.weight_logits, 0).detach()
    mean = (weights[:, None] * prior.means).sum(0).detach()
    second = (weights[:, None] * (prior.means.pow(2) + 0.25)).sum(0).detach()
    torch.testing.assert_close(draws.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(draws.var(0), second - mean.pow(2), atol=0.1, rtol=0.02)


def test_standard_normal_prior_is_torch_distributions_normal():
    prior, z = StandardNormalPrior(5), torch.randn(6, 5) * 3
    torch.testing.assert_close(prior.log_prob(z), Independent(Normal(torch.zeros(5), 1.0), 1).log_prob(z))
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    torch.testing.assert_close(prior.analytic_kl(mu, logvar), kl_to_standard_normal(mu, logvar))
    assert GaussianMixturePrior(5).analytic_kl(mu, logvar) is None


def test_mixture_with_one_standard_component_gives_the_standard_priors_numbers():
    x = binary_images()
    standard, mixture = make_vae(StandardNormalPrior), make_vae(one_standard_component)
    mixture.load_state_dict(standard.state_dict(), strict=False)  # same encoder and decoder weights
    z = torch.randn(9, 16, 4)
    torch.testing.assert_close(mixture.prior.log_prob(z), standard.prior.log_prob(z))
    for k in (1, 20):
        torch.manual_seed(3)
        expected = importance_weighted_nll(standard, x, k)
        torch.manual_seed(3)
        torch.testing.assert_close(importance_weighted_nll(mixture, x, k), expected)
    # the same prior, so samples from the same noise are the same images
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    torch.testing.assert_close(mixture.sample_images(8, generator=g()), standard.sample_images(8, generator=g()))


def test_monte_carlo_kl_agrees_with_the_analytic_kl_within_its_standard_error():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 6), torch.randn(4, 6) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(40_000, 4, 6)
    estimates = diagonal_gaussian_log_prob(z, mu, logvar) - StandardNormalPrior(6).log_prob(z)  # (S, B)
    mean, stderr = estimates.mean(0), estimates.std(0) / math.sqrt(z.shape[0])
    analytic = kl_to_standard_normal(mu, logvar).sum(-1)
    assert torch.all((mean - analytic).abs() < 4 * stderr), (mean, analytic, stderr)
    # and the model's one-sample KL for a mixture prior (one N(0, I) component) is that estimator
    model = make_vae(one_standard_component)
    x = binary_images(4)
    draws = torch.stack([model(x)["kl"].detach() for _ in range(4000)])
    mu, logvar = model.encode(x)
    analytic = kl_to_standard_normal(mu, logvar).sum(-1).detach()
    assert torch.all((draws.mean(0) - analytic).abs() < 4 * draws.std(0) / math.sqrt(4000))


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_vamp_prior_density_integrates_to_one(latent_dim):
    torch.manual_seed(0)
    encoder = MLPEncoder(image_shape=(1, 28, 28), latent_dim=latent_dim, hidden_dims=[16])
    prior = VampPrior(latent_dim, encode=encoder, n_components=7, init_std=2.0)
    with torch.no_grad():
        means, logvars = prior.components()
    assert means.shape == (7, latent_dim) and len(means.unique()) > 1  # distinct pseudo-input posteriors
    lo, hi = (means - 8 * torch.exp(0.5 * logvars)).min().item(), (means + 8 * torch.exp(0.5 * logvars)).max().item()
    n = 20_001 if latent_dim == 1 else 801
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    step = (hi - lo) / (n - 1)
    grid = axis[:, None] if latent_dim == 1 else torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = prior.log_prob(grid.float()).double().exp()
    assert density.sum().item() * step**latent_dim == pytest.approx(1.0, abs=2e-3)


def test_vamp_prior_shares_the_encoders_weights_without_registering_them_twice():
    model = make_vae(lambda latent_dim, encode: VampPrior(latent_dim, encode=encode, n_components=3))
    names = list(model.state_dict())
    assert "prior.pseudo_input_logits" in names and not any(n.startswith("prior.encoder") for n in names)
    encoder_weight = next(model.encoder.parameters())
    loss = model.prior.log_prob(torch.randn(5, 4)).sum()
    loss.backward()
    assert encoder_weight.grad is not None and encoder_weight.grad.abs().sum() > 0  # the prior trains the encoder
    assert model.prior.pseudo_input_logits.grad.abs().sum() > 0


def loss_and_grads(model: VAE, objective, x: torch.Tensor, seed: int = 7):
    model.zero_grad()
    torch.manual_seed(seed)
    terms = objective(model, x, TrainingContext())
    terms.loss.backward()
    return terms, [p.grad.clone() for p in model.parameters()]


def test_iwae_with_one_sample_is_the_elbo_value_and_gradient():
    """With the same noise: L_1 = log p(x|z) + log p(z) - log q(z|x), the ELBO with a one-sample KL. A prior
    without a closed-form KL (one N(0, I) mixture component) makes the ELBO use exactly that estimate."""
    model, x = make_vae(one_standard_component), binary_images()
    elbo, elbo_grads = loss_and_grads(model, ELBO(), x)
    iwae, iwae_grads = loss_and_grads(model, IWAE(k=1), x)
    torch.testing.assert_close(iwae.loss, elbo.loss)
    torch.testing.assert_close(iwae.recon, elbo.recon.detach())
    for a, b in zip(iwae_grads, elbo_grads):
        torch.testing.assert_close(a, b)


def test_iwae_with_one_sample_matches_the_analytic_elbo_on_average():
    model, x = make_vae(StandardNormalPrior), binary_images(8)
    with torch.no_grad():
        elbo = ELBO()(model, x, 0).loss.item()  # recon varies, KL exact
        losses = torch.tensor([IWAE(k=1)(model, x, 0).loss.item() for _ in range(2000)])
        elbos = torch.tensor([ELBO()(model, x, 0).loss.item() for _ in range(2000)])
    stderr = math.hypot(losses.std().item(), elbos.std().item()) / math.sqrt(2000)
    assert abs(losses.mean().item() - elbos.mean().item()) < 4 * stderr, (losses.mean(), elbos.mean(), elbo)


def test_k_sample_bound_is_monotone_in_k_on_a_fixed_model():
    model, x = make_vae(StandardNormalPrior, latent_dim=2), binary_images(32)
    model.eval()
    bounds = {}
    with torch.no_grad():
        for k in (1, 5, 50):
            torch.manual_seed(0)
            repeats = torch.stack([IWAE(k=k)(model, x, 0).loss for _ in range(200)])
            bounds[k] = (repeats.mean().item(), repeats.std().item() / math.sqrt(200))
    for small, large in ((1, 5), (5, 50)):
        (a, sa), (b, sb) = bounds[small], bounds[large]
        assert a - b > 3 * math.hypot(sa, sb), bounds  # -L_k falls as k grows, beyond the noise


def test_free_bits_floor_each_dimensions_batch_mean_kl():
    model, x = make_vae(StandardNormalPrior), binary_images()
    torch.manual_seed(0)
    plain = ELBO()(model, x, 0)
    mu, logvar = model.encode(x)
    kl_per_dim = kl_to_standard_normal(mu, logvar).mean(0)
    free_bits = float(kl_per_dim.median().detach())
    torch.manual_seed(0)
    floored = ELBO(free_bits=free_bits)(model, x, 0)
    expected = plain.recon.mean() + kl_per_dim.clamp(min=free_bits).sum()
    torch.testing.assert_close(floored.loss, expected)
    torch.testing.assert_close(floored.kl, plain.kl)  # train/kl stays the real KL
    # dimensions below the floor get no gradient from the objective's KL term
    model.zero_grad()
    (floored.loss - floored.recon.mean()).backward()
    below = kl_per_dim <= free_bits  # the median dimension sits on the floor
    assert below.any() and (~below).any()
    mu_bias_grad = model.encoder.head.bias.grad[: model.latent_dim]
    assert torch.all(mu_bias_grad[below] == 0) and torch.all(mu_bias_grad[~below] != 0)


def test_kl_warmup_and_beta_weight_the_kl():
    objective = ELBO(beta=2.0, kl_warmup_steps=100)
    assert [objective.kl_weight(TrainingContext(step=step)) for step in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]


def reference_cycles(n_steps: int, cycles: int, ratio: float) -> list[float]:
    """Fu et al. (2019)'s schedule built the way their release builds it: per cycle of n / M steps, a ramp
    from 0 in increments of 1 / (period * R) until it passes 1; every other step 1 (integer periods only)."""
    weights, period = [1.0] * n_steps, n_steps // cycles
    for cycle in range(cycles):
        for i in range(period):
            value = i / (period * ratio)
            if value > 1:
                break
            weights[cycle * period + i] = value
    return weights


@pytest.mark.parametrize("n_steps,cycles,ratio", [(100, 4, 0.5), (120, 3, 0.25), (64, 1, 1.0)])
def test_cyclical_kl_weight_matches_the_reference_schedule(n_steps, cycles, ratio):
    objective = CyclicalKLELBO(cycles=cycles, ratio=ratio, beta=2.0)
    ours = [objective.kl_weight(TrainingContext(step=t, total_steps=n_steps)) for t in range(n_steps)]
    expected = [2.0 * w for w in reference_cycles(n_steps, cycles, ratio)]
    assert ours == pytest.approx(expected, abs=1e-12)


def test_cyclical_kl_follows_the_papers_formula_when_the_period_is_not_whole():
    """w_t = min(1, tau / R), tau = ((t - 1) mod ceil(T / M)) / (T / M), for T = 90, M = 4 (period 22.5)."""
    objective = CyclicalKLELBO(cycles=4, ratio=0.5)
    for t in range(1, 91):
        tau = ((t - 1) % 23) / 22.5
        assert objective.kl_weight(TrainingContext(step=t - 1, total_steps=90)) == pytest.approx(min(1.0, tau / 0.5))


def test_cyclical_kl_refuses_what_it_cannot_schedule():
    with pytest.raises(ConfigError, match=r"^model.objective.cycles=0 is not allowed; use an integer >= 1$"):
        CyclicalKLELBO(cycles=0)
    with pytest.raises(ConfigError, match=r"^model.objective.ratio=1.5 is not allowed; use a number in \(0, 1\]$"):
        CyclicalKLELBO(ratio=1.5)
    with pytest.raises(ConfigError, match="needs a bounded run; set trainer.max_epochs or trainer.max_steps"):
        CyclicalKLELBO().kl_weight(TrainingContext(step=3, total_steps=0))


def reference_decomposition(mu, logvar, z, log_p_z, dataset_size):
    """MI, TC and dimension-wise KL by minibatch-weighted sampling, from torch.distributions, one z_i at a time."""
    m = len(z)
    posteriors = Normal(mu, torch.exp(0.5 * logvar))  # batch (M, D)
    log_nm = math.log(dataset_size * m)
    rows = []
    for i in range(m):
        per_dim = posteriors.log_prob(z[i].expand_as(mu))  # log q(z_id | x_j): (M, D)
        log_q_z = torch.logsumexp(per_dim.sum(1), 0) - log_nm
        log_q_zd = (torch.logsumexp(per_dim, 0) - log_nm).sum()
        log_q_z_x = per_dim[i].sum()
        rows.append(torch.stack([log_q_z_x - log_q_z, log_q_z - log_q_zd, log_q_zd - log_p_z[i]]))
    return torch.stack(rows)  # (M, 3)


def test_beta_tc_decomposition_matches_a_reference_from_torch_distributions():
    model, x = make_vae(), binary_images()
    sample = model.sample_posterior(x)
    log_p_z = model.prior.log_prob(sample.z[0])
    parts = BetaTCVAE().decomposition(sample, log_p_z, dataset_size=54_000)
    ours = torch.stack([parts["mutual_information"], parts["total_correlation"], parts["dimension_kl"]], dim=1)
    expected = reference_decomposition(sample.mu.double(), sample.logvar.double(), sample.z[0].double(),
                                       log_p_z.double(), 54_000)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-4)
    # the three parts add up to the one-sample KL estimate, log q(z|x) - log p(z)
    torch.testing.assert_close(ours.sum(1), diagonal_gaussian_log_prob(sample.z[0], sample.mu, sample.logvar) - log_p_z)


def test_beta_tc_moves_nats_between_its_parts_with_the_training_set_size():
    """N enters as log(N M): MI gains log r, TC gains (D - 1) log r, dimension-wise KL loses D log r."""
    model, x = make_vae(latent_dim=4), binary_images()
    sample = model.sample_posterior(x)
    log_p_z = model.prior.log_prob(sample.z[0])
    small, large = (BetaTCVAE().decomposition(sample, log_p_z, n) for n in (1_000, 54_000))
    log_r = math.log(54)
    torch.testing.assert_close(large["mutual_information"] - small["mutual_information"], torch.full((16,), log_r))
    torch.testing.assert_close(large["total_correlation"] - small["total_correlation"], torch.full((16,), 3 * log_r))
    torch.testing.assert_close(large["dimension_kl"] - small["dimension_kl"], torch.full((16,), -4 * log_r))
    with pytest.raises(ConfigError, match="needs the training-set size"):
        BetaTCVAE().decomposition(sample, log_p_z, 0)


def test_beta_tc_with_unit_weights_is_the_elbo_with_a_one_sample_kl():
    """alpha = beta = gamma = 1: the same loss and gradients as the ELBO where the KL is one-sample (a prior with
    no closed form); beta > 1 adds (beta - 1) x the total correlation."""
    model, x = make_vae(one_standard_component), binary_images()
    context = TrainingContext(dataset_size=54_000)
    elbo, elbo_grads = loss_and_grads(model, ELBO(), x)
    model.zero_grad()
    torch.manual_seed(7)
    unit = BetaTCVAE(beta=1.0).__call__(model, x, context)
    unit.loss.backward()
    torch.testing.assert_close(unit.loss, elbo.loss)
    for a, b in zip([p.grad.clone() for p in model.parameters()], elbo_grads):
        torch.testing.assert_close(a, b)
    torch.manual_seed(7)
    sample = model.sample_posterior(x)
    tc = BetaTCVAE().decomposition(sample, model.prior.log_prob(sample.z[0]), 54_000)["total_correlation"]
    torch.manual_seed(7)
    torch.testing.assert_close(BetaTCVAE(beta=6.0)(model, x, context).loss, elbo.loss + 5.0 * tc.mean())


@pytest.mark.parametrize("bad", [-1.0, True, "6"])
def test_beta_tc_refuses_bad_weights(bad):
    with pytest.raises(ConfigError, match=rf"^model.objective.beta={bad!r} is not allowed; use a number >= 0$"):
        BetaTCVAE(beta=bad)


def test_pictures_take_their_axes_from_the_priors_own_scale():
    levels = torch.tensor([0.00135, 0.05, 0.5, 0.95, 0.99865])
    exact = StandardNormalPrior(3).marginal_quantiles(levels)
    torch.testing.assert_close(exact, Normal(0.0, 1.0).icdf(levels).unsqueeze(1).expand(5, 3))
    wide = GaussianMixturePrior(3, n_components=1, init_scale=0.0)
    with torch.no_grad():
        wide.logvars.fill_(math.log(4.0))  # N(0, 2^2) in every dimension
    estimated = wide.marginal_quantiles(levels)
    torch.testing.assert_close(estimated, 2 * exact, atol=0.25, rtol=0.05)
