"""Regenerate the README's pictures (docs/figures/) from two fresh default runs.

    make figures          # or: .venv/bin/python docs/make_figures.py

Run 1: the default configuration (Bernoulli, latent_dim = 20). Run 2: latent_dim = 2, for the manifold.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
LOG_DIR = ROOT / "outputs" / "figures"


def train(*overrides: str) -> Path:
    before = set((LOG_DIR / "runs").glob("*")) if (LOG_DIR / "runs").exists() else set()
    subprocess.run(
        [sys.executable, "-m", "vae_lightning.train", "logger=local", f"paths.log_dir={LOG_DIR}", *overrides],
        cwd=ROOT, check=True,
    )
    (run,) = set((LOG_DIR / "runs").glob("*")) - before
    return run / "pictures"


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    default = train()
    for name in ("samples", "reconstructions", "traversals", "interpolations", "latent_space"):
        shutil.copy(default / f"{name}.png", FIGURES / f"{name}.png")
    shutil.copy(train("model.latent_dim=2") / "manifold.png", FIGURES / "manifold.png")
    print(f"pictures written to {FIGURES}")


if __name__ == "__main__":
    main()
