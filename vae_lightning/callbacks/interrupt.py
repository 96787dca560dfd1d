"""Ctrl-C or SIGTERM: save where training was, so ``resume=RUN_DIR`` continues exactly."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vae_lightning.console import log

INTERRUPTED_CHECKPOINT = "interrupted.ckpt"


class CheckpointOnInterrupt(L.Callback):
    """On KeyboardInterrupt or SIGTERM during fit, write ``<dirpath>/interrupted.ckpt`` (full training
    state: epoch, batches done, optimizer, RNG) and say how to resume."""

    def __init__(self, dirpath: str, run_dir: str) -> None:
        self.dirpath, self.run_dir = Path(dirpath), run_dir

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not trainer.training:
            return
        path = self.dirpath / INTERRUPTED_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)
        what = "SIGTERM" if isinstance(exception, SIGTERMException) else "Ctrl-C"
        log.info(
            "%s: saved epoch %d, step %d to %s; continue with: python -m vae_lightning.train resume=%s",
            what, trainer.current_epoch, trainer.global_step, path, self.run_dir,
        )
