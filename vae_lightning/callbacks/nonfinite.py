"""Stop training when a loss term or a validation metric stops being a number, before it can be checkpointed."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from vae_lightning.errors import NonFiniteLossError
from vae_lightning.utils.run_files import nonfinite_names, scalar_metrics


def checkpoint_left(trainer: L.Trainer) -> str:
    """What the run has to go back to, said as it is."""
    callback = trainer.checkpoint_callback
    for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
        if path and Path(path).is_file():
            return f"the last good checkpoint is {path}"
    return "no checkpoint had been written"


class NonFiniteLossGuard(L.Callback):
    """Every ``check_every_n_steps`` training steps (and at each epoch end) read the module's on-device record
    of non-finite loss terms, and after each validation pass its metrics; stop with the step or epoch and the
    metric that went bad.

    Lightning runs checkpoint callbacks after every other callback, so a model whose loss or validation
    metric is not finite is never saved, as ``best`` or at all.
    """

    def __init__(self, check_every_n_steps: int = 20) -> None:
        if check_every_n_steps < 1:
            raise MisconfigurationException(
                f"callbacks.nonfinite_guard.check_every_n_steps={check_every_n_steps} is not allowed; use >= 1"
            )
        self.check_every_n_steps = check_every_n_steps

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = pl_module.nonfinite_report()
        if report is not None:
            raise NonFiniteLossError(f"{report}; stopped ({checkpoint_left(trainer)})")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.check_every_n_steps == 0:
            self._check(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        metrics = {k: v for k, v in scalar_metrics(trainer.callback_metrics).items() if k.startswith("val/")}
        bad = nonfinite_names(metrics)
        if bad:
            when = "in the sanity check" if trainer.sanity_checking else f"at epoch {trainer.current_epoch}"
            raise NonFiniteLossError(f"{bad} became non-finite {when}; stopped ({checkpoint_left(trainer)})")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check(trainer, pl_module)
