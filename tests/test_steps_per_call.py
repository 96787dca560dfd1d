"""Several optimizer steps per call of the training step (``data.steps_per_call``): the same batches, noise and
weights as one step a call, with clipping, schedules, step limits and checkpoints of earlier versions."""

import lightning as L
import pytest
import torch

from vae_lightning.data.batching import IndexBatchSampler, tensor_loader
from vae_lightning.data.datamodule import datamodule_for
from vae_lightning.errors import ConfigError
from vae_lightning.models.build import build_model

# Burda's schedule changes the learning rate after epoch 0; warm-up reads the step; clipping is active at this norm
SETTINGS = ["experiment=burda2016_vae", "model.objective.kl_warmup_steps=7", "model.gradient_clip_val=5.0"]


@pytest.mark.parametrize("steps_per_call", [1, 3, 10])
def test_the_sampler_yields_the_same_batches_in_calls_and_resumes_at_any_batch(steps_per_call):
    one = IndexBatchSampler(1001, 64, True, seed=7, max_batches=13)
    calls = IndexBatchSampler(1001, 64, True, seed=7, steps_per_call=steps_per_call, max_batches=13)
    batches = list(one)
    assert len(batches) == one.batches == calls.batches == 13
    assert len(calls) == len(list(calls)) == -(-13 // steps_per_call)
    assert torch.equal(torch.cat(list(calls)), torch.cat(batches))
    calls.resume_at(0, 5)
    assert torch.equal(torch.cat(list(calls)), torch.cat(batches[5:]))
    assert len(list(calls)) == len(calls)  # the skip holds for one iteration only


def test_a_run_stopped_mid_epoch_resumes_only_with_its_own_steps_per_call():
    """Lightning restores its count of calls, so another call size would cut or stretch the epoch: refused."""
    images, labels = torch.zeros(1000, 1, 28, 28, dtype=torch.uint8), torch.zeros(1000, dtype=torch.long)
    saved = tensor_loader(images, labels, 20, True, progress=lambda: (1, 4), steps_per_call=3).state_dict()
    assert saved == {"epoch": 1, "batches_done": 12, "steps_per_call": 3}
    same = tensor_loader(images, labels, 20, True, progress=lambda: (0, 0), steps_per_call=3)
    same.load_state_dict(saved)
    epoch_1 = IndexBatchSampler(1000, 20, True)
    epoch_1.set_epoch(1)
    assert torch.equal(next(iter(same))[2], torch.cat(list(epoch_1))[12 * 20 : 15 * 20])  # batches 12-14 of epoch 1
    other = tensor_loader(images, labels, 20, True, progress=lambda: (0, 0), steps_per_call=5)
    with pytest.raises(ConfigError, match=r"^data.steps_per_call=5: this run stopped mid-epoch with "
                                          r"data.steps_per_call=3; resume with data.steps_per_call=3$"):
        other.load_state_dict(saved)
    other.load_state_dict({**saved, "batches_done": 0})  # at an epoch's start (or end) any call size continues it


def fit(cfg, max_epochs=2, max_steps=-1, ckpt_path=None, limit=13):
    L.seed_everything(0)
    model = build_model(cfg)
    datamodule = datamodule_for(cfg.data, model.likelihood.pixels)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=max_epochs, max_steps=max_steps, limit_train_batches=limit,
        logger=False, enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        num_sanity_val_steps=0, limit_val_batches=1, default_root_dir=cfg.paths.output_dir,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    return model, trainer


def state(model, trainer):
    optimizer = trainer.optimizers[0].state_dict()["state"]
    return {**model.state_dict(), **{f"exp_avg_sq.{i}": s["exp_avg_sq"] for i, s in optimizer.items()}}


@pytest.mark.parametrize("max_steps", [-1, 17])
def test_ten_steps_a_call_give_the_weights_of_one_step_a_call(compose_train, max_steps):
    """13 batches an epoch (calls of 10 and 3), two epochs, or a stop at step 17 inside a call."""
    runs = {k: fit(compose_train([*SETTINGS, f"data.steps_per_call={k}"]), max_steps=max_steps) for k in (1, 10)}
    (one, one_trainer), (ten, ten_trainer) = runs[1], runs[10]
    assert one_trainer.global_step == ten_trainer.global_step == (26 if max_steps < 0 else 17)
    assert ten_trainer.num_training_batches == 2 and one_trainer.num_training_batches == 13
    assert ten_trainer.optimizers[0].param_groups[0]["lr"] == one_trainer.optimizers[0].param_groups[0]["lr"]
    if max_steps < 0:  # the schedule stepped once, after epoch 0
        assert ten_trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 10 ** (-1 / 7))
    expected, got = state(one, one_trainer), state(ten, ten_trainer)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert one.training_metrics == pytest.approx(ten.training_metrics, rel=1e-5)


