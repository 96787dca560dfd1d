"""What a run folder's ``wandb/`` holds, read without importing W&B or Lightning (the resume pre-flight reads it)."""

from pathlib import Path


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the run's W&B run (folders are named ``offline-run-<time>-<id>`` or ``run-<time>-<id>``)."""
    runs = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda path: path.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def wandb_sync_hint(output_dir: Path) -> str | None:
    """The command that uploads the run's offline W&B run, if it has one."""
    runs = sorted((output_dir / "wandb").glob("offline-run-*"))
    return f"wandb sync {runs[-1]}" if runs else None
