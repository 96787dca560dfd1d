"""Evaluate a checkpoint: ``python -m vae_lightning.evaluate ckpt_path=PATH [eval.k=1000]``."""

import sys

import hydra
from omegaconf import DictConfig

from vae_lightning.evaluation.evaluate import evaluate
from vae_lightning.resolvers import register_resolvers
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import preflight

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_task(evaluate, cfg)


if __name__ == "__main__":
    preflight(sys.argv[1:])
    main()