def test_gradients_are_clipped_to_the_configured_norm(compose_train):
    """A tiny norm: the first step moves each weight by at most Adam's lr, and the clipped gradient has that norm."""
    cfg = compose_train(["model.gradient_clip_val=1e-3", "model.latent_dim=2"])
    seen = []
    model, trainer = None, None

    class Record(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in pl_module.parameters()
                                                              if p.grad is not None])).item())

    L.seed_everything(0)
    model = build_model(cfg)
    trainer = L.Trainer(accelerator="cpu", max_steps=3, limit_train_batches=3, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[Record()])
    trainer.fit(model, datamodule=datamodule_for(cfg.data, model.likelihood.pixels))
    # Lightning calls on_before_optimizer_step before the optimizer's closure, after our clipping
    assert len(seen) == 3 and all(norm == pytest.approx(1e-3, rel=1e-4) for norm in seen)


def test_a_checkpoint_of_an_earlier_version_keeps_its_step_count(compose_train, tmp_path):
    """Earlier versions optimised automatically and counted steps there; resuming one continues its count."""
    cfg = compose_train(["data.steps_per_call=1", "model.latent_dim=2"])
    _, trainer = fit(cfg, max_epochs=1, limit=5)
    saved = torch.load(trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path,
                       weights_only=False)
    loop = saved["loops"]["fit_loop"]
    manual = loop["epoch_loop.manual_optimization.optim_step_progress"]
    loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"] = manual
    loop["epoch_loop.manual_optimization.optim_step_progress"] = {
        kind: {count: 0 for count in counts} for kind, counts in manual.items()}
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    _, resumed = fit(cfg, max_epochs=2, limit=5, ckpt_path=str(old))
    assert resumed.global_step == 10


def test_the_progress_bar_counts_optimizer_steps(compose_train):
    from vae_lightning.callbacks.progress import ProgressBar

    cfg = compose_train(["data.steps_per_call=10", "model.latent_dim=2"])
    bar = ProgressBar(refresh_rate=1)
    L.seed_everything(0)
    model = build_model(cfg)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=13, logger=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[bar])
    trainer.fit(model, datamodule=datamodule_for(cfg.data, model.likelihood.pixels))
    assert trainer.num_training_batches == 2  # calls
    assert (bar.train_progress_bar.n, bar.train_progress_bar.total) == (13, 13)  # steps


@pytest.mark.parametrize("setting,value", [("limit_train_batches", 0.5), ("val_check_interval", 3)])
def test_trainer_settings_counted_in_calls_are_refused_in_one_line(compose_train, setting, value):
    cfg = compose_train(["model.latent_dim=2"])
    model = build_model(cfg)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, **{setting: value})
    with pytest.raises(ConfigError, match=rf"^trainer.{setting}={value} is not allowed with data.steps_per_call=10 "
                                          r"\(Lightning would count calls, not batches\); .*data.steps_per_call=1$"):
        trainer.fit(model, datamodule=datamodule_for(cfg.data, model.likelihood.pixels))
