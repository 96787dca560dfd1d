"""The pipeline behind ``python -m vae_lightning.evaluate``: literature-style test metrics of a checkpoint."""

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from vae_lightning.analysis.after_test import pictures_and_sample_quality
from vae_lightning.console import log, on_rank_zero, quiet_library_noise
from vae_lightning.data.datamodule import datamodule_for
from vae_lightning.models.build import load_model
from vae_lightning.runs.ddp import ddp_job
from vae_lightning.runs.run_files import format_metrics, raise_if_nonfinite, scalar_metrics, write_json
from vae_lightning.tracking.dashboard import checkpoint_run, log_pictures, log_test_tables


def score_checkpoint(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Validation and test metrics of ``cfg.ckpt_path`` with ``cfg.eval.k`` importance samples, its pictures and
    sample quality, into a new evaluation folder; returns the metrics and the ``model`` and ``datamodule``."""
    if not cfg.get("verbose"):
        quiet_library_noise()
    model, run_cfg = load_model(cfg.ckpt_path)
    model.iw_samples = cfg.eval.k
    L.seed_everything(cfg.seed, workers=True)
    datamodule = datamodule_for(run_cfg.data, model.likelihood.pixels)
    datamodule.setup()
    output_dir = Path(cfg.paths.output_dir)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    with ddp_job(), checkpoint_run(run_cfg, cfg.ckpt_path, output_dir, "evaluate", {"eval": dict(cfg.eval)}) as run:
        trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics = scalar_metrics(trainer.callback_metrics)
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics.update(scalar_metrics(trainer.callback_metrics))
        metrics.update(pictures_and_sample_quality(cfg, model, datamodule, output_dir) or {})
        raise_if_nonfinite(metrics, f"in the evaluation of {cfg.ckpt_path}")
        write_scores(cfg, output_dir, metrics, model, datamodule.info)
        if run is not None:
            run.summary.update(metrics)
            log_pictures(run, {f"final/{path.stem}": path for path in (output_dir / "pictures").glob("*.png")})
            log_test_tables(run, model, *datamodule.splits["test"])
    return metrics, {"model": model, "datamodule": datamodule}


@on_rank_zero
def write_scores(cfg: DictConfig, output_dir: Path, metrics: dict[str, float], model, data_info: dict) -> None:
    write_json(
        output_dir / "metrics.json",
        {
            "checkpoint": str(Path(cfg.ckpt_path).resolve()),
            "iw_samples": cfg.eval.k,
            "metrics": metrics,
            "data": data_info,
            "test_details": model.test_details,
        },
    )
    log.info(
        f"\nEvaluation of {cfg.ckpt_path} on {data_info['name']} ({data_info['source']}, "
        f"{data_info['n_test']} test images), k = {cfg.eval.k}:\n{format_metrics(metrics)}\n"
        f"Written to {output_dir} (metrics.json, pictures/)"
    )
