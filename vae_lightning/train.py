"""Train a VAE: ``python -m vae_lightning.train [key=value ...]`` (``--help`` lists the config groups)."""

import sys

import hydra
from omegaconf import DictConfig

from vae_lightning.resolvers import register_resolvers
from vae_lightning.training import train
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import preflight

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_task(train, cfg)
    return metrics.get(cfg.get("optimized_metric") or "", float("nan"))


if __name__ == "__main__":
    preflight(sys.argv[1:])
    main()
