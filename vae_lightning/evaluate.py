"""Evaluate a checkpoint: ``python -m vae_lightning.evaluate ckpt_path=PATH [eval.k=1000]``."""

import sys

import hydra
from omegaconf import DictConfig

from vae_lightning.resolvers import register_resolvers
from vae_lightning.utils.command_line import preflight
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import CONF_DIR, validate_evaluate_values

register_resolvers()


def checked_evaluate(cfg: DictConfig) -> dict[str, float]:
    validate_evaluate_values(cfg)
    from vae_lightning.pipelines.checkpoint_scores import evaluate

    return evaluate(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_task(checked_evaluate, cfg)


def cli() -> None:
    """The ``vae-lightning-evaluate`` console script, and ``python -m vae_lightning.evaluate``."""
    sys.argv[1:] = preflight(sys.argv[1:], "evaluate")
    main()


if __name__ == "__main__":
    cli()
