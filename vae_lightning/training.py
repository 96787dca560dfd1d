"""The training pipeline behind ``python -m vae_lightning.train``."""

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from vae_lightning.evaluation.final import final_evaluation
from vae_lightning.loggers import finish_wandb_runs
from vae_lightning.models.vae_module import VAE
from vae_lightning.utils.ddp import ddp_job
from vae_lightning.utils.instantiators import instantiate_group
from vae_lightning.utils.run_files import (
    format_metrics,
    resolved_config,
    scalar_metrics,
    wandb_sync_hint,
    write_json,
    write_yaml,
)
from vae_lightning.utils.resume import apply_resume
from vae_lightning.utils.run_info import run_info
from vae_lightning.utils.validation import validate_train_config

log = logging.getLogger(__name__)


def build_model(cfg: DictConfig) -> VAE:
    """The VAE described by a config's ``model`` and ``likelihood`` sections."""
    return hydra.utils.instantiate(cfg.model, likelihood=hydra.utils.instantiate(cfg.likelihood))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the final metrics (nats per example)."""
    if cfg.get("resume"):
        apply_resume(cfg)
    validate_train_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup()
    model = build_model(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    config = resolved_config(cfg)
    config["data_info"] = datamodule.info
    config["run_info"] = {**run_info(cfg.seed, cfg.paths.root_dir), "resumed_from": cfg.get("ckpt_path")}
    model.run_config = config
    write_yaml(output_dir / "config.yaml", config)
    write_json(output_dir / "run_info.json", {**config["run_info"], "data": datamodule.info})
    for logger in trainer.loggers:
        logger.log_hyperparams(config)

    failed = True
    try:
        with ddp_job():
            fit_model = torch.compile(model) if cfg.get("compile") else model  # Lightning unwraps it again
            trainer.fit(fit_model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
            metrics = scalar_metrics(trainer.callback_metrics)
            if cfg.get("test"):
                best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
                trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
                metrics.update(scalar_metrics(trainer.callback_metrics))
                metrics.update(final_evaluation(cfg, trainer.lightning_module, datamodule, output_dir, trainer) or {})
            metrics = {name: value for name, value in metrics.items() if not name.endswith("_step")}
            finish(trainer, output_dir, metrics, datamodule.info)
        failed = False
    finally:
        finish_wandb_runs(trainer.loggers, failed=failed)
    return metrics


@rank_zero_only
def finish(trainer: L.Trainer, output_dir: Path, metrics: dict[str, float], data_info: dict[str, Any]) -> None:
    """metrics.json, and a short summary: where things went, final metrics."""
    details = getattr(trainer.lightning_module, "test_details", None)
    checkpoint = trainer.checkpoint_callback
    write_json(
        output_dir / "metrics.json",
        {
            "metrics": metrics,
            "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
            "data": data_info,
            "data_model": trainer.lightning_module.likelihood.data_model,
            **({"test_details": details} if details else {}),
        },
    )
    lines = [
        "",
        f"Run folder: {output_dir}",
        f"  data: {data_info['name']} from {data_info['source']}"
        f"{' (the official MNIST files, MD5 checked)' if data_info.get('official_mnist') else ''} "
        f"({data_info['n_train']} train / {data_info['n_val']} val / {data_info['n_test']} test)",
    ]
    if checkpoint and checkpoint.best_model_path:
        lines.append(f"  best checkpoint: {checkpoint.best_model_path}")
    lines.append(f"  images: {output_dir / 'images'} (during training), {output_dir / 'pictures'} (final)")
    hint = wandb_sync_hint(output_dir)
    if hint:
        lines.append(f"  W&B (offline): {hint}")
    lines += ["Final metrics (nats per example):", format_metrics(metrics)]
    summary = "\n".join(lines)
    (output_dir / "SUMMARY.txt").write_text(summary.strip() + "\n")
    print(summary)
