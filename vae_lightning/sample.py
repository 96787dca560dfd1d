"""New digits from a checkpoint: ``python -m vae_lightning.sample ckpt_path=PATH n=64``."""

import sys

import hydra
from omegaconf import DictConfig

from vae_lightning.resolvers import register_resolvers
from vae_lightning.utils.command_line import preflight
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import CONF_DIR, validate_sample_values

register_resolvers()


def checked_sample(cfg: DictConfig) -> dict[str, float]:
    validate_sample_values(cfg)
    from vae_lightning.pipelines.sample_grid import sample

    return sample(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    run_task(checked_sample, cfg)


def cli() -> None:
    """The ``vae-lightning-sample`` console script, and ``python -m vae_lightning.sample``."""
    sys.argv[1:] = preflight(sys.argv[1:], "sample")
    main()


if __name__ == "__main__":
    cli()
