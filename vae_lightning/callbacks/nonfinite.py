"""Stop training when a loss term or a validation metric stops being a number, before it can be checkpointed."""

from collections.abc import Mapping
from pathlib import Path

import lightning as L
import torch

from vae_lightning.errors import NonFiniteLossError
from vae_lightning.rules import Count, checked
from vae_lightning.runs.run_files import nonfinite_names, scalar_metrics


def checkpoint_left(trainer: L.Trainer) -> str:
    """What the run has to go back to, said as it is."""
    callback = trainer.checkpoint_callback
    for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
        if path and Path(path).is_file():
            return f"the last good checkpoint is {path}"
    return "no checkpoint had been written"


@checked
class NonFiniteLossGuard(L.Callback):
    """Every ``check_every_n_steps`` training steps (and before each validation and at each epoch end) look at
    the loss terms of the steps since the last check (the per-example ``recon`` and ``kl`` the training step
    returns, kept as they are: no host sync in between), and after each validation pass at its metrics; stop with
    the first step or the epoch and the metric that went bad.

    Lightning runs checkpoint callbacks after every other callback, so a model whose loss or validation
    metric is not finite is never saved, as ``best`` or at all.
    """

    config_section = "callbacks.nonfinite_guard"

    def __init__(self, check_every_n_steps: Count = 20) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def _check(self, trainer: L.Trainer) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        sums = torch.stack([torch.stack([recon.sum(), kl.sum()]) for _, recon, kl in pending])
        finite = torch.isfinite(sums).tolist()  # the one host sync
        for (step, _, _), (recon_ok, kl_ok) in zip(pending, finite):
            if not (recon_ok and kl_ok):
                terms = [name for name, ok in (("train/recon", recon_ok), ("train/kl", kl_ok)) if not ok]
                raise NonFiniteLossError(
                    f"{' and '.join(terms)} became non-finite at step {step}; stopped ({checkpoint_left(trainer)})"
                )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if isinstance(outputs, Mapping) and "recon" in outputs and "kl" in outputs:
            self._pending.append((trainer.global_step - 1, outputs["recon"], outputs["kl"]))
        if trainer.global_step % self.check_every_n_steps == 0:
            self._check(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        metrics = {k: v for k, v in scalar_metrics(trainer.callback_metrics).items() if k.startswith("val/")}
        bad = nonfinite_names(metrics)
        if bad:
            when = "in the sanity check" if trainer.sanity_checking else f"at epoch {trainer.current_epoch}"
            raise NonFiniteLossError(f"{bad} became non-finite {when}; stopped ({checkpoint_left(trainer)})")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check(trainer)
