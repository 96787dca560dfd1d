"""Lightning as its users know it: Trainer flags typed on the command line take effect, and the VAE trains from a
bare ``lightning.Trainer`` and a plain ``DataLoader`` of image tensors."""

import json
import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import run_module
from torch.utils.data import DataLoader, TensorDataset

from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
from vae_lightning.models.vae import VAE

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def flagged_run(tmp_path_factory) -> tuple[dict, dict]:
    """One run with four Trainer flags, each with an effect of its own to assert."""
    cwd = tmp_path_factory.mktemp("flags")
    record = cwd / "record.json"
    result = run_module(
        "vae_lightning.train", "trainer.max_epochs=1", "logger=local", "eval.k=5", "eval.fid_samples=0",
        "trainer.gradient_clip_val=0.5", "+trainer.accumulate_grad_batches=2", "+trainer.val_check_interval=0.5",
        "+trainer.limit_train_batches=0.5", "+callbacks.record._target_=recorders.RecordSteps",
        f"+callbacks.record.path={record}", cwd=cwd, env={"PYTHONPATH": str(TESTS)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (cwd / "outputs" / "runs").iterdir()
    return json.loads(record.read_text()), json.loads((run / "metrics.json").read_text())


def full_epoch_batches(info: dict) -> int:
    return math.ceil(info["n_train"] / 128)  # data.batch_size


def test_limit_train_batches_as_a_fraction_halves_the_epoch(flagged_run):
    record, saved = flagged_run
    assert record["batches"] == int(full_epoch_batches(saved["data"]) * 0.5)


def test_accumulate_grad_batches_halves_the_optimizer_steps(flagged_run):
    record, _ = flagged_run
    assert record["optimizer_steps"] == record["batches"] // 2 == len(record["norms_used"])


def test_val_check_interval_as_a_fraction_validates_twice_an_epoch(flagged_run):
    record, _ = flagged_run
    assert record["validations"] == 2


def test_gradient_clip_val_clips_the_gradient_the_optimizer_uses(flagged_run):
    record, _ = flagged_run
    before, used = record["norms_before_clipping"], record["norms_used"]
    assert len(before) == len(used) and max(before) > 5.0  # an untrained VAE's gradients are large
    assert all(norm <= 0.5 * (1 + 1e-4) for norm in used)


def test_the_vae_trains_from_a_bare_trainer_and_a_plain_data_loader(tmp_path):
    torch.manual_seed(0)
    images = (torch.rand(256, 1, 28, 28) < torch.linspace(0.05, 0.6, 28).view(1, 1, 1, 28)).float()
    model = VAE(encoder=partial(MLPEncoder, hidden_dims=(64,)), decoder=partial(MLPDecoder, hidden_dims=(64,)),
                likelihood=BernoulliLikelihood(), latent_dim=4)
    with torch.no_grad():
        before = float(model(images)["recon"].mean())
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(TensorDataset(images), batch_size=32, shuffle=True))
    assert trainer.global_step == 3 * 8
    assert float(trainer.callback_metrics["train/loss"]) < before - 50  # it learnt: -log p(x|z) fell by > 50 nats
