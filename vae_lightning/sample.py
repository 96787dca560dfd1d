"""New digits from a checkpoint: ``python -m vae_lightning.sample ckpt_path=PATH n=64``."""

import math
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid

from vae_lightning.checkpoints import load_model
from vae_lightning.evaluation.pictures import save_png
from vae_lightning.resolvers import register_resolvers, unique_suffix
from vae_lightning.utils.task import run_task
from vae_lightning.utils.validation import preflight, require_int

register_resolvers()


def sample(cfg: DictConfig) -> dict[str, float]:
    require_int(cfg, "n", 1)
    require_int(cfg, "seed", 0)
    require_int(cfg, "nrow", 1)
    model, _ = load_model(cfg.ckpt_path)
    torch.manual_seed(cfg.seed)
    images = model.sample_images(cfg.n, mean=cfg.mean)
    grid = make_grid(images.clamp(0, 1), nrow=cfg.nrow or math.ceil(math.sqrt(cfg.n)), padding=2, pad_value=1.0)
    path = Path(cfg.paths.output_dir) / f"samples_n{cfg.n}_seed{cfg.seed}_{unique_suffix()}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(grid, path)
    print(f"Wrote {cfg.n} samples to {path}")
    return {}


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    run_task(sample, cfg)


if __name__ == "__main__":
    preflight(sys.argv[1:])
    main()
