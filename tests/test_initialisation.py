"""Initialise like the papers: the decoder's output starts at the training images' mean (for every likelihood),
Glorot-uniform weights with zero biases where an experiment reproduces Burda et al., and a resumed run keeps its
weights."""

import math
from pathlib import Path

import pytest
import torch
from conftest import run_module
from omegaconf import OmegaConf

from vae_lightning.command_line import config_groups
from vae_lightning.data.datamodule import datamodule_for
from vae_lightning.models.build import build_model

TESTS = Path(__file__).resolve().parent
LIKELIHOODS = [[f"likelihood={option}"] for option in config_groups()["likelihood"]] + [
    ["likelihood=logistic", "likelihood.components=3"], ["likelihood=gaussian", "+likelihood.mean_activation=identity"]]


def fresh_model(compose_train, overrides: list[str]):
    cfg = compose_train(overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    datamodule = datamodule_for(cfg.data, model.likelihood.pixels)
    datamodule.setup()
    return model, datamodule


@pytest.mark.parametrize("overrides", LIKELIHOODS, ids=[" ".join(o) for o in LIKELIHOODS])
def test_a_fresh_decoder_means_the_training_images_mean(compose_train, overrides):
    """With the last layer's weights at zero the decoder is its bias: its mean is the training mean image
    (clipped half a level from 0 and 1), computed here from the uint8 pixels. The continuous Bernoulli starts
    elsewhere on purpose (the next test)."""
    model, datamodule = fresh_model(compose_train, overrides)
    model.init_output_from_data(*datamodule.training_mean_and_std())
    pixels = datamodule.splits["train"][0].double()
    expected = ((pixels + 0.5) / 256 if datamodule.pixel_mode == "dequantize" else pixels / 255).mean(0)
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        model.decoder.head.weight.zero_()
        # the continuous Bernoulli's lambda, not its mean, is the mean pixel
        decoded = torch.sigmoid(model.decode(z)) if overrides == ["likelihood=continuous_bernoulli"] else model.decode_images(z)
    expected = expected.clamp(1 / 512, 1 - 1 / 512).float()
    torch.testing.assert_close(decoded, expected.expand_as(decoded), rtol=0, atol=2e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_the_bias_is_the_logit_of_the_mean_pixel_and_the_setting_turns_it_off(compose_train, likelihood):
    """For the continuous Bernoulli too: a mean-matched start puts rarely inked pixels at logits near -1000 (its
    mean falls to 0 only as -1 / logit), from which it trains far worse (docs/results.md)."""
    model, datamodule = fresh_model(compose_train, [f"likelihood={likelihood}"])
    untouched = model.decoder.head.bias.detach().clone()
    mean, std = datamodule.training_mean_and_std()
    model.init_output_from_data(mean, std)
    logit = torch.logit(mean.clamp(1 / 512, 1 - 1 / 512)).flatten()
    torch.testing.assert_close(model.decoder.head.bias.detach(), logit, rtol=0, atol=1e-5)
    assert model.decoder.head.bias.min() > -7  # logit(1 / 512) = -6.2
    off, _ = fresh_model(compose_train, [f"likelihood={likelihood}", "model.output_bias_from_data=false"])
    assert off.output_bias_from_data is False and torch.equal(off.decoder.head.bias.detach(), untouched)


def test_scales_start_at_the_datas_spread(compose_train):
    model, datamodule = fresh_model(compose_train, ["likelihood=logistic"])
    mean, std = datamodule.training_mean_and_std()
    bias = model.likelihood.output_bias(mean, std)
    log_scale = bias[1]
    middle = std[0] > 0.3  # pixels that vary: scale = std * sqrt(3) / pi, the logistic of that spread
    torch.testing.assert_close(log_scale[middle].exp(), std[0][middle] * math.sqrt(3) / math.pi)


def test_the_per_pixel_gaussian_starts_every_sigma_at_its_setting_not_at_the_datas_spread(compose_train):
    """Pixels almost never inked would start near the floor, sigma = 0.001, at their own spread."""
    for overrides, expected in (([], 1.0), (["likelihood.sigma=0.3"], 0.3)):
        model, datamodule = fresh_model(compose_train, ["likelihood=gaussian_per_pixel", *overrides])
        mean, std = datamodule.training_mean_and_std()
        assert float(std.min()) < 0.01  # the border pixels' spread, what a start at the data's spread would use
        mu, log_sigma = model.likelihood.output_bias(mean, std)
        torch.testing.assert_close(log_sigma.exp(), torch.full_like(log_sigma, expected))
        torch.testing.assert_close(torch.sigmoid(mu), mean[0].clamp(1 / 512, 1 - 1 / 512), rtol=0, atol=1e-5)


def test_burda_experiments_use_glorot_uniform_weights_and_zero_biases(compose_train):
    for experiment in ("burda2016_vae", "burda2016_iwae_2layer"):
        model = build_model(compose_train([f"experiment={experiment}"]))
        layers = [m for part in (model.encoder, model.decoder, model.posterior) for m in part.modules()
                  if isinstance(m, torch.nn.Linear)]
        assert len(layers) >= (6 if experiment == "burda2016_vae" else 12)
        for layer in layers:
            bound = math.sqrt(6 / (layer.in_features + layer.out_features))
            assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
            assert torch.count_nonzero(layer.bias) == 0
    default = build_model(compose_train([]))
    assert torch.count_nonzero(default.encoder.head.bias) > 0  # PyTorch's default elsewhere


@pytest.mark.slow  # two short training runs: CI runs it
def test_a_resumed_run_keeps_its_weights(tmp_path):
    record = ["+callbacks.bias._target_=recorders.RecordOutputBias", "logger=local", "eval.k=5", "eval.fid_samples=0"]
    first = run_module("vae_lightning.train", "debug=fast", *record, f"+callbacks.bias.path={tmp_path / 'a.pt'}",
                       cwd=tmp_path, env={"PYTHONPATH": str(TESTS)})
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    resumed = run_module("vae_lightning.train", f"resume={run}", "trainer.max_epochs=2", *record,
                         f"+callbacks.bias.path={tmp_path / 'b.pt'}", cwd=tmp_path, env={"PYTHONPATH": str(TESTS)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["decoder.head.bias"]
    assert torch.equal(torch.load(tmp_path / "b.pt"), saved)  # the checkpoint's trained bias, not the data's again
    assert not torch.equal(torch.load(tmp_path / "a.pt"), saved)


def test_the_config_names_the_setting():
    assert OmegaConf.load(TESTS.parent / "conf" / "model" / "vae.yaml").output_bias_from_data is True
