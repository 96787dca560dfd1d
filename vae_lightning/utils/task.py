"""Running an entry point's task: one-line errors for known failures, and sweeps that survive a bad job."""

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from vae_lightning.callbacks.nonfinite import NonFiniteLossError
from vae_lightning.data.idx import DataIntegrityError
from vae_lightning.data.sources import DataSourceError
from vae_lightning.utils.validation import ConfigError

log = logging.getLogger(__name__)

#: failures whose message says everything: shown as one line, no traceback
USER_ERRORS = (ConfigError, DataSourceError, DataIntegrityError, NonFiniteLossError)
#: exit code for a USER_ERRORS failure
USER_ERROR_EXIT = 2
#: exit codes after an interruption (128 + signal number, as shells report them)
INTERRUPTED_EXIT = {"SIGTERM": 143, "SIGINT": 130}


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def write_status(output_dir: Path, status: str, error: str | None = None) -> None:
    if int(os.environ.get("LOCAL_RANK", 0)) != 0 or int(os.environ.get("NODE_RANK", 0)) != 0:
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "status.json").write_text(json.dumps({"status": status, "error": error}, indent=2) + "\n")


def run_task(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> dict[str, float]:
    """Run ``task(cfg)``; record ``status.json`` in the output folder.

    A single run exits with a one-line message (code 2) for the user errors above; other failures keep
    their traceback. In a multirun, a failed job is recorded and the sweep goes on.
    """
    output_dir = Path(cfg.paths.output_dir)
    write_status(output_dir, "running")
    try:
        metrics = task(cfg)
    except (SIGTERMException, KeyboardInterrupt) as err:
        signal_name = "SIGTERM" if isinstance(err, SIGTERMException) else "SIGINT"
        write_status(output_dir, "interrupted", signal_name)
        print(f"interrupted ({signal_name}); the run folder {output_dir} keeps its checkpoints", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT[signal_name])
    except SystemExit as err:  # Lightning exits with 1 after handling Ctrl-C itself
        write_status(output_dir, "interrupted" if err.code == 1 else "failed", f"exit code {err.code}")
        raise
    except USER_ERRORS as err:
        write_status(output_dir, "failed", f"{type(err).__name__}: {err}")
        if in_multirun():
            log.error("job failed: %s", err)
            return {}
        print(f"error: {err}", file=sys.stderr)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        sys.exit(USER_ERROR_EXIT)
    except Exception as err:
        write_status(output_dir, "failed", f"{type(err).__name__}: {err}")
        if in_multirun():
            log.error("job failed:\n%s", traceback.format_exc())
            return {}
        raise
    write_status(output_dir, "completed")
    return metrics
