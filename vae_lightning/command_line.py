"""The entry points' shared front (:func:`run_entry_point`): ``--help``, and the command line and its config
checked once, before Hydra makes a run folder and before torch is imported.

Every value (each value of a sweep) is checked by the rules of ``vae_lightning.rules``: the components' own
annotations, and :data:`SETTINGS` for the keys outside any component. Anything that cannot work is one line, exit 2.
"""

import atexit
import difflib
import importlib.metadata
import importlib.resources
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from vae_lightning.console import is_rank_zero
from vae_lightning.errors import M2_NEEDS_ELBO, NEEDS_DIAGONAL_POSTERIOR, SOURCE_ONLY_FOR, ConfigError
from vae_lightning.resolvers import register_resolvers
from vae_lightning.rules import (
    PACKAGE,
    Count,
    NonNegativeInt,
    Positive,
    Seed,
    check_section,
    check_value,
    class_constant,
    module_constant,
)
from vae_lightning.runs.resume import check_unchanged, resume_dir, resumed_argv
from vae_lightning.runs.run_folder import check_folder, check_writable, claim_folder, claim_resume, unquoted

#: the Hydra configs, shipped inside the package (``conf/`` at the top of a clone links here)
CONF_DIR = Path(str(importlib.resources.files("vae_lightning") / "conf"))

#: settings whose value is a path, which a shell passes as one word, spaces and all
PATH_SETTINGS = ("resume", "ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "paths.log_dir", "paths.data_dir")

#: the rules of the settings that belong to no component (the components' own are their annotations)
SETTINGS: dict[str, Any] = {
    "seed": Seed,
    "threads": Count,
    "test": bool,
    "compile": bool,
    "verbose": bool,
    "mean": bool,
    "trainer.max_epochs": Count,
    "model.optimizer.lr": Positive,
    "eval.k": Count,
    "eval.fid_samples": NonNegativeInt,
    "eval.gmm_components": Count,
    "sampler": Literal["prior", "gmm"],
    "gmm_components": Count,
    "n": Count,
    "nrow": Count,
    "label": NonNegativeInt,
}

def config_groups(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Every config group under ``conf_dir`` (``likelihood``, ``model/encoder``, ...) and its options."""
    groups = {}
    for folder in conf_dir.rglob("*"):
        options = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        if options:
            groups[folder.relative_to(conf_dir).as_posix()] = options
    return groups


def setting_paths(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config (``model.latent_dim``, ...)."""
    paths = []
    for key in cfg.keys() if isinstance(cfg, DictConfig) else []:
        path = f"{prefix}{key}"
        paths.append(path)
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none() and not node._is_interpolation():
            paths += setting_paths(node, f"{path}.")
    return paths


def package_sections(node: Any, path: str = "") -> list[tuple[str, DictConfig]]:
    """(section, node) of every config section whose ``_target_`` is a class or function of this package."""
    if not isinstance(node, DictConfig):
        return []
    found = [(path, node)] if isinstance(node.get("_target_"), str) and node._target_.startswith(PACKAGE) else []
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            found += package_sections(child, f"{path}.{key}" if path else str(key))
    return found


def available_devices(accelerator: str) -> int:
    import torch  # only asked when more than one device is requested

    if accelerator in ("gpu", "cuda"):
        return torch.cuda.device_count()
    if accelerator == "mps":
        return int(torch.backends.mps.is_available())
    if accelerator == "auto" and torch.cuda.is_available():
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_devices(cfg: DictConfig) -> None:
    devices = OmegaConf.select(cfg, "trainer.devices", default=None)
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default=None) or "auto")
    if devices in (None, "auto", -1, 1):
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"trainer.devices={devices!r} is not allowed; use an integer >= 1, -1 or auto")
    available = available_devices(accelerator)
    if devices > available:
        kind = "CPU cores" if available == (os.cpu_count() or 1) else f"{accelerator} devices"
        raise ConfigError(f"trainer.devices={devices} is not allowed; this machine has {available} {kind}")


def check_machine_folders(cfg: DictConfig, config_name: str) -> None:
    """The user cache must take files (train and evaluate write the Fréchet classifier there), and the data folder
    must be a folder: found before any work, not after training."""
    if config_name == "sample":
        return
    cache_dir = OmegaConf.select(cfg, "paths.cache_dir", default=None)
    if cache_dir:
        check_writable(str(cache_dir), "paths.cache_dir")
    data_dir = OmegaConf.select(cfg, "data.data_dir", default=None) if config_name == "train" else None
    if data_dir:
        check_folder(str(data_dir), "paths.data_dir")


