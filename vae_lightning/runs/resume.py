"""``resume=RUN_DIR``: continue an earlier run (interrupted or finished) in a new run folder.

One mechanism, Hydra's own: the resumed run is composed from the earlier run's command line
(``RUN_DIR/.hydra/overrides.yaml``) with this command line's overrides on top, so every override keeps its
type and its grammar (groups, ``+key``, ``~key``) and the earlier run's loggers, callbacks and paths stay
unless this command line changes them. What would make it another experiment is refused in one line
(:data:`FIXED_ON_RESUME`); everything else is applied and recorded in the new run's ``config.yaml``, with a
``resumed_from`` entry.

Importable without torch or Lightning: the entry points use it before the heavy imports.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from vae_lightning.console import log
from vae_lightning.errors import ConfigError
from vae_lightning.interruption.signals import INTERRUPTED_CHECKPOINT, PREEMPTION_SIGNALS
from vae_lightning.runs.run_folder import LIVE, read_status, unquoted
from vae_lightning.tracking.wandb_folders import wandb_run_id

#: settings a resumed run keeps from the earlier run: they define the model, the data and its order
FIXED_ON_RESUME = ("seed", "model", "likelihood", "data")
#: ...except these, which change how it is trained or evaluated, not what
CHANGEABLE_ON_RESUME = (
    "model.optimizer", "model.scheduler", "model.iw_chunk_elements",
    "data.data_dir", "data.cache_dir", "data.download", "data.source", "data.eval_batch_size", "data.on_device",
)
#: the refusal of ``resume=`` together with ``ckpt_path=``
RESUME_WITH_CHECKPOINT = "ckpt_path is not allowed with resume=; resume takes the run's newest checkpoint"
#: overrides of the earlier run that are not carried over (this command line decides them)
NOT_CARRIED = ("resume", "ckpt_path", "hydra")


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(overrides)


def _key(override: Any) -> str:
    return f"{override.key_or_group}@{override.package}" if override.package else override.key_or_group


def resume_dir(argv: list[str]) -> Path | None:
    """The folder named by ``resume=`` on a command line, if any (``resume=null``: none)."""
    values = [unquoted(arg.split("=", 1)[1]) for arg in argv if arg.split("=", 1)[0].lstrip("+") == "resume"]
    if values and not values[-1].strip():
        raise ConfigError("resume='' is not allowed; give a run folder (resume=outputs/runs/<run>)")
    return Path(values[-1]).expanduser() if values and values[-1] != "null" else None


def earlier_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides the run in ``run_dir`` was composed from; refused while that run is running."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"resume={str(run_dir)!r} is not allowed; it is not a run folder (no config.yaml)")
    status = read_status(run_dir)
    if status["status"] in LIVE:
        raise ConfigError(
            f"resume={str(run_dir)!r} is not allowed; that run is still {status['status']} (process {status.get('pid')} "
            f"on {status.get('host')}): wait for it, or stop it (Ctrl-C keeps a checkpoint to resume from)"
        )
    recorded = run_dir / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        raise ConfigError(
            f"resume={str(run_dir)!r} is not allowed; it has no .hydra/overrides.yaml (its command line), "
            "so its settings cannot be recomposed; use ckpt_path=RUN/checkpoints/last.ckpt with the run's settings"
        )
    return [str(item) for item in OmegaConf.load(recorded)]


def resumed_argv(argv: list[str]) -> list[str]:
    """``argv`` with the earlier run's overrides put in front of it (an override typed now replaces the earlier
    one of the same key). Unchanged if ``argv`` has no ``resume=``; applying it twice gives the same list."""
    run_dir = resume_dir(argv)
    if run_dir is None:
        return argv
    if any(arg.split("=", 1)[0].lstrip("+") == "ckpt_path" for arg in argv):
        raise ConfigError(RESUME_WITH_CHECKPOINT)
    flags = [arg for arg in argv if arg.startswith("-")]
    typed = [arg for arg in argv if not arg.startswith("-")]
    typed_keys = {_key(o) for o in _parse(typed)}
    earlier = [
        # a setting the earlier run added (+key=value) may exist now (debug=fast adds it too): set it either way
        f"+{o.input_line}" if o.is_add() and "." in o.key_or_group else o.input_line
        for o in _parse(earlier_overrides(run_dir))
        if _key(o) not in typed_keys and o.key_or_group.split(".")[0].lstrip("+~") not in NOT_CARRIED
    ]
    return [*flags, *earlier, *typed]


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat if flat else {prefix: node}
    return {prefix: node}


def _is_changeable(key: str) -> bool:
    return any(key == allowed or key.startswith(f"{allowed}.") for allowed in CHANGEABLE_ON_RESUME)


def _component(flat: dict[str, Any], group: str) -> str:
    """The class a config group's node builds, or ``none`` for a group left out."""
    target = flat.get(f"{group.replace('/', '.')}._target_")
    return str(target).rpartition(".")[2] if target else "none"


