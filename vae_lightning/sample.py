"""New digits from a checkpoint: ``python -m vae_lightning.sample ckpt_path=PATH n=64``."""

from typing import Any

from omegaconf import DictConfig

from vae_lightning.command_line import check_argv, run_with_hydra


def task(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """The pipeline, imported when it runs: ``--help``, ``--cfg`` and a bad command line need no torch."""
    from vae_lightning.pipelines.sample_grid import sample_grid

    return sample_grid(cfg)


def cli() -> None:
    """The ``vae-lightning-sample`` console script, and ``python -m vae_lightning.sample``."""
    check_argv("sample")
    run_with_hydra("sample", task)


if __name__ == "__main__":
    cli()