def check_objective_needs(cfg: DictConfig) -> None:
    """What the training objective needs of the rest of the config, by its class's own declarations
    (``needs_diagonal_posterior``, ``min_batch_size``, ``needs_bounded_run``): settings each allowed alone."""
    objective = OmegaConf.select(cfg, "model.objective._target_", default=None)
    if not isinstance(objective, str):
        return
    name = objective.rpartition(".")[2]
    posterior = OmegaConf.select(cfg, "model.posterior._target_", default=None)
    if class_constant(objective, "needs_diagonal_posterior") and (
            OmegaConf.select(cfg, "model.latents", default=None) is not None
            or (isinstance(posterior, str) and not class_constant(posterior, "diagonal"))):
        raise ConfigError(NEEDS_DIAGONAL_POSTERIOR.format(objective=name))
    batch_size, smallest = OmegaConf.select(cfg, "data.batch_size", default=None), class_constant(objective, "min_batch_size")
    if isinstance(batch_size, int) and smallest and batch_size < smallest:
        raise ConfigError(f"data.batch_size={batch_size} is not allowed with {name} (model.objective); use an integer "
                          f">= {smallest}: its minibatch estimate needs that many examples")
    epochs, steps = (OmegaConf.select(cfg, f"trainer.{key}", default=None) for key in ("max_epochs", "max_steps"))
    if class_constant(objective, "needs_bounded_run") and epochs in (None, -1) and steps in (None, -1):
        raise ConfigError(f"{name} (model.objective) needs a bounded run; set trainer.max_epochs or trainer.max_steps")


def check_labels(cfg: DictConfig) -> None:
    """``data.labelled`` with the label model that learns from a labelled subset (its class says
    ``semi_supervised``), which needs it: a multiple of the classes, at most the training split; that model's
    bounds are the ELBO's."""
    labelled = OmegaConf.select(cfg, "data.labelled", default=None)
    target = OmegaConf.select(cfg, "model.labels._target_", default=None)
    semi_supervised = isinstance(target, str) and class_constant(target, "semi_supervised")
    if labelled is None:
        if semi_supervised:
            raise ConfigError("model/labels=semi_supervised needs data.labelled=N, the number of labelled training "
                              "images (Kingma et al.: 100)")
        return
    if not semi_supervised:
        raise ConfigError(f"data.labelled={labelled} is not allowed without model/labels=semi_supervised (the model "
                          "that learns from a labelled subset; model/labels=conditional uses every label)")
    n_classes = OmegaConf.select(cfg, "model.labels.n_classes", default=10)
    images = module_constant("vae_lightning.data.sources", "OFFICIAL_TRAIN_IMAGES")
    n_train = images - int(round(images * OmegaConf.select(cfg, "data.val_fraction", default=0.1)))
    if labelled % n_classes or labelled > n_train:
        raise ConfigError(f"data.labelled={labelled} is not allowed; use a multiple of the {n_classes} classes "
                          f"(the same number of each), at most the {n_train:,} training images")
    objective = OmegaConf.select(cfg, "model.objective._target_", default="")
    if not class_constant(objective, "kl_weighted") or OmegaConf.select(cfg, "model.objective.free_bits", default=0):
        raise ConfigError(M2_NEEDS_ELBO.format(objective=objective.rpartition(".")[2]))


def check_what_torch_answers(cfg: DictConfig, config_name: str, run_dir: Path | None) -> None:
    """The checks that need torch, imported only for a command that will run: a training run's model must fit in
    memory, and a run continued from a checkpoint must have epochs left to train; a label to sample is one of the
    checkpoint's classes."""
    if config_name == "sample" and cfg.get("label") is not None:
        from vae_lightning.models.checkpoints import CONFIG_KEY, read_checkpoint
        from vae_lightning.models.labels.base import check_label

        check_label(OmegaConf.select(OmegaConf.create(read_checkpoint(cfg.ckpt_path)[CONFIG_KEY]),
                                     "model.labels.n_classes", default=None), cfg.label)
    if config_name != "train":
        return
    from vae_lightning.models.build import check_fits_in_memory
    from vae_lightning.models.checkpoints import check_something_to_train, read_checkpoint
    from vae_lightning.runs.resume import newest_checkpoint

    check_fits_in_memory(cfg)
    checkpoint = newest_checkpoint(run_dir) if run_dir is not None else cfg.get("ckpt_path")
    if checkpoint:
        check_something_to_train(read_checkpoint(checkpoint, for_training=True),
                                 OmegaConf.select(cfg, "trainer.max_epochs", default=None), str(checkpoint))