def check_unchanged(cfg: DictConfig, run_dir: Path, groups: list[str] = ()) -> None:
    """Refuse in one line a resumed config whose model, data or seed differ from the earlier run's; a different
    option of a config group (``groups``: ``likelihood``, ``model/latents``, ...) is named as the group."""
    saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
    for section in FIXED_ON_RESUME:
        node = OmegaConf.select(cfg, section, default=None)
        now = _flatten(OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node, section)
        before = _flatten(saved.get(section), section)
        for key in sorted(set(now) | set(before)):
            if _is_changeable(key) or now.get(key) == before.get(key):
                continue
            group = max((g for g in groups if f"{key}.".startswith(f"{g.replace('/', '.')}.")), key=len, default=None)
            changed, was, will = key, repr(before.get(key)), repr(now.get(key))
            if group is not None and _component(before, group) != _component(now, group):
                changed, was, will = group, _component(before, group), _component(now, group)
            raise ConfigError(
                f"resume={str(run_dir)!r} cannot change {changed} (the run has {was}, this command gives {will}); "
                "a resumed run keeps its model, data and seed: start a new run for another"
            )


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The run's interrupted.ckpt and last.ckpt, those that exist."""
    candidates = [run_dir / "checkpoints" / name for name in (INTERRUPTED_CHECKPOINT, "last.ckpt")]
    return [path for path in candidates if path.is_file()]


def newest_checkpoint(run_dir: Path) -> Path:
    """interrupted.ckpt or last.ckpt, whichever is newer."""
    existing = resumable_checkpoints(run_dir)
    if not existing:
        raise ConfigError(f"resume={str(run_dir)!r} is not allowed; it has no checkpoints/last.ckpt or {INTERRUPTED_CHECKPOINT}")
    return max(existing, key=lambda path: path.stat().st_mtime)


def apply_resume(cfg: DictConfig) -> None:
    """Point a recomposed config (the pre-flight checked it against the earlier run) at the earlier run's newest
    checkpoint and W&B run; ``cfg.resumed_from`` records where it came from."""
    run_dir = Path(str(cfg.resume)).expanduser()
    if read_status(run_dir)["status"] == "crashed":
        log.warning("resume: %s was not finished cleanly (its process ended without recording how); "
                    "continuing from its newest checkpoint", run_dir)
    continue_from(cfg, run_dir, newest_checkpoint(run_dir))


def continue_from(cfg: DictConfig, run_dir: Path, checkpoint: Path, **note: str) -> None:
    """Point ``cfg`` at ``checkpoint`` of ``run_dir`` and at that run's W&B run; ``cfg.resumed_from`` records where
    it came from (with ``note``)."""
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint)
        cfg.resumed_from = {"run_dir": str(run_dir.resolve()), "checkpoint": str(checkpoint.resolve()), **note}
        run_id = wandb_run_id(run_dir)
        if run_id and OmegaConf.select(cfg, "logger.wandb") is not None:
            cfg.logger.wandb.run_id = run_id


def continue_after_preemption(cfg: DictConfig) -> None:
    """A job started again in its own folder after a cluster's signal stopped it (submitit's requeue) continues
    from its newest checkpoint, its W&B run included: the one taken at the signal in training, or ``last.ckpt``
    when the signal came after training (in the test pass), which then has nothing left to train and is tested.
    Anything else starts as configured."""
    run_dir = Path(cfg.paths.output_dir)
    status = read_status(run_dir)
    if (status["status"] != "interrupted" or status.get("error") not in PREEMPTION_SIGNALS
            or not resumable_checkpoints(run_dir)):
        return
    checkpoint = newest_checkpoint(run_dir)
    log.info("requeued after %s: continuing from %s", status["error"], checkpoint)
    continue_from(cfg, run_dir, checkpoint, after=status["error"])


#: what must be the same of the data a resumed run loads (its folder may differ)
SAME_DATA_KEYS = ("name", "n_train", "n_val", "n_test", "official_mnist")


def check_same_data(cfg: DictConfig, data_info: dict[str, Any]) -> None:
    """Refuse a resumed run whose data (found again, maybe elsewhere) is not what the earlier run trained on."""
    run_dir = cfg.resumed_from.run_dir
    saved = OmegaConf.to_container(OmegaConf.load(Path(run_dir) / "config.yaml")).get("data_info") or {}
    for key in SAME_DATA_KEYS:
        if key in saved and saved[key] != data_info.get(key):
            raise ConfigError(
                f"resume={run_dir!r} is not allowed here; its data had {key}={saved[key]!r}, the data found now has "
                f"{data_info.get(key)!r} (data.data_dir={cfg.data.data_dir!r})"
            )
