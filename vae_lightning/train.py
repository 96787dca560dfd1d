"""Train a VAE: ``python -m vae_lightning.train [key=value ...]`` (``--help`` lists the config groups)."""

from vae_lightning.command_line import run_entry_point


def cli() -> None:
    """The ``vae-lightning-train`` console script, and ``python -m vae_lightning.train``."""
    run_entry_point("train")


if __name__ == "__main__":
    cli()
