"""Which stop signal ended a run: Ctrl-C (SIGINT) and SIGTERM share one path.

During training both only set Lightning's stop flag, so the loop stops at the next batch boundary, saves
``interrupted.ckpt`` and resumes exactly; this module remembers which signal it was, so the exit code (130 /
143) and ``status.json`` say so. A second Ctrl-C stops at once. Importable without torch or Lightning.
"""

#: exit codes after an interruption (128 + signal number, as shells report them)
INTERRUPTED_EXIT = {"SIGTERM": 143, "SIGINT": 130}

_received: list[str] = []


def note_signal(name: str) -> None:
    """Remember that ``name`` (a key of :data:`INTERRUPTED_EXIT`) asked this process to stop."""
    _received.append(name)


def received_signal() -> str | None:
    """The first stop signal this process received, if any."""
    return _received[0] if _received else None
