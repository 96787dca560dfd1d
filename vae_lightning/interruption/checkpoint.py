"""Ctrl-C, SIGTERM or a cluster's SIGUSR1/SIGUSR2: stop at the next batch boundary, save where training was, so
``resume=RUN_DIR`` (or a requeued job) continues exactly."""

import shlex
import signal
from pathlib import Path
from types import FrameType

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vae_lightning.console import log
from vae_lightning.interruption.signals import (
    INTERRUPTED_CHECKPOINT,
    PREEMPTION_SIGNALS,
    mark_training,
    note_signal,
    received_signal,
)


class CheckpointOnInterrupt(L.Callback):
    """Ctrl-C, SIGUSR1 or SIGUSR2 during fit take SIGTERM's path: Lightning's stop flag is set and the loop stops
    after the batch it is in (a second signal stops at once). On that stop write ``<dirpath>/interrupted.ckpt`` (full training
    state: epoch, batches done, optimizer, RNG) and say how to resume."""

    def __init__(self, dirpath: str, run_dir: str) -> None:
        self.dirpath, self.run_dir = Path(dirpath), run_dir
        self._trainer: L.Trainer | None = None  # the running fit, for the signal handlers
        self._previous_handlers: dict[int, object] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if received_signal() is not None:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        note_signal(name)
        reason = "Ctrl-C" if name == "SIGINT" else f"{name} (the cluster's time limit or a preemption)"
        log.info("%s: stopping after this batch%s", reason, " (press Ctrl-C again to stop at once)" * (name == "SIGINT"))
        self._trainer._signal_connector.received_sigterm = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        mark_training(True)
        for signum in (signal.SIGINT, *(signal.Signals[name] for name in PREEMPTION_SIGNALS)):
            try:
                previous = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: keep Python's KeyboardInterrupt
                continue
            self._previous_handlers[signum] = previous

    def _restore_handler(self) -> None:
        mark_training(False)
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)
        self._previous_handlers = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handler()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handler()
        if isinstance(exception, KeyboardInterrupt) and received_signal() is None:
            note_signal("SIGINT")
        if isinstance(exception, SIGTERMException) and received_signal() is None:
            note_signal("SIGTERM")
        # a KeyboardInterrupt here is a second Ctrl-C: it stopped mid-batch, so no checkpoint of that moment
        if not isinstance(exception, SIGTERMException) or not trainer.training:
            return
        path = self.dirpath / INTERRUPTED_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)
        log.info(
            "%s: saved epoch %d, step %d to %s; continue with: python -m vae_lightning.train %s",
            received_signal(), trainer.current_epoch, trainer.global_step, path, shlex.quote(f"resume={self.run_dir}"),
        )
