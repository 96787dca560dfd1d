"""What the package says, through one logger, :data:`log`, spoken by global rank 0 only (errors by every rank).

The rank is Lightning's once Lightning is loaded, before that the launcher's environment (no torch import).
On the console (``conf/hydra/default.yaml``) information goes to stdout as plain lines, warnings and errors to
stderr, prefixed; the run's log file keeps time stamps.
"""

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("vae_lightning")

F = TypeVar("F", bound=Callable[..., Any])


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (a single-process run always is)."""
    if "lightning.pytorch" in sys.modules:
        from lightning.pytorch.utilities import rank_zero_only

        # Lightning learns the rank of a process on another node (NODE_RANK > 0) only when training starts
        return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
    return all(int(os.environ.get(variable, 0)) == 0 for variable in ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID"))


def on_rank_zero(function: F) -> F:
    """Run ``function`` on global rank 0 only (other ranks get None)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs) if is_rank_zero() else None

    return wrapper  # type: ignore[return-value]


class RankZeroFilter(logging.Filter):
    """Drop records below ERROR from ranks other than 0, so a DDP run says each thing once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or is_rank_zero()


class ConsoleFormatter(logging.Formatter):
    """``message`` for information, ``warning: message`` / ``error: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


class BelowLevel(logging.Filter):
    """Pass only records below ``level`` (a name such as ``"WARNING"``): the stdout handler's filter, so
    warnings and errors go to the stderr handler alone."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self.levelno = logging.getLevelName(level)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.levelno


class DropMessages(logging.Filter):
    """Drop records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_library_noise() -> None:
    """Silence the library messages a user of this package cannot act on, each by its exact text and
    origin (anything else from those libraries still shows):

    * Lightning's tip to install ``litlogger`` (printed on every run without it);
    * Lightning's ``isinstance(treespec, LeafSpec)`` deprecation warning, raised by Lightning's own code
      (``lightning/pytorch/utilities/_pytree.py``) under this torch version, not by anything configurable;
    * the model summary's note that it sizes a mixed-precision model (``trainer.precision=bf16-mixed``) in 32 bits
      (the summary's MB column only; training uses the precision asked for);
    * Lightning's own stderr handlers: imported before logging is set up (the pre-flight's memory check imports
      it), ``lightning.pytorch`` and ``lightning.fabric`` each get one and stop passing records up. When Hydra's
      console and log-file handlers exist, those go and records pass up again, so each line is printed once, on
      stdout, and also lands in the run's log file.
    """
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            library_logger = logging.getLogger(name)
            for handler in list(library_logger.handlers):
                library_logger.removeHandler(handler)
            library_logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        DropMessages("💡 Tip: For seamless cloud logging")
    )
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", module=r"lightning\.pytorch\.utilities\._pytree"
    )
    warnings.filterwarnings("ignore", message=r"Precision \S+ is not supported by the model summary",
                            module=r"lightning\.pytorch\.utilities\.model_summary")


log.addFilter(RankZeroFilter())
