"""Training metrics written straight to the run's loggers, on logging steps only.

Lightning's ``self.log`` costs about a millisecond of bookkeeping per value and call on a CPU (it moves and
reduces each value through its result collection), which at small batches is more than the step itself
(``benchmarks/README.md``). Training values are single numbers logged at the loggers' cadence, so the module
turns them into floats with one host sync and hands them to each logger, with the step and epoch Lightning
would have used; validation and test metrics still go through ``self.log`` (they are reduced across ranks).
"""

from typing import Any


def write_training_metrics(trainer: Any, metrics: dict[str, float], step: int) -> None:
    """``metrics`` (floats) to every logger of ``trainer`` at ``step`` (the optimizer steps before this batch)."""
    for logger in trainer.loggers:
        logger.log_metrics({**metrics, "epoch": trainer.current_epoch}, step=step)
