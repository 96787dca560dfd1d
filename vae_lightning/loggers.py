"""Logger factories that add behaviour the plain Lightning loggers do not have."""

import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")


def sweep_context() -> tuple[str | None, list[str]]:
    """(group, tags) for a Hydra multirun job: the sweep folder's name and the job's overrides."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None, []
    hydra_cfg = HydraConfig.get()
    tags = [override[:64] for override in hydra_cfg.overrides.task if not override.startswith("hydra")]
    return Path(hydra_cfg.sweep.dir).name, tags


def wandb_mode(mode: str | None) -> str:
    """``logger.wandb.mode``, else the environment's WANDB_MODE, else offline."""
    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    mode = "offline" if mode == "dryrun" else mode  # wandb's old name, set in the environment by WandbLogger
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r} is not allowed; use one of {list(WANDB_MODES)}")
    return mode


def wandb_logger(
    save_dir: str,
    project: str = "vae-lightning",
    mode: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    name: str | None = None,
    run_id: str | None = None,
    **kwargs: Any,
) -> WandbLogger | None:
    """A W&B logger, offline unless ``mode`` or the environment's WANDB_MODE says ``online``.

    The run lives in ``save_dir/wandb``. Multirun jobs share a group (the sweep folder's name) and are
    tagged with their overrides. If W&B cannot start, training goes on without it (one warning).
    """
    mode = wandb_mode(mode)
    if mode == "disabled":
        return None
    sweep_group, sweep_tags = sweep_context()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    try:
        logger = WandbLogger(
            save_dir=save_dir,
            project=project,
            offline=mode == "offline",
            group=group or sweep_group,
            tags=list(tags or []) + sweep_tags,
            name=name,
            id=run_id,
            **kwargs,
        )
        if rank_zero_only.rank == 0:
            logger.experiment  # start the run now, so a failure is caught here and not mid-training
    except Exception as err:  # W&B must never stop training: anything it raises is reported once
        reason = " ".join(str(err).split())[:300]  # one line, whatever the library's message looks like
        rank_zero_warn(f"W&B could not start ({type(err).__name__}: {reason}); continuing with the local loggers only")
        return None
    return logger


@rank_zero_only
def finish_wandb_runs(loggers: list, failed: bool = False) -> None:
    """Close this job's W&B run (marked failed if it did), so the next job of a sweep starts its own."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish(exit_code=1 if failed else 0)


def log_sweep_report(sweep_dir: Path, project: str, mode: str | None, header: list[str], rows: list[list[str]]) -> None:
    """The sweep report as a W&B table (key ``sweep/report``) in a run of the sweep's group, job type
    ``sweep-report``, beside the jobs' runs. A W&B failure is one warning; the report files are already written."""
    mode = wandb_mode(mode)
    if mode == "disabled":
        return
    try:
        import wandb

        run = wandb.init(
            project=project, group=sweep_dir.name, job_type="sweep-report", name=f"{sweep_dir.name} report",
            dir=str(sweep_dir), mode=mode, config={"sweep_dir": str(sweep_dir)},
        )
        run.log({"sweep/report": wandb.Table(columns=header, data=rows)})
        run.finish()
    except Exception as err:  # as for the jobs' runs: W&B never breaks the sweep
        log.warning("W&B could not take the sweep report (%s: %s)", type(err).__name__, " ".join(str(err).split())[:300])
