"""Where a run's wall time goes: named laps, written to ``metrics.json`` (``seconds``) and the run summary."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

#: the parts of a run's wall time, and how the run summary names them
PART_NAMES = {"setup": "set-up", "fit": "training", "test": "test pass", "pictures": "pictures",
              "frechet": "Fréchet distance"}


class Stopwatch:
    """Seconds per named part of a run (the keys of ``PART_NAMES``), in the order they ran."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.current: str | None = None  # the lap in progress, or the one that failed
        self._since = time.perf_counter()

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        started, self.current = time.perf_counter(), name
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - started
        self.current = None  # kept when the lap failed: the step that failed

    def lap_since_start(self, name: str) -> None:
        """Record the time from the stopwatch's creation to now as ``name`` (the set-up before the first lap)."""
        self.laps[name] = time.perf_counter() - self._since
