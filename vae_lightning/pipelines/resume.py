"""``resume=RUN_DIR``: continue an earlier run (interrupted or finished) in a new run folder."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from vae_lightning.callbacks.interrupt import INTERRUPTED_CHECKPOINT
from vae_lightning.console import log
from vae_lightning.errors import ConfigError

#: what a resumed run takes from the earlier run's config.yaml (then the command line's key=value on top)
RESUMED_SECTIONS = ("seed", "model", "likelihood", "data", "trainer", "eval", "test")


def newest_checkpoint(run_dir: Path) -> Path:
    """interrupted.ckpt or last.ckpt, whichever is newer."""
    candidates = [run_dir / "checkpoints" / name for name in (INTERRUPTED_CHECKPOINT, "last.ckpt")]
    existing = [path for path in candidates if path.is_file()]
    if not existing:
        raise ConfigError(f"resume={str(run_dir)!r} is not allowed; it has no checkpoints/last.ckpt or {INTERRUPTED_CHECKPOINT}")
    return max(existing, key=lambda path: path.stat().st_mtime)


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the earlier run's W&B run (folders are named ``offline-run-<time>-<id>`` or ``run-<time>-<id>``)."""
    runs = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda path: path.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def command_line_settings() -> list[str]:
    """The ``key.sub=value`` overrides typed for this run (group choices and ``resume`` left out)."""
    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.task if "." in o.split("=", 1)[0] and not o.startswith("hydra")]


def apply_resume(cfg: DictConfig) -> None:
    """Fill ``cfg`` from the earlier run: its settings, newest checkpoint and W&B run id."""
    run_dir = Path(str(cfg.resume)).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"resume={str(cfg.resume)!r} is not allowed; it is not a run folder (no config.yaml)")
    saved = OmegaConf.load(run_dir / "config.yaml")
    with open_dict(cfg):
        root_dir = cfg.trainer.get("default_root_dir")
        for section in RESUMED_SECTIONS:
            if section in saved:
                cfg[section] = saved[section]
        cfg.trainer.default_root_dir = root_dir
        for override in command_line_settings():
            key, value = override.split("=", 1)
            OmegaConf.update(cfg, key.lstrip("+~"), OmegaConf.create({"v": value}).v if value else None, force_add=True)
        cfg.ckpt_path = str(newest_checkpoint(run_dir))
        run_id = wandb_run_id(run_dir)
        if run_id and OmegaConf.select(cfg, "logger.wandb") is not None:
            cfg.logger.wandb.run_id = run_id
    log.info("resuming %s from %s", run_dir, cfg.ckpt_path)
