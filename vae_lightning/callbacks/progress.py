"""The progress bar, in optimizer steps, showing the latest training loss without Lightning's per-value logging."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar counting optimizer steps (Lightning counts calls of the training step, which make
    ``data.steps_per_call`` steps each), plus ``train/loss`` from the module's latest logging step
    (``training_metrics``)."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.train_dataloader.sampler.batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        steps_done = trainer.train_dataloader.sampler.batches_in(batch_idx + 1)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, steps_done - 1)  # the bar shows batch_idx + 1

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        loss = getattr(pl_module, "training_metrics", {}).get("train/loss")
        return metrics if loss is None else {"train/loss": loss, **metrics}
