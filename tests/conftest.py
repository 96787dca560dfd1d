"""Shared fixtures: composing the project's Hydra config the way the entry points do."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vae_lightning.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
PYTHON = sys.executable

register_resolvers()


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_train(overrides) -> the train config as ``python -m vae_lightning.train`` would see it,
    writing into tmp_path, with W&B switched off unless asked for."""

    def _compose(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=True)
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.root_dir = str(ROOT)
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "outputs")
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def run_module(module: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600):
    """``python -m module args`` in a subprocess; returns the CompletedProcess (text output)."""
    full_env = {**os.environ, "WANDB_SILENT": "true", **(env or {})}
    return subprocess.run(
        [PYTHON, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
