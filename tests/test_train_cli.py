"""``python -m vae_lightning.train`` end to end: the run folder holds everything promised."""

import csv
import json
from pathlib import Path

import yaml
from conftest import run_module

from vae_lightning.command_line import config_groups


def only_run_folder(log_dir: Path) -> Path:
    runs = list((log_dir / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_train_writes_the_promised_run_folder(tmp_path):
    result = run_module("vae_lightning.train", "debug=fast", f"paths.log_dir={tmp_path}", "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_folder(tmp_path)
    assert f"Run folder: {run}" in result.stdout
    assert "test/nll_iw" in result.stdout

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["latent_dim"] == 20 and config["likelihood"]["binarize"] == "dynamic"
    assert config["data_info"]["source"] == "idx"  # the suite's data folder, found through VAE_LIGHTNING_DATA_DIR
    assert config["data_info"]["n_train"] + config["data_info"]["n_val"] > 0
    info = json.loads((run / "run_info.json").read_text())
    assert info["seed"] == 12345
    assert len(info["git_commit"].removesuffix("+dirty")) == 40 or info["git_commit"] == "unknown"
    assert info["packages"]["torch"].startswith("2.") and info["data"]["source"] == config["data_info"]["source"]

    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(name.startswith("epoch") for name in checkpoints)
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    assert {"train/loss", "val/loss", "val/kl", "val/recon", "test/nll_iw"} <= set(rows[0])
    assert len([r for r in rows if r["val/loss"]]) == 2
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    images = sorted(p.name for p in (run / "images").glob("*.png"))
    assert "reconstructions_epoch001.png" in images and "samples_epoch001.png" in images

    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("run-*.wandb"))
    assert f"wandb sync {wandb_runs[0]}" in result.stdout

    saved = json.loads((run / "metrics.json").read_text())
    metrics = saved["metrics"]
    assert metrics["test/nll_iw"] <= metrics["test/loss"] + 1.0
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # where the wall time went, part by part (debug=fast has no Frechet distance)
    assert list(saved["seconds"]) == ["setup", "fit", "test", "pictures"]
    assert all(0 < value < 600 for value in saved["seconds"].values())
    time_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("time: set-up"))
    assert ", training " in time_line and ", test pass " in time_line and "k = 10 importance samples" in time_line


def test_help_lists_the_config_groups():
    result = run_module("vae_lightning.train", "--help")
    assert result.returncode == 0
    for group, options in config_groups().items():
        if group not in ("hydra", "paths"):
            assert f"{group}: {', '.join(options)}" in result.stdout, result.stdout


def test_cfg_job_shows_the_composed_config():
    result = run_module("vae_lightning.train", "--cfg", "job", "likelihood=gaussian", "model.latent_dim=2")
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    assert cfg["model"]["latent_dim"] == 2
    assert cfg["likelihood"]["_target_"].endswith("GaussianLikelihood")
