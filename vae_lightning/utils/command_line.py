"""The command line, checked before Hydra starts: one line and exit code 2 for anything that cannot work.

Group choices, setting names, every value (each value of a sweep), the checkpoint, ``resume=`` and the run
folder are checked here, before Hydra makes a run folder and before torch, Lightning or W&B are imported.
"""

import difflib
import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae_lightning.errors import ConfigError
from vae_lightning.utils.resume import check_unchanged, resume_dir, resumed_argv
from vae_lightning.utils.validation import (
    CONF_DIR,
    VALUE_CHECKS,
    check_writable,
    config_groups,
    setting_paths,
)

#: the file that marks a folder as claimed by a run (rank zero writes the run's status into it)
STATUS_FILE = "status.json"


def _split(arg: str) -> tuple[str, str, str]:
    key, sep, value = arg.partition("=")
    return key.lstrip("+~"), sep, value


def _is_override(arg: str) -> bool:
    key, sep, _ = _split(arg)
    return not arg.startswith("-") and bool(sep) and not key.startswith("hydra")


def composed_groups(config_name: str, conf_dir: Path) -> set[str] | None:
    """The groups a primary config composes (None: every group of ``conf_dir``)."""
    if config_name == "train":
        return None
    defaults = OmegaConf.to_container(OmegaConf.load(conf_dir / f"{config_name}.yaml")).get("defaults", [])
    return {next(iter(item)) for item in defaults if isinstance(item, dict)}


def check_group_choices(argv: list[str], config_name: str, conf_dir: Path) -> None:
    groups, allowed_groups = config_groups(conf_dir), composed_groups(config_name, conf_dir)
    for arg in argv:
        key, sep, value = _split(arg)
        if arg.startswith("-") or not sep or key not in groups:
            continue
        if allowed_groups is not None and key not in allowed_groups:
            raise ConfigError(
                f"{key}={value} is not allowed for {config_name}, which takes {sorted(allowed_groups - {'hydra'})}; "
                "the model, likelihood and data come from the checkpoint (its config is stored in it)"
            )
        if any(mark in value for mark in "()${}"):
            continue
        for choice in (v.strip() for v in value.split(",")):
            if choice not in groups[key]:
                leave_out = f", or ~{key} to leave the group out" if choice == "null" else ""
                raise ConfigError(f"{key}={choice!r} is not allowed; use one of {groups[key]}{leave_out}")


def sweep_variants(overrides: list[str]) -> list[list[str]]:
    """Override lists that together use every value of every swept key once (not their product): the first
    value of each sweep, then each further value of one sweep at a time."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(" ".join(str(err).split())[:300]) from None
    fixed, swept = [], []
    for override in parsed:
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        try:
            values = list(override.sweep_string_iterator())
        except Exception:  # glob(...) and other forms Hydra expands itself
            continue
        swept.append([f"{override.get_key_element()}={value}" for value in values])
    base = [values[0] for values in swept]
    variants = [fixed + base]
    for i, values in enumerate(swept):
        variants += [fixed + base[:i] + [value] + base[i + 1:] for value in values[1:]]
    return variants


def compose_config(config_name: str, conf_dir: Path, overrides: list[str]) -> DictConfig:
    """The config Hydra will compose; its refusals (a key that needs ``+``, a bad value) in one line."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name=config_name):
            return compose(config_name=config_name, overrides=overrides)
    except HydraException as err:
        groups = config_groups(conf_dir)
        choices = [arg for arg in overrides if _split(arg)[0] in groups]
        if choices != overrides:  # name the unknown setting with a suggestion, if that is what it was
            check_setting_names(overrides, compose_config(config_name, conf_dir, choices))
        raise ConfigError(" ".join(str(err).split())[:400]) from None


def check_setting_names(argv: list[str], cfg: DictConfig) -> None:
    """Every ``key=value`` must name an existing setting (``+key=value`` adds one)."""
    groups = config_groups()
    known = set(setting_paths(cfg))
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if arg.startswith(("-", "+", "~")) or not sep or key.startswith("hydra") or key in groups or key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "--cfg job lists the settings"
        raise ConfigError(f"{key} is not a setting; {hint} (+{key}=... adds a new key)")


def claim_folder(path: str, key: str, mark: bool = True) -> None:
    """A folder named on the command line must be new or empty. A run folder (``mark``) is claimed at once
    (``status.json``, created exclusively), so a second run started into it at the same moment is refused too."""
    folder = Path(path).expanduser()
    if folder.exists() and any(folder.iterdir()):
        held = ", ".join(sorted(p.name for p in folder.iterdir())[:4])
        raise ConfigError(
            f"{key}={path!r} is not allowed; it already holds files ({held}) and a run never writes into a folder "
            "it did not make (name a new folder, or leave it out for a fresh one)"
        )
    check_writable(str(folder), key)
    if not mark:
        return
    try:
        descriptor = os.open(folder / STATUS_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ConfigError(f"{key}={path!r} is not allowed; another run has just started in it") from None
    with os.fdopen(descriptor, "w") as status:
        status.write('{"status": "starting", "error": null}\n')


def is_ddp_child() -> bool:
    """Lightning's DDP launcher restarts the command for ranks > 0 with LOCAL_RANK set."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


def check_command_line(argv: list[str], config_name: str = "train", conf_dir: Path = CONF_DIR) -> list[str]:
    """Check a command line; returns it with a ``resume=`` run's own overrides put in front."""
    if config_name == "train":
        argv = resumed_argv(argv)
    check_group_choices(argv, config_name, conf_dir)
    for arg in argv:
        key, sep, value = _split(arg)
        if key == "ckpt_path" and sep and not Path(value).expanduser().is_file():
            raise ConfigError(f"ckpt_path={value!r} is not allowed; no such file (give a .ckpt from a run's checkpoints/)")
    if config_name != "train" and not any(arg.startswith(("-", "ckpt_path=")) for arg in argv):
        raise ConfigError("ckpt_path is missing; give ckpt_path=RUN/checkpoints/NAME.ckpt")
    overrides = [arg for arg in argv if _is_override(arg)]
    informational = any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in argv)  # --help, --cfg
    variants = sweep_variants(overrides)
    run_dir = resume_dir(argv) if config_name == "train" else None
    for number, variant in enumerate(variants):
        cfg = compose_config(config_name, conf_dir, variant)
        if number == 0:
            check_setting_names(overrides, cfg)
        if not informational:
            VALUE_CHECKS[config_name](cfg)
            if run_dir is not None:
                check_unchanged(cfg, run_dir)
    if informational:
        return argv
    log_dir = next((_split(arg)[2] for arg in argv if _split(arg)[0] == "paths.log_dir"), None)
    check_writable(log_dir or str(Path.cwd() / "outputs"), "paths.log_dir")
    if config_name != "sample" and not is_ddp_child():  # samples share one folder, each file named anew
        for arg in argv:
            key, sep, value = arg.partition("=")
            if key in ("hydra.run.dir", "hydra.sweep.dir") and sep and "$" not in value:
                claim_folder(value, key, mark=key == "hydra.run.dir")
    return argv


def preflight(argv: list[str], config_name: str) -> list[str]:
    """For entry points: a bad command line ends here with one line and exit code 2, before Hydra or
    anything heavy runs (``HYDRA_FULL_ERROR=1`` skips the checks and shows Hydra's own messages).
    Returns the command line to run (a resumed run's overrides in front)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return resumed_argv(argv) if config_name == "train" else argv
    try:
        return check_command_line(argv, config_name)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
