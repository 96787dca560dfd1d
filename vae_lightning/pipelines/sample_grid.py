"""The pipeline behind ``python -m vae_lightning.sample``: a grid of new images from a checkpoint."""

import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid

from vae_lightning.analysis.pictures import save_png
from vae_lightning.console import log
from vae_lightning.models.build import check_memory, decoded_bytes, load_model
from vae_lightning.resolvers import unique_suffix


def sample_grid(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """A PNG grid of ``cfg.n`` images decoded from the prior of ``cfg.ckpt_path``'s model; returns no metrics and
    the ``images``."""
    model, _ = load_model(cfg.ckpt_path)
    check_memory(f"n={cfg.n}", decoded_bytes(model, cfg.n), f"decoding {cfg.n:,} images takes about {{gb}} GB")
    torch.manual_seed(cfg.seed)
    images = model.sample_images(cfg.n, mean=cfg.mean)
    grid = make_grid(images.clamp(0, 1), nrow=cfg.nrow or math.ceil(math.sqrt(cfg.n)), padding=2, pad_value=1.0)
    path = Path(cfg.paths.output_dir) / f"samples_n{cfg.n}_seed{cfg.seed}_{unique_suffix()}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(grid, path)
    log.info("Wrote %d samples to %s", cfg.n, path)
    return {}, {"images": images}
