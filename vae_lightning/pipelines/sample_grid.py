"""The pipeline behind ``python -m vae_lightning.sample``: a grid of new images from a checkpoint."""

import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid

from vae_lightning.analysis.pictures import save_png
from vae_lightning.analysis.posthoc_sampling import posthoc_mixture_samples
from vae_lightning.console import log
from vae_lightning.data.datamodule import datamodule_for
from vae_lightning.models.build import check_decodable, load_model
from vae_lightning.resolvers import unique_suffix
from vae_lightning.tracking.dashboard import checkpoint_run, log_pictures


def sample_grid(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """A PNG grid of ``cfg.n`` images decoded from latents of ``cfg.ckpt_path``'s model: drawn from its prior, or
    (``sampler=gmm``) from a Gaussian mixture fitted to the encodings of its training images; a model with labels
    decodes them as class ``cfg.label`` (or classes drawn from p(y)). Returns no metrics and the ``images``."""
    model, run_cfg = load_model(cfg.ckpt_path)
    check_decodable(model, cfg.n)
    torch.manual_seed(cfg.seed)
    if cfg.sampler == "gmm":
        datamodule = datamodule_for(run_cfg.data, model.likelihood.pixels)
        datamodule.setup()
        z = posthoc_mixture_samples(model, datamodule, cfg.n, cfg.gmm_components, cfg.seed)
        images = model.decode_images(z, mean=cfg.mean, y=model.draw_labels(cfg.n, label=cfg.label))
    else:
        images = model.sample_images(cfg.n, mean=cfg.mean, label=cfg.label)
    grid = make_grid(images.clamp(0, 1), nrow=cfg.nrow or math.ceil(math.sqrt(cfg.n)), padding=2, pad_value=1.0)
    path = Path(cfg.paths.output_dir) / f"samples_{cfg.sampler}_n{cfg.n}_seed{cfg.seed}_{unique_suffix()}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(grid, path)
    log.info("Wrote %d samples to %s", cfg.n, path)
    settings = {"n": cfg.n, "sampler": cfg.sampler, "seed": cfg.seed, "mean": cfg.mean, "label": cfg.label,
                "file": path.name}
    with checkpoint_run(run_cfg, cfg.ckpt_path, path.parent, "sample", settings) as run:
        if run is not None:
            log_pictures(run, {f"samples/{cfg.sampler}": path})
    return {}, {"images": images}
