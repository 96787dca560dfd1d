"""Ctrl-C (SIGINT) and SIGTERM: one path, whatever the run is doing.

During training both only set Lightning's stop flag (``callbacks/checkpoint_on_interrupt.py`` marks those
moments with :func:`mark_training`), so the loop stops at the next batch boundary, saves ``interrupted.ckpt`` and
resumes exactly. Anywhere else (validation and test passes, pictures, ``evaluate``, ``sample``), and on a second
signal, the run stops at once. Either way this module remembers which signal it was, so the exit code (130 / 143)
and ``status.json`` say so. Importable without torch or Lightning.
"""

import signal
import threading
from types import FrameType

#: exit codes after an interruption (128 + signal number, as shells report them)
INTERRUPTED_EXIT = {"SIGTERM": 143, "SIGINT": 130}

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
    """Make SIGINT and SIGTERM stop this process the way the module docstring says (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _stop)
