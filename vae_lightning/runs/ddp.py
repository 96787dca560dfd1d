"""DDP inside Hydra multirun.

Lightning's subprocess launcher starts the other ranks as ``python -m <main> <sys.argv[1:]>
hydra.run.dir=<HydraConfig.run.dir>``. Inside a multirun, ``sys.argv`` still holds the whole sweep
(so every child would start a sweep of its own) and ``run.dir`` is not the job's folder. Before
fitting, a multirun job therefore rewrites both so the children re-run exactly this one job, in
its folder, as a single run.

The launcher also leaves MASTER_PORT, LOCAL_RANK, ... in the parent's environment; the next job of
the sweep would take them to mean "processes are created externally" and wait for children that
never come. :func:`ddp_job` restores the environment and the process group after each job.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict, read_write

from vae_lightning.runs.task import in_multirun

# flags that choose the config itself and so must reach the children too
CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def config_flags(argv: list[str]) -> list[str]:
    """The config-choosing flags (with their values) from a command line."""
    kept: list[str] = []
    args = iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in CONFIG_FLAGS:
            kept.append(arg)
            if "=" not in arg:
                kept.append(next(args, ""))
    return kept


def single_job_argv(argv: list[str], task_overrides: list[str]) -> list[str]:
    """argv that re-runs one job of a sweep: program, config flags, the job's own overrides."""
    return [argv[0], *config_flags(argv[1:]), *task_overrides]


def pin_ddp_children_to_this_job() -> None:
    """In a multirun, make Lightning's DDP children re-run this job (not the sweep) in this job's folder."""
    if not in_multirun():
        return
    hydra_cfg = HydraConfig.get()
    sys.argv = single_job_argv(sys.argv, list(hydra_cfg.overrides.task))
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


# what Lightning's subprocess launcher writes into the launching process's environment
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def ddp_job() -> Iterator[None]:
    """One training job: children pinned to it, and afterwards no trace left for the next job."""
    saved_env = {key: os.environ.get(key) for key in LAUNCHER_ENV}
    saved_argv = list(sys.argv)
    pin_ddp_children_to_this_job()
    try:
        yield
    finally:
        sys.argv = saved_argv
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
