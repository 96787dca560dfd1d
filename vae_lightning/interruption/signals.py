"""Ctrl-C (SIGINT), SIGTERM and a cluster's warning signals (SIGUSR1, SIGUSR2): one path, whatever the run is doing.

During training both only set Lightning's stop flag (``interruption/checkpoint.py`` marks those
moments with :func:`mark_training`), so the loop stops at the next batch boundary, saves ``interrupted.ckpt`` and
resumes exactly. Anywhere else (validation and test passes, pictures, ``evaluate``, ``sample``), and on a second
signal, the run stops at once. Either way this module remembers which signal it was, so the exit code (130 / 143)
and ``status.json`` say so. Importable without torch or Lightning.

SIGUSR1 and SIGUSR2 are what SLURM (``--signal``) and submitit send before a time limit or a preemption. During
training they take the same path (``interrupted.ckpt`` at the batch boundary); the handler that was there before
(submitit's, which requeues the job) is kept in :data:`requeue_handlers` and called once the checkpoint is saved.
A requeued job finds its folder interrupted by one of them and continues from that checkpoint
(``runs/resume.continue_after_preemption``).
"""

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

#: the checkpoint written at a stop signal in training (``interruption/checkpoint.py``), where resume looks first
INTERRUPTED_CHECKPOINT = "interrupted.ckpt"
#: exit codes after an interruption (128 + signal number, as shells report them)
INTERRUPTED_EXIT = {"SIGTERM": 143, "SIGINT": 130, "SIGUSR1": 138, "SIGUSR2": 140}
#: the signals a cluster sends before a time limit or a preemption
PREEMPTION_SIGNALS = ("SIGUSR1", "SIGUSR2")
#: the handlers found for those signals (submitit's requeue), by signal name
requeue_handlers: dict[str, Callable[[int, FrameType | None], Any]] = {}

_received: list[str] = []
_training = threading.Event()


def note_signal(name: str) -> None:
    """Remember that ``name`` (a key of :data:`INTERRUPTED_EXIT`) asked this process to stop."""
    _received.append(name)


def received_signal() -> str | None:
    """The first stop signal this process received, if any."""
    return _received[0] if _received else None


def mark_training(active: bool) -> None:
    """While training runs, a first stop signal waits for the batch boundary instead of stopping at once."""
    if active:
        _training.set()
    else:
        _training.clear()


def _stop(signum: int, frame: FrameType | None) -> None:
    first = not _received
    note_signal(signal.Signals(signum).name)
    if not (first and _training.is_set()):  # Lightning's own SIGTERM handler, run before this one, sets its flag
        raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGINT, SIGTERM and the preemption signals stop this process the way the module docstring says (main
    thread only); a preemption signal's earlier handler (submitit's requeue) is kept for :func:`exit_after`."""
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", *PREEMPTION_SIGNALS):
            previous = signal.signal(signal.Signals[name], _stop)
            if name in PREEMPTION_SIGNALS and callable(previous) and previous is not _stop:
                requeue_handlers[name] = previous


def is_sigterm(err: BaseException) -> bool:
    """Lightning's SIGTERMException (a SystemExit), recognised without importing Lightning."""
    return any(cls.__name__ == "SIGTERMException" for cls in type(err).__mro__)


def signal_behind(err: SystemExit | KeyboardInterrupt) -> str | None:
    """The stop signal that ended a task with ``err``, or None for a plain exit. Ctrl-C and SIGTERM in training
    end as Lightning's SIGTERMException; elsewhere as a KeyboardInterrupt, or as Lightning's exit(1) after it
    handled one: the signal itself was noted by the handlers here."""
    return received_signal() or ("SIGINT" if isinstance(err, KeyboardInterrupt) else "SIGTERM" if is_sigterm(err) else None)


def exit_after(name: str, output_dir: Path) -> str:
    """One line, then submitit's requeue after a cluster's signal (the handler installed before this package's,
    which exits; the requeued job continues from the folder), else the signal's exit code. Returns only when
    submitit will not requeue the job (no attempts left): why, in one line, for the job to end with."""
    kept = "its checkpoints" if (output_dir / "checkpoints").is_dir() else "what was written before the signal"
    print(f"interrupted ({name}); {output_dir} keeps {kept}", file=sys.stderr)
    handler = requeue_handlers.get(name)
    if handler is not None:
        try:
            handler(signal.Signals[name].value, None)
        except Exception as err:  # submitit's UncompletedJobError: "Job not requeued because: ..."
            return " ".join(str(err).split())
    sys.exit(INTERRUPTED_EXIT[name])
