"""Image grids and sending images to the loggers that take them; shared by the training callbacks and the
final evaluation."""

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid


def reconstruction_grid(model, x: torch.Tensor, n_per_row: int) -> torch.Tensor:
    """Inputs in odd rows, their reconstructions (the likelihood's mean at z = mu) below them."""
    with torch.no_grad():
        mu, _ = model.encode(x)
        recon = model.likelihood.mean(model.decode(mu))
    rows = []
    for start in range(0, len(x), n_per_row):
        rows += [x[start : start + n_per_row], recon[start : start + n_per_row]]
    return make_grid(torch.cat(rows).clamp(0, 1), nrow=n_per_row, padding=2, pad_value=1.0)


def log_image(trainer: L.Trainer, key: str, grid: torch.Tensor) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=trainer.global_step)
