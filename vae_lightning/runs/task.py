"""Running an entry point's task: one-line errors for known failures, and sweeps that survive a bad job.

Importable without torch or Lightning: the entry points use it before the heavy imports.
"""

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vae_lightning.console import is_rank_zero, log
from vae_lightning.errors import USER_ERRORS, AfterTestError
from vae_lightning.interruption.signals import exit_after, signal_behind, stop_on_signals
from vae_lightning.runs.resume import continue_after_preemption
from vae_lightning.runs.run_folder import write_status

#: exit code for a USER_ERRORS failure
USER_ERROR_EXIT = 2
#: where a failed job's traceback is written, in its output folder
TRACEBACK_FILE = "error.txt"


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:500]


def user_error_in(err: BaseException) -> BaseException | None:
    """The user error behind ``err``: itself, or one it was raised from. Hydra's ``instantiate`` wraps what a
    constructor raises (a component's ``ConfigError``) in its own exception; the user's message is the cause's."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, USER_ERRORS):
            return cause
        cause = cause.__cause__
    return None


def run_task(task: Callable[[DictConfig], tuple[dict[str, float], Any]], cfg: DictConfig) -> dict[str, float]:
    """Run a pipeline, ``task(cfg) -> (metrics, objects)``; record ``status.json`` in the output folder; return
    the metrics.

    A single run exits with a one-line message (code 2) for the user errors; other failures keep their
    traceback (``HYDRA_FULL_ERROR=1`` shows it for user errors too). In a multirun, a failed job is one
    line naming the error and its ``error.txt`` (the traceback), and the sweep goes on.
    """
    output_dir = Path(cfg.paths.output_dir)
    continue_after_preemption(cfg)  # a requeued job: from the checkpoint its folder took at the signal
    write_status(output_dir, "running")
    stop_on_signals()
    try:
        metrics, _ = task(cfg)
    except (SystemExit, KeyboardInterrupt) as err:
        signal_name = signal_behind(err)
        if signal_name is None:
            write_status(output_dir, "failed", f"exit code {err.code}")
            raise
        write_status(output_dir, "interrupted", signal_name)
        not_requeued = exit_after(signal_name, output_dir)  # returns only for a job out of attempts
        write_status(output_dir, "interrupted", f"{signal_name}; {not_requeued}")
        log.error("job stopped by %s and not requeued: %s", signal_name, not_requeued)
        return {}
    except Exception as err:
        user_error = user_error_in(err)
        write_status(output_dir, "failed", one_line(user_error or err))
        after_test = isinstance(err, AfterTestError)
        if (in_multirun() or after_test) and is_rank_zero():
            (output_dir / TRACEBACK_FILE).write_text(traceback.format_exc())
        if in_multirun():
            log.error("job failed: %s (traceback: %s)", one_line(user_error or err), output_dir / TRACEBACK_FILE)
            return {}
        if after_test and os.environ.get("HYDRA_FULL_ERROR") != "1":
            print(f"error: {err}; traceback: {output_dir / TRACEBACK_FILE}", file=sys.stderr)
            sys.exit(1)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    write_status(output_dir, "completed")
    return metrics
