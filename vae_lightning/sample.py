"""New digits from a checkpoint: ``python -m vae_lightning.sample ckpt_path=PATH n=64``."""

from vae_lightning.command_line import run_entry_point


def cli() -> None:
    """The ``vae-lightning-sample`` console script, and ``python -m vae_lightning.sample``."""
    run_entry_point("sample")


if __name__ == "__main__":
    cli()
