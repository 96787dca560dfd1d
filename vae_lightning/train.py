"""Train a VAE: ``python -m vae_lightning.train [key=value ...]`` (``--help`` lists the config groups).

Thin on purpose: the command line and the composed config are checked before torch, Lightning or W&B
are imported, so mistakes are answered in about a second.
"""

import sys

import hydra
from omegaconf import DictConfig

from vae_lightning.resolvers import register_resolvers
from vae_lightning.utils.command_line import preflight
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import CONF_DIR, validate_train_config

register_resolvers()


def checked_train(cfg: DictConfig) -> dict[str, float]:
    if not cfg.get("resume"):  # a resumed run is checked once its saved settings are filled in
        validate_train_config(cfg)
    from vae_lightning.pipelines.fit_and_test import train

    metrics, _ = train(cfg)
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_task(checked_train, cfg)
    return metrics.get(cfg.get("optimized_metric") or "", float("nan"))


def cli() -> None:
    """The ``vae-lightning-train`` console script, and ``python -m vae_lightning.train``."""
    sys.argv[1:] = preflight(sys.argv[1:], "train")
    main()


if __name__ == "__main__":
    cli()
