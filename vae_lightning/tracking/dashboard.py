"""What a W&B run holds beyond Lightning's metrics and images (and TensorBoard's HParams view): the best epoch,
checkpoints as ``model`` artifacts (offline too: ``wandb sync`` uploads them), the latent code per dimension, the
least likely test digits, and the runs of ``evaluate`` and ``sample`` in their training run's group. Rank 0 only;
a W&B failure is one warning."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from vae_lightning.console import is_rank_zero, on_rank_zero
from vae_lightning.tracking.loggers import start_wandb_run, wandb_mode, warn_wandb

#: rows of the least-likely-digits table
LEAST_LIKELY_ROWS = 32


def never_raises(what: str):
    """Turn what a W&B call raises into one warning: the dashboard never stops the work."""

    def decorate(function):
        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as err:
                warn_wandb(f"could not take {what}", err)
                return None

        return wrapper

    return decorate


def wandb_run(loggers: list) -> Any | None:
    """The W&B run of a trainer's loggers, or None."""
    return next((logger.experiment for logger in loggers if isinstance(logger, WandbLogger)), None)


def wandb_identity(loggers: list) -> dict[str, str] | None:
    """What ``evaluate`` and ``sample`` need to join the training run: its project, group, id and folder."""
    run = wandb_run(loggers) if loggers else None
    return None if run is None else {"project": run.project, "group": run.group, "id": run.id, "dir": run.dir}


@on_rank_zero
@never_raises("the latent code and the least likely digits")
def log_test_tables(run: Any, model, test_x: torch.Tensor, test_y: torch.Tensor) -> None:
    """The latent code per dimension (a bar chart of its KL, or of Cov_x E[z] where the KL has no closed form), a
    table of the test digits the model finds least likely, with their reconstructions and nll_iw, and for a model
    with labels the confusion matrix of its test predictions. Nothing without a W&B run (``run`` None)."""
    if run is None:
        return
    import wandb

    details = model.test_details
    variances = details["mu_variance_per_dim"]
    kl = details.get("kl_per_dim")
    rows = [[d, kl[d] if kl else None, v, active] for d, (v, active) in enumerate(zip(variances, details["active_per_dim"]))]
    table = wandb.Table(columns=["dimension", "kl (nats)", "posterior-mean variance", "active"], data=rows)
    value, title = ("kl (nats)", "KL per latent dimension (nats)") if kl else (
        "posterior-mean variance", "Cov_x E[z] per latent dimension (active above 0.01)")
    run.log({"test/latent_dimensions": wandb.plot.bar(table, "dimension", value, title=title)})
    if "confusion" in details:  # W&B draws it from the (true, predicted) pairs the counts stand for
        pairs = [(true, predicted) for true, row in enumerate(details["confusion"])
                 for predicted, count in enumerate(row) for _ in range(count)]
        run.log({"test/confusion": wandb.plot.confusion_matrix(
            y_true=[true for true, _ in pairs], preds=[predicted for _, predicted in pairs],
            class_names=[str(c) for c in range(len(details["confusion"]))], title="test classes (true, predicted)")})
    nll = model.pass_metrics.nll_per_example
    if nll is None or len(nll) != len(test_x):
        return
    order = torch.argsort(nll, descending=True)[:LEAST_LIKELY_ROWS]
    with torch.no_grad():
        x, y = test_x[order].to(model.device), test_y[order].to(model.device)
        labels = None if model.labels is None else model.labels.one_hot(y)  # encoded at their own label
        recon = model.decode_images(model.encode(x, labels)[0], y=None if labels is None else y).clamp(0, 1).cpu()
    data = [[int(i), int(test_y[i]), float(nll[i]), wandb.Image(x[row].float().cpu()), wandb.Image(recon[row])]
            for row, i in enumerate(order.tolist())]
    run.log({"test/least_likely": wandb.Table(
        columns=["index", "label", "nll_iw (nats)", "image", "reconstruction"], data=data)})


