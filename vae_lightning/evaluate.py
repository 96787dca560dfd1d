"""Evaluate a checkpoint: ``python -m vae_lightning.evaluate ckpt_path=PATH [eval.k=1000]``."""

from typing import Any

from omegaconf import DictConfig

from vae_lightning.command_line import check_argv, run_with_hydra


def task(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """The pipeline, imported when it runs: ``--help``, ``--cfg`` and a bad command line need no torch."""
    from vae_lightning.pipelines.checkpoint_scores import score_checkpoint

    return score_checkpoint(cfg)


def cli() -> None:
    """The ``vae-lightning-evaluate`` console script, and ``python -m vae_lightning.evaluate``."""
    check_argv("evaluate")
    run_with_hydra("evaluate", task)


if __name__ == "__main__":
    cli()