def check_data_source(cfg: DictConfig) -> None:
    """A source that serves one data set only (``data/sources.ONLY_FOR``), asked for another."""
    dataset, source = (OmegaConf.select(cfg, f"data.{key}", default=None) for key in ("name", "source"))
    only_for = module_constant("vae_lightning.data.sources", "ONLY_FOR") or {}
    if source in only_for and dataset != only_for[source]:
        raise ConfigError(SOURCE_ONLY_FOR.format(source=source, dataset=only_for[source]))


def check_config(cfg: DictConfig) -> None:
    """ConfigError, one line, for the first setting that cannot work: the settings of :data:`SETTINGS`, then every
    section built from a class of the package, by that class's own annotations and needs; then the devices."""
    for key, annotation in SETTINGS.items():
        check_value(key, OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False), annotation)
    for section, node in package_sections(cfg):
        check_section(section, node)
    check_objective_needs(cfg)
    check_labels(cfg)
    check_data_source(cfg)
    check_devices(cfg)


# ----------------------------------------------------------------------------------------------------------
# The command line


def _split(arg: str) -> tuple[str, str, str]:
    key, sep, value = arg.partition("=")
    return key.lstrip("+~"), sep, value


def quote_paths(argv: list[str]) -> list[str]:
    """A path with spaces or non-ASCII characters, as the shell passes it, quoted for Hydra's grammar; a path
    quoted already, or a sweep over several paths, is left as typed."""
    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if (sep and key.lstrip("+") in PATH_SETTINGS and value[:1] not in ("'", '"') and "," not in value
                and (any(char.isspace() for char in value) or not value.isascii())):
            arg = f"{key}='{value.replace(chr(39), chr(92) + chr(39))}'"
        quoted.append(arg)
    return quoted


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
        if arg.startswith("~") and not sep and key not in groups and ("/" in key or "." not in key):
            raise ConfigError(f"{arg} is not allowed; {key} is not a config group (--help lists them)")
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


def parsed_overrides(overrides: list[str]) -> list[Any]:
    """Hydra's reading of the overrides; what its grammar refuses, in one line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(" ".join(str(err).split())[:300]) from None


def sweep_variants(overrides: list[str]) -> list[list[str]]:
    """Override lists that together use every value of every swept key once (not their product): the first
    value of each sweep, then each further value of one sweep at a time."""
    fixed, swept = [], []
    for override in parsed_overrides(overrides):
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


def is_ddp_child() -> bool:
    """Lightning's DDP launcher restarts the command for ranks > 0 with LOCAL_RANK set."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


def help_text(config_name: str, overrides: list[str], conf_dir: Path = CONF_DIR) -> str:
    """What ``--help`` prints: the groups and their options, then the composed config (Hydra's own help copies
    the config repository once per option, several seconds for these groups)."""
    allowed = composed_groups(config_name, conf_dir)
    groups = {group: options for group, options in config_groups(conf_dir).items()
              if group != "hydra" and (allowed is None or group.split("/")[0] in allowed)}
    config = OmegaConf.to_yaml(compose_config(config_name, conf_dir, overrides))
    return "\n".join([
        f"python -m vae_lightning.{config_name} [group=option ...] [key=value ...]   (-m: a sweep over comma lists)",
        "",
        "== Configuration groups ==",
        "Compose your configuration from those groups (group=option)",
        "",
        *(f"{group}: {', '.join(options)}" for group, options in sorted(groups.items())),
        "",
        "== Config ==",
        "Override anything in the config (foo.bar=value)",
        "",
        config,
        "Use --hydra-help to view Hydra specific help",
    ])


