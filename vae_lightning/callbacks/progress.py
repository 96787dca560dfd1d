"""The progress bar, showing the latest training loss without Lightning's per-value logging."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar plus ``train/loss`` from the module's latest logging step (``training_metrics``)."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        loss = getattr(pl_module, "training_metrics", {}).get("train/loss")
        return metrics if loss is None else {"train/loss": loss, **metrics}
