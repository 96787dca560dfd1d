"""The user's cache folder: what is computed or downloaded once and shared by every run and working folder."""

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$VAE_LIGHTNING_CACHE_DIR``, else ``$XDG_CACHE_HOME/vae_lightning``, else ``~/.cache/vae_lightning``."""
    if os.environ.get("VAE_LIGHTNING_CACHE_DIR"):
        return Path(os.environ["VAE_LIGHTNING_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vae_lightning"
