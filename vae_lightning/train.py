"""Train a VAE: ``python -m vae_lightning.train [key=value ...]`` (``--help`` lists the config groups)."""

from typing import Any

from omegaconf import DictConfig

from vae_lightning.command_line import check_argv, run_with_hydra


def task(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """The pipeline, imported when it runs: ``--help``, ``--cfg`` and a bad command line need no torch."""
    from vae_lightning.pipelines.fit_and_test import fit_and_test

    return fit_and_test(cfg)


def cli() -> None:
    """The ``vae-lightning-train`` console script, and ``python -m vae_lightning.train``."""
    check_argv("train")
    run_with_hydra("train", task)


if __name__ == "__main__":
    cli()
