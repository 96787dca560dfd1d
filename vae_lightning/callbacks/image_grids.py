"""PNG grids of reconstructions and prior samples during training, also sent to image-capable loggers."""

from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid, save_image

from vae_lightning.analysis.pictures import reconstruction_grid
from vae_lightning.console import on_rank_zero
from vae_lightning.rules import Count, checked
from vae_lightning.tracking.loggers import log_image


@checked
class ImageGrids(L.Callback):
    """Every ``every_n_epochs`` validation epochs (and after the last one), write
    ``images/reconstructions_epochNNN.png`` and ``images/samples_epochNNN.png`` into the run folder.

    The same validation digits and the same prior noise are used every time, so the grids show
    progress, not noise.
    """

    config_section = "callbacks.image_grids"

    def __init__(self, dirpath: str, every_n_epochs: Count = 5, n_samples: Count = 64, n_reconstructions: Count = 32):
        self.dirpath = Path(dirpath)
        self.every_n_epochs, self.n_samples, self.n_reconstructions = every_n_epochs, n_samples, n_reconstructions

    @on_rank_zero
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        last = epoch + 1 >= (trainer.max_epochs or 0)
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        self.write(trainer, pl_module, f"epoch{epoch:03d}")

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        was_training = pl_module.training
        pl_module.eval()
        x, y = (part[: self.n_reconstructions] for part in trainer.datamodule.splits["val"])
        recon = reconstruction_grid(pl_module, x.to(pl_module.device), 8, y)
        # the same noise every time; a learned prior moves the samples with its parameters
        samples = pl_module.sample_images(self.n_samples, generator=torch.Generator().manual_seed(0))
        samples = make_grid(samples.clamp(0, 1), nrow=8, padding=2, pad_value=1.0)
        pl_module.train(was_training)
        for name, grid in (("reconstructions", recon), ("samples", samples)):
            save_image(grid, self.dirpath / f"{name}_{tag}.png")
            log_image(trainer, f"images/{name}", grid)