def check_command_line(argv: list[str], config_name: str = "train", conf_dir: Path = CONF_DIR) -> list[str]:
    """Check a command line; returns it with a ``resume=`` run's own overrides put in front."""
    if config_name == "train":
        argv = resumed_argv(argv)
    check_group_choices(argv, config_name, conf_dir)
    for arg in argv:
        key, sep, value = _split(arg)
        value = unquoted(value)
        if key == "ckpt_path" and sep and not Path(value).expanduser().is_file():
            raise ConfigError(f"ckpt_path={value!r} is not allowed; no such file (give a .ckpt from a run's checkpoints/)")
    if config_name != "train" and not any(arg.startswith(("-", "ckpt_path=")) for arg in argv):
        raise ConfigError("ckpt_path is missing; give ckpt_path=RUN/checkpoints/NAME.ckpt")
    overrides = [arg for arg in argv if _is_override(arg)]
    informational = any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in argv)  # --cfg, --info
    variants = sweep_variants(overrides)
    run_dir = resume_dir(argv) if config_name == "train" else None
    configs = [compose_config(config_name, conf_dir, variant) for variant in variants]
    for number, cfg in enumerate(configs):
        if number == 0:
            check_setting_names(overrides, cfg)
        if not informational:
            check_config(cfg)
            if run_dir is not None:
                check_unchanged(cfg, run_dir, list(config_groups(conf_dir)))
    if informational:
        return argv
    parsed_overrides([arg for arg in argv if _split(arg)[1] and _split(arg)[0].startswith("hydra")])  # the rest: above
    log_dir = next((unquoted(_split(arg)[2]) for arg in argv if _split(arg)[0] == "paths.log_dir"), None)
    check_writable(log_dir or str(Path.cwd() / "outputs"), "paths.log_dir")
    check_machine_folders(cfg, config_name)
    for cfg in configs:  # the checks that import torch, last
        check_what_torch_answers(cfg, config_name, run_dir)
    if config_name != "sample" and not is_ddp_child():  # samples share one folder, each file named anew
        if run_dir is not None:
            claim_resume(run_dir)
        for arg in argv:
            key, sep, value = arg.partition("=")
            if key in ("hydra.run.dir", "hydra.sweep.dir") and sep and "$" not in value:
                claim_folder(unquoted(value), key, mark=key == "hydra.run.dir")
    return argv


#: Hydra's flags that take the next word as their value
FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun")


def check_words(argv: list[str]) -> None:
    """A word that is neither a flag, a flag's value nor ``key=value`` (``model.latent_dim=5 oops``)."""
    for previous, arg in zip(["", *argv], argv):
        if not arg.startswith(("-", "~")) and "=" not in arg and previous not in FLAGS_WITH_VALUE:
            raise ConfigError(f"{arg!r} is not a setting; give key=value or group=option (--help lists them)")


def preflight(argv: list[str], config_name: str) -> list[str]:
    """A bad command line ends here with one line and exit code 2, before Hydra or anything heavy runs
    (``HYDRA_FULL_ERROR=1`` skips the checks and shows Hydra's own messages); ``--help`` is answered here.
    Returns the command line to run (a resumed run's overrides in front)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or {"-sc", "--shell-completion"} & set(argv):
        return resumed_argv(argv) if config_name == "train" else argv  # Hydra's own messages; its tab completion
    try:
        if "--help" in argv or "-h" in argv:
            print(help_text(config_name, [arg for arg in argv if _is_override(arg)]))
            raise SystemExit(0)
        if "--version" in argv:
            import hydra

            print(f"vae-lightning {importlib.metadata.version('vae-lightning')} (Hydra {hydra.__version__})")
            raise SystemExit(0)
        check_words(argv)
        return check_command_line(quote_paths(argv), config_name)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def folder_of_another_rank(argv: list[str]) -> list[str]:
    """Overrides for a process of a multi-node run that is not global rank 0 and was started beside it (on another
    node, by torchrun or srun) rather than by Lightning, which names rank 0's folder: such a process writes
    nothing, so its Hydra folder is a temporary one, removed when it ends, and not a stray run folder."""
    if is_rank_zero() or any(arg.startswith("hydra.run.dir=") for arg in argv):
        return []
    folder = tempfile.mkdtemp(prefix="vae_lightning_other_rank_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return [f"hydra.run.dir={folder}", "hydra.output_subdir=null"]


def check_argv(config_name: str) -> None:
    """An entry point's first step, before anything heavy is imported: a bad command line ends here (one line,
    exit 2), ``--help`` is answered; ``sys.argv`` becomes the command line to run."""
    register_resolvers()
    sys.argv[1:] = preflight(sys.argv[1:], config_name) + folder_of_another_rank(sys.argv[1:])


def run_with_hydra(config_name: str, pipeline: Callable[[DictConfig], tuple[dict[str, float], Any]]) -> None:
    """Run ``pipeline`` under Hydra with the config ``config_name`` (each job of a sweep through
    :func:`~vae_lightning.runs.task.run_task`)."""
    import hydra

    from vae_lightning.runs.task import run_task

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> float:
        metrics = run_task(pipeline, cfg)
        return metrics.get(cfg.get("optimized_metric") or "", float("nan"))

    main()
