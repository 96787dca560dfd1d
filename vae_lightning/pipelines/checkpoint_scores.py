"""The pipeline behind ``python -m vae_lightning.evaluate``: literature-style test metrics of a checkpoint."""

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from vae_lightning.analysis.final import final_evaluation
from vae_lightning.checkpoints import load_model
from vae_lightning.console import log, on_rank_zero, quiet_library_noise
from vae_lightning.data.datamodule import datamodule_for
from vae_lightning.utils.ddp import ddp_job
from vae_lightning.utils.run_files import format_metrics, raise_if_nonfinite, scalar_metrics, write_json


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if not cfg.get("verbose"):
        quiet_library_noise()
    model, run_cfg = load_model(cfg.ckpt_path)
    model.iw_samples = cfg.eval.k
    L.seed_everything(cfg.seed, workers=True)
    datamodule = datamodule_for(run_cfg.data, model.likelihood.pixels)
    datamodule.setup()
    output_dir = Path(cfg.paths.output_dir)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    with ddp_job():
        trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics = scalar_metrics(trainer.callback_metrics)
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics.update(scalar_metrics(trainer.callback_metrics))
        metrics.update(final_evaluation(cfg, model, datamodule, output_dir) or {})
        raise_if_nonfinite(metrics, f"in the evaluation of {cfg.ckpt_path}")
        write_scores(cfg, output_dir, metrics, model, datamodule.info)
    return metrics


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
