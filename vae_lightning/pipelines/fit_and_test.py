"""The training pipeline behind ``python -m vae_lightning.train``."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from vae_lightning.analysis.after_test import pictures_and_sample_quality
from vae_lightning.console import log, on_rank_zero, quiet_library_noise
from vae_lightning.data.datamodule import datamodule_for, describe_data
from vae_lightning.errors import AfterTestError
from vae_lightning.models.build import build_model, load_weights
from vae_lightning.models.checkpoints import METRICS_KEY, read_checkpoint
from vae_lightning.runs.ddp import ddp_job
from vae_lightning.runs.provenance import run_info
from vae_lightning.runs.resume import apply_resume, check_same_data
from vae_lightning.runs.run_files import (
    format_metrics,
    raise_if_nonfinite,
    resolved_config,
    scalar_metrics,
    write_json,
    write_yaml,
)
from vae_lightning.runs.stopwatch import PART_NAMES, Stopwatch
from vae_lightning.runs.task import one_line
from vae_lightning.tracking.dashboard import log_test_tables, record_training, wandb_identity, wandb_run
from vae_lightning.tracking.loggers import finish_wandb_runs
from vae_lightning.tracking.wandb_folders import wandb_sync_hint


def fit_and_test(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint, for a config the command line has checked. Returns the final metrics
    (nats per example) and the objects that made them (``trainer``, ``model``, ``datamodule``), for a notebook
    to go on with."""
    clock = Stopwatch()
    if not cfg.get("verbose"):
        quiet_library_noise()
    if cfg.get("resume"):
        apply_resume(cfg)
    checkpoint = read_checkpoint(cfg.ckpt_path, for_training=True) if cfg.get("ckpt_path") else None
    metrics_before = checkpoint.get(METRICS_KEY, {}) if checkpoint is not None else {}
    output_dir = Path(cfg.paths.output_dir)
    log.info("run folder: %s", output_dir)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    model = build_model(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint, cfg.ckpt_path)  # a checkpoint of another model is refused here
        del checkpoint
    datamodule = datamodule_for(cfg.data, model.likelihood.pixels)
    datamodule.setup()
    if cfg.get("resumed_from"):
        check_same_data(cfg, datamodule.info)
    if not cfg.get("ckpt_path") and model.output_bias_from_data:  # a new run, not a resumed one
        model.init_output_from_data(*datamodule.training_mean_and_std())
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    cheap_cuda_checks_without_gpus()

    config = resolved_config(cfg)
    config["data_info"] = datamodule.info
    config["run_info"] = {**run_info(cfg.seed, cfg.paths.root_dir), "started_from_checkpoint": cfg.get("ckpt_path"),
                          "wandb": wandb_identity(trainer.loggers)}
    model.run_config = config
    write_yaml(output_dir / "config.yaml", config)
    write_json(output_dir / "run_info.json", {**config["run_info"], "data": datamodule.info})
    for logger in trainer.loggers:
        logger.log_hyperparams(config)

    failed = True
    try:
        with ddp_job():
            fit_model = torch.compile(model) if cfg.get("compile") else model  # Lightning unwraps it again
            clock.lap_since_start("setup")
            with clock.lap("fit"):
                trainer.fit(fit_model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
            # what this fit logged, over what the checkpoint recorded (all of it when nothing was left to train)
            metrics = {**metrics_before, **scalar_metrics(trainer.callback_metrics)}
            metrics = {name: value for name, value in sorted(metrics.items()) if not name.endswith("_step")}
            if cfg.get("test"):
                best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
                with clock.lap("test"):
                    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
                metrics.update(scalar_metrics(trainer.callback_metrics))
                tested = {name: value for name, value in metrics.items() if name.startswith("test/")}
                raise_if_nonfinite(tested, "in the test pass; stopped (no metrics.json written)")
                # the test metrics are recorded before the steps after the test pass can fail
                finish(trainer, output_dir, metrics, datamodule.info, clock.laps, cfg.eval, summary=False)
            with after_the_test_pass(clock):
                if cfg.get("test"):
                    model = trainer.lightning_module
                    metrics.update(pictures_and_sample_quality(cfg, model, datamodule, output_dir, trainer, clock) or {})
                    log_test_tables(wandb_run(trainer.loggers), model, *datamodule.splits["test"])
                finish(trainer, output_dir, metrics, datamodule.info, clock.laps, cfg.eval)
                record_training(trainer, metrics, config)
        failed = False
    finally:
        finish_wandb_runs(trainer.loggers, failed=failed)
    return metrics, {"trainer": trainer, "model": model, "datamodule": datamodule}


@contextmanager
def after_the_test_pass(clock: Stopwatch) -> Iterator[None]:
    """A failure in the pictures, the Fréchet distance or the final records names its step; the checkpoints
    and ``metrics.json`` (written before) are kept."""
    try:
        yield
    except Exception as err:
        step = PART_NAMES.get(clock.current or "", "run summary or the W&B records")
        raise AfterTestError(f"the {step} failed after the test pass ({one_line(err)}); the checkpoints and "
                             "metrics.json (the test metrics) are kept") from err


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Every entry of a ``callbacks`` or ``logger`` group that has a ``_target_``; a factory may return None to
    opt out."""
    objects = []
    for name, entry in (group or {}).items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            built = hydra.utils.instantiate(entry)
            if built is None:
                log.info("%s is switched off", name)
            else:
                objects.append(built)
    return objects


def cheap_cuda_checks_without_gpus() -> None:
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (so that a fork after it cannot meet an
    initialised CUDA). With it, and no GPU, every ``torch.cuda.is_available()`` loads the NVML library again,
    and torch's Adam asks on every step (its cost: ``benchmarks/README.md``). Where NVML sees no GPU there is no
    CUDA to protect, so the plain check (one cached driver query) is used instead."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


@on_rank_zero
def finish(
    trainer: L.Trainer,
    output_dir: Path,
    metrics: dict[str, float],
    data_info: dict[str, Any],
    seconds: dict[str, float],
    eval_cfg: DictConfig,
    summary: bool = True,
) -> None:
    """metrics.json, and (``summary``) a short summary: where things went, what it cost, final metrics."""
    details = getattr(trainer.lightning_module, "test_details", None)
    checkpoint = trainer.checkpoint_callback
    write_json(
        output_dir / "metrics.json",
        {
            "metrics": metrics,
            "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
            "data": data_info,
            "data_model": trainer.lightning_module.likelihood.data_model,
            "seconds": seconds,
            **({"test_details": details} if details else {}),
        },
    )
    if not summary:
        return
    lines = [
        "",
        f"Run folder: {output_dir}",
        f"  data: {describe_data(data_info)}",
    ]
    if checkpoint and checkpoint.best_model_path:
        lines.append(f"  best checkpoint: {checkpoint.best_model_path}")
    lines.append(f"  images: {output_dir / 'images'} (during training), {output_dir / 'pictures'} (final)")
    lines.append("  time: " + ", ".join(f"{PART_NAMES[name]} {value:.0f} s" for name, value in seconds.items()))
    if "test" in seconds:
        lines[-1] += f" (test pass: k = {eval_cfg.k} importance samples)"
    hint = wandb_sync_hint(output_dir)
    if hint:
        lines.append(f"  W&B (offline): {hint}")
    lines += ["Final metrics (nats per example):", format_metrics(metrics)]
    summary = "\n".join(lines)
    (output_dir / "SUMMARY.txt").write_text(summary.strip() + "\n")
    log.info(summary)
