"""Stop training when the loss stops being a number, without a host sync on every step."""

import lightning as L
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from vae_lightning.errors import NonFiniteLossError


class NonFiniteLossGuard(L.Callback):
    """Every ``check_every_n_steps`` training steps (and at each epoch end) read the module's
    on-device record of non-finite loss terms and stop with the step and the term that went bad.

    Checkpoints are only written after validation, so the last good checkpoint is left as it was.
    """

    def __init__(self, check_every_n_steps: int = 20) -> None:
        if check_every_n_steps < 1:
            raise MisconfigurationException(
                f"callbacks.nonfinite_guard.check_every_n_steps={check_every_n_steps} is not allowed; use >= 1"
            )
        self.check_every_n_steps = check_every_n_steps

    def _check(self, pl_module: L.LightningModule) -> None:
        report = pl_module.nonfinite_report()
        if report is not None:
            raise NonFiniteLossError(f"{report}; stopped (last good checkpoint kept)")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.check_every_n_steps == 0:
            self._check(pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._check(pl_module)  # before ModelCheckpoint can save a broken model

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check(pl_module)
