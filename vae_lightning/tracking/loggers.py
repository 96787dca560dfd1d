"""Logger factories that add behaviour the plain Lightning loggers do not have, and sending images to the
loggers that take them."""

import os
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from vae_lightning.console import is_rank_zero, log, on_rank_zero
from vae_lightning.rules import check_value

#: seconds an online W&B run may take to start before training goes on without it
INIT_TIMEOUT = 10
#: logger.wandb.mode
WandbMode = Literal["offline", "online", "disabled"]


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
    check_value("logger.wandb.mode", mode, WandbMode)
    return mode


def wandb_logger(
    save_dir: str,
    project: str = "vae-lightning",
    mode: WandbMode | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    name: str | None = None,
    run_id: str | None = None,
    log_checkpoints: bool = True,
    **kwargs: Any,
) -> WandbLogger | None:
    """A W&B logger, offline unless ``mode`` or the environment's WANDB_MODE says ``online``.

    The run lives in ``save_dir/wandb``, job type ``train``. Its group is the sweep folder's name for a multirun
    job (tagged with its overrides), else the run folder's: the evaluate and sample runs of its checkpoints join
    it. A resumed run (``run_id``) goes on in the same W&B run, tagged ``resumed``. ``log_checkpoints``: the best
    and last checkpoints become ``model`` artifacts at the end. If W&B cannot start, training goes on without it
    (one warning).
    """
    mode = wandb_mode(mode)
    if mode == "disabled":
        return None
    sweep_group, sweep_tags = sweep_context()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    init = dict(project=project, group=group or sweep_group or Path(save_dir).name, job_type="train",
                tags=list(tags or []) + sweep_tags + (["resumed"] if run_id else []), name=name, **kwargs)
    try:
        # The run is started here (rank 0), so a failure is caught now and not mid-training, and with only the
        # arguments W&B still takes (WandbLogger's own start passes ``anonymous``, which W&B warns about).
        run = start_wandb_run(save_dir, mode, init, run_id) if is_rank_zero() else None
        if run is not None:
            run.define_metric("trainer/global_step")  # Lightning's x-axis, as WandbLogger defines it
            run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
            run.define_metric("epoch")
            run.define_metric("val/*", step_metric="epoch")  # once per epoch: plotted against it
            run.define_metric("val/loss", step_metric="epoch", summary="min")  # the runs table sorts by the best
        logger = WandbLogger(save_dir=save_dir, offline=mode == "offline", id=run_id, experiment=run, **init)
    except Exception as err:  # W&B must never stop training: anything it raises is reported once
        warn_wandb("could not start", err, "continuing with the local loggers only")
        return None
    logger.log_checkpoints = log_checkpoints
    return logger


def warn_wandb(what: str, err: Exception, then: str = "going on without it") -> None:
    """One warning line for a W&B failure (W&B never stops the work)."""
    reason = " ".join(str(err).split())[:300]  # one line, whatever the library's message looks like
    log.warning("W&B %s (%s: %s); %s", what, type(err).__name__, reason, then)


def start_wandb_run(save_dir: str, mode: str, init: dict[str, Any], run_id: str | None = None) -> Any:
    """A W&B run in ``save_dir/wandb`` without W&B's banners: offline, the run's summary names the folder and the
    ``wandb sync`` command; online, one line gives the run's page. A failure to start still raises and is
    reported; online, a server that does not answer is given up after :data:`INIT_TIMEOUT` seconds."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")  # also the login lines printed before the settings apply
    settings = wandb.Settings(silent=True, init_timeout=INIT_TIMEOUT)
    resume = "allow" if run_id else None  # only a resumed run asks the server about an earlier one
    run = wandb.init(dir=save_dir, mode=mode, id=run_id, resume=resume, settings=settings, **init)
    if mode == "online":
        log.info("W&B run: %s", run.url)
    return run


@on_rank_zero
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

        run = start_wandb_run(str(sweep_dir), mode, dict(
            project=project, group=sweep_dir.name, job_type="sweep-report", name=f"{sweep_dir.name} report",
            config={"sweep_dir": str(sweep_dir)}))
        run.log({"sweep/report": wandb.Table(columns=header, data=rows)})
        run.finish()
    except Exception as err:  # as for the jobs' runs: W&B never breaks the sweep
        warn_wandb("could not take the sweep report", err)


def log_image(trainer: L.Trainer, key: str, grid: torch.Tensor) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=trainer.global_step)
