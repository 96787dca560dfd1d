"""Ctrl-C or SIGTERM: stop at the next batch boundary, save where training was, so ``resume=RUN_DIR``
continues exactly."""

import signal
from pathlib import Path
from types import FrameType

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vae_lightning.console import log
from vae_lightning.runs.resume import INTERRUPTED_CHECKPOINT
from vae_lightning.runs.stop_signals import mark_training, note_signal, received_signal


class CheckpointOnInterrupt(L.Callback):
    """Ctrl-C during fit takes SIGTERM's path: Lightning's stop flag is set and the loop stops after the batch
    it is in (a second Ctrl-C stops at once). On that stop write ``<dirpath>/interrupted.ckpt`` (full training
    state: epoch, batches done, optimizer, RNG) and say how to resume."""

    def __init__(self, dirpath: str, run_dir: str) -> None:
        self.dirpath, self.run_dir = Path(dirpath), run_dir
        self._trainer: L.Trainer | None = None  # the running fit, for the SIGINT handler
        self._previous_handler = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if received_signal() is not None:
            raise KeyboardInterrupt
        note_signal("SIGINT")
        log.info("Ctrl-C: stopping after this batch (press Ctrl-C again to stop at once)")
        self._trainer._signal_connector.received_sigterm = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        mark_training(True)
        try:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: keep Python's KeyboardInterrupt
            self._previous_handler = None

    def _restore_handler(self) -> None:
        mark_training(False)
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

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
            "%s: saved epoch %d, step %d to %s; continue with: python -m vae_lightning.train resume=%s",
            received_signal(), trainer.current_epoch, trainer.global_step, path, self.run_dir,
        )
