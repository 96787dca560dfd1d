"""``python -m vae_lightning.evaluate`` and ``python -m vae_lightning.sample`` on checkpoints of short runs."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import first_fast, run_module
from PIL import Image

LIKELIHOODS = ("bernoulli", "gaussian")


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> Callable[[str], Path]:
    """likelihood -> the folder of one short training run, trained when a test first asks for it (the Gaussian
    run only for the slow tests)."""
    runs: dict[str, Path] = {}

    def run_for(likelihood: str) -> Path:
        if likelihood not in runs:
            log_dir = tmp_path_factory.mktemp(likelihood)
            result = run_module("vae_lightning.train", "debug=fast", "logger=local", f"likelihood={likelihood}",
                                f"paths.log_dir={log_dir}")
            assert result.returncode == 0, result.stderr[-3000:]
            (runs[likelihood],) = (log_dir / "runs").iterdir()
        return runs[likelihood]

    return run_for


def best_checkpoint(run: Path) -> Path:
    (ckpt,) = [p for p in (run / "checkpoints").glob("epoch*.ckpt")]
    return ckpt


@pytest.mark.parametrize("likelihood", first_fast(LIKELIHOODS))
def test_evaluate_prints_and_saves_the_metrics(trained_runs, likelihood):
    run = trained_runs(likelihood)
    training_metrics = (run / "metrics.json").read_text()
    result = run_module(
        "vae_lightning.evaluate", f"ckpt_path={best_checkpoint(run)}", "eval.k=20", "eval.fid_samples=200"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluation,) = (run / "evaluations").iterdir()
    saved = json.loads((evaluation / "metrics.json").read_text())
    metrics = saved["metrics"]
    assert saved["iw_samples"] == 20 and metrics["test/iw_samples"] == 20
    for name in ("test/loss", "test/recon", "test/kl", "test/nll_iw", "test/active_units", "test/frechet_distance",
                 "test/frechet_distance_gmm", "test/bits_per_dim", "val/loss"):
        assert name in metrics and metrics[name] == metrics[name], name  # present and not NaN
        assert f"{name} " in result.stdout, name
    assert metrics["test/nll_iw"] < metrics["test/loss"]  # k = 20 is tighter than the ELBO
    assert len(saved["test_details"]["kl_per_dim"]) == 20
    if likelihood == "gaussian":
        # the dequantised bound: continuous NLL + 784 ln 256, and bits/dim from it
        assert metrics["test/nll_8bit"] == pytest.approx(metrics["test/nll_iw"] + 784 * 5.545177444479562, rel=1e-6)
        assert metrics["test/bits_per_dim"] == pytest.approx(metrics["test/nll_8bit"] / (784 * 0.6931471805599453))
    else:
        assert metrics["test/bits_per_dim"] == pytest.approx(metrics["test/nll_iw"] / (784 * 0.6931471805599453))
    pictures = {p.name for p in (evaluation / "pictures").glob("*.png")}
    assert {"samples.png", "reconstructions.png", "traversals.png", "interpolations.png", "latent_space.png"} <= pictures
    # evaluation never touches the training run's own outputs
    assert (run / "metrics.json").read_text() == training_metrics


def test_the_run_itself_has_the_final_pictures(trained_runs):
    pictures = {p.name for p in (trained_runs("bernoulli") / "pictures").glob("*.png")}
    assert {"samples.png", "reconstructions.png", "traversals.png", "interpolations.png", "latent_space.png"} <= pictures


@pytest.mark.slow
def test_manifold_picture_for_a_two_dimensional_latent(tmp_path):
    result = run_module("vae_lightning.train", "debug=fast", "logger=local", "model.latent_dim=2",
                        f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    width, height = Image.open(run / "pictures" / "manifold.png").size
    assert width == height == 2 * (20 * 30 + 2)  # 20 x 20 digits of 28 + 2 padding, upscaled twice


@pytest.mark.parametrize("sampler", first_fast(["prior", "gmm"]))
def test_sample_writes_a_grid_of_new_digits(trained_runs, sampler):
    run = trained_runs("bernoulli")
    result = run_module("vae_lightning.sample", f"ckpt_path={best_checkpoint(run)}", "n=16", f"sampler={sampler}")
    assert result.returncode == 0, result.stderr[-3000:]
    (png,) = (run / "samples").glob(f"*/samples_{sampler}_n16_seed0_*.png")
    assert f"Wrote 16 samples to {png}" in result.stdout
    assert Image.open(png).size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))


def test_evaluate_a_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = run_module("vae_lightning.evaluate", f"ckpt_path={tmp_path}/nope.ckpt")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: ckpt_path='{tmp_path}/nope.ckpt' is not allowed; no such file (give a .ckpt from a run's checkpoints/)"
    )


@pytest.mark.slow
def test_evaluate_a_checkpoint_whose_config_does_not_fit(trained_runs, tmp_path):
    checkpoint = torch.load(best_checkpoint(trained_runs("bernoulli")), weights_only=True)
    checkpoint["vae_lightning_config"]["model"]["latent_dim"] = 7
    broken = tmp_path / "broken.ckpt"
    torch.save(checkpoint, broken)
    result = run_module("vae_lightning.evaluate", f"ckpt_path={broken}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: ckpt_path='{broken}' does not fit its model config"), last
