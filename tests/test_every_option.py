"""Every option of every config group composes and trains a few steps through the training pipeline.

The options are read from the config folders, so a new option (a prior, a likelihood, a logger...) is
tested by being added; nothing here lists them.
"""

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import run_module
from hydra.core.hydra_config import HydraConfig

from vae_lightning.command_line import config_groups
from vae_lightning.pipelines.fit_and_test import fit_and_test

#: groups that configure Hydra or a sweeper, not a training run: composed and checked, not trained
COMPOSE_ONLY = {"hydra", "paths", "hparams_search"}
#: options that need a setting of another group to run (the pre-flight refuses them without it)
NEEDS = {("model/labels", "semi_supervised"): ["data.labelled=20"]}
#: options whose case takes much longer than the others: run with the slow tests (CI)
SLOW = {("trainer", "ddp"), ("data", "fashion_mnist")}
OPTIONS = [pytest.param(group, option, id=f"{group}={option}", marks=[pytest.mark.slow] if (group, option) in SLOW else [])
           for group, options in sorted(config_groups().items()) for option in options]


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes_and_trains(compose_train, group, option):
    overrides = [f"{group}={option}", "debug=fast", "eval.fid_samples=200", *NEEDS.get((group, option), [])]
    if group != "logger":
        overrides.append("logger=local")
    if (group, option) == ("trainer", "ddp"):
        return check_two_processes(overrides)
    if (group, option) == ("trainer", "gpu") and not torch.cuda.is_available():
        pytest.skip("trainer=gpu needs a CUDA device; this machine has none")
    cfg = compose_train(overrides)
    assert HydraConfig.get().runtime.choices[group] == option
    if group in COMPOSE_ONLY:
        assert cfg.paths.output_dir and cfg.task_name == "train"
        return
    metrics, objects = fit_and_test(cfg)
    assert objects["trainer"].global_step > 0 and objects["trainer"].lightning_module is objects["model"]
    assert objects["datamodule"].info["n_train"] > 0
    for name in ("train/loss", "val/loss", "test/loss", "test/nll_iw"):
        assert math.isfinite(metrics[name]), (name, metrics)
    assert metrics["test/nll_iw"] <= metrics["test/loss"] + 0.5  # the k-sample estimate is below -ELBO, noise aside
    assert metrics["test/frechet_distance"] > 0 and metrics["test/frechet_distance_gmm"] > 0
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["metrics"]["val/loss"] == pytest.approx(metrics["val/loss"])


def check_two_processes(overrides: list[str]) -> None:
    """trainer=ddp as its config says (two processes), which a process of its own must start."""
    with tempfile.TemporaryDirectory() as cwd:
        result = run_module("vae_lightning.train", *overrides, cwd=Path(cwd))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
        (run,) = (Path(cwd) / "outputs" / "runs").iterdir()
        metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert math.isfinite(metrics["test/nll_iw"]) and metrics["test/frechet_distance"] > 0
