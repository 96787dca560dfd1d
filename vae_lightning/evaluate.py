"""Evaluate a checkpoint: ``python -m vae_lightning.evaluate ckpt_path=PATH [eval.k=1000]``."""

from vae_lightning.command_line import run_entry_point


def cli() -> None:
    """The ``vae-lightning-evaluate`` console script, and ``python -m vae_lightning.evaluate``."""
    run_entry_point("evaluate")


if __name__ == "__main__":
    cli()