@on_rank_zero
@never_raises("the checkpoints")
def log_checkpoints(run: Any, best: str, last: str, metadata: dict[str, Any]) -> None:
    """The best and last checkpoints as versions of the ``model-<run id>`` artifact, aliases ``best`` and
    ``latest`` (one version with both when they are the same file), with ``metadata``. (W&B also gives each
    version ``latest`` as it is logged; the last one logged keeps it.)"""
    import wandb

    paths = {path: [alias] for path, alias in ((best, "best"), (last, "latest")) if path and Path(path).is_file()}
    if best and last and Path(best).resolve() == Path(last).resolve():
        paths = {best: ["best", "latest"]}
    for path, aliases in paths.items():
        artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata={**metadata, "file": Path(path).name})
        artifact.add_file(path, name="model.ckpt")
        run.log_artifact(artifact, aliases=aliases)


@on_rank_zero
def record_training(trainer, metrics: dict[str, float], config: dict[str, Any]) -> None:
    """At the end of a training run: the settings with the final metrics in TensorBoard's HParams view; in W&B the
    epoch of the best checkpoint, and the checkpoints as artifacts (unless ``logger.wandb.log_checkpoints=false``)."""
    final = {name: value for name, value in metrics.items() if name.startswith(("val/", "test/"))}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(config, metrics=final, step=trainer.global_step)
        if isinstance(logger, WandbLogger):
            record_wandb(logger, trainer.checkpoint_callback, final, config)


@never_raises("the run's summary and checkpoints")
def record_wandb(logger: WandbLogger, callback, final: dict[str, float], config: dict[str, Any]) -> None:
    if callback is None:
        return
    run = logger.experiment
    best = callback.best_model_path
    # Lightning forgets the last path once the test pass has loaded the best checkpoint
    last = callback.last_model_path or str(Path(callback.dirpath or "", f"{callback.CHECKPOINT_NAME_LAST}.ckpt"))
    if best:
        epoch = torch.load(best, map_location="cpu", weights_only=True, mmap=True)["epoch"]
        run.summary.update({"best/epoch": epoch, "best/checkpoint": Path(best).name})
    if getattr(logger, "log_checkpoints", True):
        log_checkpoints(run, best, last, {"config": config, "metrics": final, "data": config.get("data_info")})


@on_rank_zero
@never_raises("the pictures")
def log_pictures(run: Any, images: dict[str, Path]) -> None:
    """PNG files as images, by key."""
    import wandb

    run.log({key: wandb.Image(str(path)) for key, path in images.items()})


def model_artifact(run_dir: Path) -> str:
    """``model-<run id>:best``, the artifact a training run's best checkpoint went to, or '' (no W&B, or
    ``logger.wandb.log_checkpoints=false``)."""
    try:
        identity = json.loads((run_dir / "run_info.json").read_text()).get("wandb")
        logged = OmegaConf.select(OmegaConf.load(run_dir / "config.yaml"), "logger.wandb.log_checkpoints")
    except (OSError, ValueError):
        return ""
    return f"model-{identity['id']}:best" if identity and logged else ""


@contextmanager
def checkpoint_run(run_cfg: DictConfig, ckpt_path: str, output_dir: Path, job_type: str,
                   settings: dict[str, Any]) -> Iterator[Any | None]:
    """A W&B run for ``evaluate`` or ``sample`` of a checkpoint whose training run logged to W&B (else None): in
    that run's group and project, naming it and the checkpoint in its config; finished on leaving."""
    wandb_cfg = OmegaConf.select(run_cfg, "logger.wandb")
    training = OmegaConf.select(run_cfg, "run_info.wandb") or {}
    run = None
    if wandb_cfg is not None and wandb_mode(wandb_cfg.get("mode")) != "disabled" and is_rank_zero():
        config = {"checkpoint": str(Path(ckpt_path).resolve()), "training_run": training.get("id"),
                  "training_run_dir": training.get("dir"), **settings}
        init = dict(project=training.get("project") or wandb_cfg.get("project"), group=training.get("group"),
                    job_type=job_type, name=f"{job_type} {Path(ckpt_path).name}", config=config)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            run = start_wandb_run(str(output_dir), wandb_mode(wandb_cfg.get("mode")), init)
        except Exception as err:
            warn_wandb("could not start", err)
    try:
        yield run
    finally:
        if run is not None:
            run.finish()
