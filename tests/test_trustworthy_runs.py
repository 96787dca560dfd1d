"""A run folder is the truth about an experiment: resume, non-finite values, checkpoints, folders (issue 17).

Each test runs the real command line, as a user types it, and checks the files the run leaves.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, first_fast, run_module

TESTS = Path(__file__).resolve().parent
FAULTS = {"PYTHONPATH": str(TESTS)}
# 29 batches an epoch on the test digits; 10 of them keep these runs short
QUICK = ["logger=local", "eval.k=5", "eval.fid_samples=0", "callbacks.image_grids.every_n_epochs=100",
         "+trainer.limit_train_batches=10", "+trainer.limit_test_batches=2"]


def only_run(log_dir: Path) -> Path:
    (run,) = (log_dir / "runs").iterdir()
    return run


def train(log_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_module("vae_lightning.train", *QUICK, *args, f"paths.log_dir={log_dir}", env=env)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return last_line(result)


def strict_json(path: Path):
    """json.loads that refuses NaN / Infinity tokens, as every other JSON reader does."""
    return json.loads(path.read_text(), parse_constant=lambda token: pytest.fail(f"{path}: {token} is not JSON"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished one-epoch run with the local loggers (no W&B)."""
    log_dir = tmp_path_factory.mktemp("first")
    result = train(log_dir, "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run(log_dir)


# ----------------------------------------------------------------------------------------------------------
# Resume: the run's own command line, recomposed, with typed overrides on top
def test_resume_applies_typed_overrides_and_keeps_the_runs_loggers_and_folders(finished_run, tmp_path):
    result = run_module("vae_lightning.train", f"resume={finished_run}", "trainer.max_epochs=2", "eval.k=7",
                        f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 2 and config["eval"]["k"] == 7  # integers, not strings
    assert config["eval"]["fid_samples"] == 0  # the earlier run's own setting, kept
    assert config["resumed_from"]["run_dir"] == str(finished_run.resolve())
    assert config["resumed_from"]["checkpoint"] == str((finished_run / "checkpoints" / "last.ckpt").resolve())
    assert "wandb" not in config["logger"] and not (run / "wandb").exists()  # logger=local, as the run had
    assert (run / "csv" / "metrics.csv").exists()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 20)  # one more epoch of 10 batches
    metrics = strict_json(run / "metrics.json")
    assert Path(metrics["best_checkpoint"]).parent == run / "checkpoints"
    assert metrics["metrics"]["test/iw_samples"] == 7
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    assert "trainer.max_epochs=2" in overrides and "logger=local" in overrides  # the record of what ran


@pytest.mark.parametrize(
    "override,key,before,now",
    [
        ("seed=7", "seed", "12345", "7"),
        ("model.latent_dim=5", "model.latent_dim", "20", "5"),
        ("data.batch_size=64", "data.batch_size", "128", "64"),
        ("likelihood=gaussian", "likelihood", "BernoulliLikelihood", "GaussianLikelihood"),
        ("model/latents=two_layer", "model/latents", "none", "TwoLayerLatents"),
        ("model/prior=vamp", "model/prior", "StandardNormalPrior", "VampPrior"),
    ],
)
def test_resume_refuses_a_change_of_model_data_or_seed_in_one_line(finished_run, tmp_path, override, key, before, now):
    result = run_module("vae_lightning.train", f"resume={finished_run}", override, f"paths.log_dir={tmp_path}")
    assert one_line_refusal(result) == (
        f"error: resume='{finished_run}' cannot change {key} (the run has {before}, this command gives {now}); "
        "a resumed run keeps its model, data and seed: start a new run for another"
    )
    assert not (tmp_path / "runs").exists()  # refused before Hydra made a folder


@pytest.mark.slow
def test_a_new_learning_rate_on_resume_is_the_one_used_and_recorded(finished_run, tmp_path):
    result = run_module(
        "vae_lightning.train", *QUICK, f"ckpt_path={finished_run / 'checkpoints' / 'last.ckpt'}",
        "model.optimizer.lr=0.01", "trainer.max_epochs=2", f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "optimizer settings from this run's config, not the checkpoint's: lr: 0.001 -> 0.01" in result.stdout
    run = only_run(tmp_path)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["optimizer"]["lr"] == 0.01
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert {group["lr"] for group in checkpoint["optimizer_states"][0]["param_groups"]} == {0.01}


# ----------------------------------------------------------------------------------------------------------
# Non-finite values: stopped, said, never "best", never written as Infinity
@pytest.mark.slow
def test_a_non_finite_validation_metric_stops_the_run_before_any_checkpoint(tmp_path):
    result = train(tmp_path, "trainer.max_epochs=3", "+callbacks.fault._target_=fault_injection.NaNDecoderBeforeValidation",
                   "+callbacks.fault.epoch=1", env=FAULTS)
    run = only_run(tmp_path)
    assert one_line_refusal(result) == (
        "error: val/loss (nan) and val/recon (nan) became non-finite at epoch 1; stopped (the last good checkpoint is "
        f"{run / 'checkpoints' / 'last.ckpt'})"
    )
    assert strict_json(run / "status.json")["status"] == "failed"
    names = sorted(path.name for path in (run / "checkpoints").iterdir())
    assert names == ["epoch000-" + names[0].split("-", 1)[1], "last.ckpt"] and "inf" not in names[0]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0


@pytest.mark.slow
def test_a_loss_that_is_never_finite_says_that_no_checkpoint_exists(tmp_path):
    result = train(tmp_path, "trainer.max_epochs=1", "model.optimizer.lr=1e30")
    assert one_line_refusal(result).endswith("; stopped (no checkpoint had been written)")
    assert not list(only_run(tmp_path).glob("checkpoints/*.ckpt"))


def test_project_json_is_strict_and_names_what_was_not_a_number(tmp_path):
    from vae_lightning.runs.run_files import write_json

    write_json(tmp_path / "m.json", {"metrics": {"a": 1.5, "b": float("inf"), "c": float("nan")}, "list": [float("-inf")]})
    payload = strict_json(tmp_path / "m.json")
    assert payload["metrics"] == {"a": 1.5, "b": None, "c": None} and payload["list"] == [None]
    assert payload["nonfinite_values"] == {"metrics.b": "inf", "metrics.c": "nan", "list[0]": "-inf"}


def test_a_sweep_report_never_ranks_a_value_that_is_not_a_number(tmp_path):
    from vae_lightning.report.sweep_report import rankings, read_job
    from vae_lightning.runs.run_files import write_json

    for job, nll in (("0", 90.0), ("1", float("inf"))):
        (tmp_path / job).mkdir()
        (tmp_path / job / "status.json").write_text('{"status": "completed", "error": null}')
        write_json(tmp_path / job / "metrics.json", {"metrics": {"test/nll_iw": nll, "test/bits_per_dim": nll / 500},
                                                      "data_model": "binarised"})
    jobs = [read_job(tmp_path / job) for job in ("0", "1")]
    assert [job["job"] for members in rankings(jobs).values() for job in members] == ["0"]


# ----------------------------------------------------------------------------------------------------------
# One checkpoint reader: the same one-line answer from train, evaluate and sample, for every kind of bad file
def bad_checkpoint(kind: str, good: Path, folder: Path) -> Path:
    path = folder / f"{kind}.ckpt"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:2000])
    elif kind == "zero_filled":
        path.write_bytes(bytes(good.stat().st_size))
    elif kind == "bare_tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "carries_code":
        torch.save({"state_dict": {}, "run": print}, path)
    return path


BAD_CHECKPOINTS = {
    "truncated": "is not allowed; it is not a readable checkpoint (",
    "zero_filled": "is not allowed; it is not a readable checkpoint (",
    "bare_tensor": "is not allowed; it was not written by vae_lightning.train",
    "carries_code": "is not loaded; it holds objects other than tensors and plain values (code could run on loading)",
}


@pytest.mark.parametrize("kind", first_fast(sorted(BAD_CHECKPOINTS)))
@pytest.mark.parametrize("command", ["train", "evaluate", "sample"])
def test_a_bad_checkpoint_is_one_line_everywhere(finished_run, tmp_path, kind, command):
    path = bad_checkpoint(kind, finished_run / "checkpoints" / "last.ckpt", tmp_path)
    extra = [*QUICK, f"paths.log_dir={tmp_path}"] if command == "train" else []
    result = run_module(f"vae_lightning.{command}", f"ckpt_path={path}", *extra)
    assert one_line_refusal(result).startswith(f"error: ckpt_path='{path}' {BAD_CHECKPOINTS[kind]}")


@pytest.mark.slow
def test_a_bad_checkpoint_in_a_resumed_run_folder_is_one_line(finished_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (copy / "checkpoints" / "last.ckpt").write_bytes(b"\0" * 4096)
    result = run_module("vae_lightning.train", f"resume={copy}", f"paths.log_dir={tmp_path / 'logs'}")
    assert one_line_refusal(result).startswith(f"error: ckpt_path='{copy / 'checkpoints' / 'last.ckpt'}' is not allowed;")


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_refused_by_train_in_one_line(finished_run, tmp_path):
    result = train(tmp_path, f"ckpt_path={finished_run / 'checkpoints' / 'last.ckpt'}", "likelihood=gaussian",
                   "likelihood.sigma_mode=learned")
    message = one_line_refusal(result)
    assert message.startswith(f"error: ckpt_path='{finished_run / 'checkpoints' / 'last.ckpt'}' does not fit its model config")


def test_evaluate_refuses_a_model_group_in_one_line(finished_run):
    result = run_module("vae_lightning.evaluate", f"ckpt_path={finished_run / 'checkpoints' / 'last.ckpt'}",
                        "likelihood=gaussian")
    assert one_line_refusal(result) == (
        "error: likelihood=gaussian is not allowed for evaluate, which takes ['paths', 'trainer']; the model, "
        "likelihood and data come from the checkpoint (its config is stored in it)"
    )


# ----------------------------------------------------------------------------------------------------------
# Run folders: never written into twice
@pytest.mark.slow
def test_a_folder_that_holds_a_run_is_never_written_into_again(finished_run, tmp_path):
    folder = tmp_path / "exp"
    first = run_module("vae_lightning.train", *QUICK, "trainer.max_epochs=1", "test=false", f"hydra.run.dir={folder}")
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    second = run_module("vae_lightning.train", *QUICK, "trainer.max_epochs=1", f"hydra.run.dir={folder}")
    assert one_line_refusal(second).startswith(f"error: hydra.run.dir='{folder}' is not allowed; it already holds files (")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_folder_is_claimed_at_once_so_a_second_run_started_with_it_is_refused(tmp_path):
    from vae_lightning.errors import ConfigError
    from vae_lightning.runs.run_folder import claim_folder

    claim_folder(str(tmp_path / "new"), "hydra.run.dir")
    with pytest.raises(ConfigError, match="it already holds files"):
        claim_folder(str(tmp_path / "new"), "hydra.run.dir")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    with pytest.raises(ConfigError, match=r"it already holds files \(notes.txt\)"):
        claim_folder(str(tmp_path / "mine"), "hydra.run.dir")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"


def test_a_seed_that_is_not_a_number_is_refused_before_torch_and_before_a_folder(tmp_path):
    result = run_module("vae_lightning.train", "seed=abc", f"paths.log_dir={tmp_path}")
    assert one_line_refusal(result) == "error: seed='abc' is not allowed; use an integer in [0, 4294967295]"
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------------------------
# Data folders: what a user put there is never replaced
@pytest.mark.slow
def test_a_read_only_data_folder_is_one_line(tmp_path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a read-only folder")
    data = tmp_path / "ro"
    data.mkdir()
    script = (f"mount --bind {data} {data} && mount -o remount,bind,ro {data} && "
              f"exec {sys.executable} -m vae_lightning.train debug=fast logger=local paths.log_dir={tmp_path / 'logs'}")
    env = {**os.environ, "VAE_LIGHTNING_DATA_DIR": str(data), "WANDB_SILENT": "true", "PIP_NO_INDEX": "1"}
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert one_line_refusal(result) == (
        f"error: paths.data_dir='{data}' is not allowed; {data}/MNIST cannot be written (Read-only file system): "
        f"set VAE_LIGHTNING_DATA_DIR to a writable folder, or put the IDX files in {data}/MNIST/raw/"
    )


def test_resume_with_a_checkpoint_too_is_refused_before_a_folder_is_made(finished_run, tmp_path):
    result = run_module("vae_lightning.train", f"resume={finished_run}",
                        f"ckpt_path={finished_run / 'checkpoints' / 'last.ckpt'}", f"paths.log_dir={tmp_path}")
    assert one_line_refusal(result) == (
        "error: ckpt_path is not allowed with resume=; resume takes the run's newest checkpoint"
    )
    assert not (tmp_path / "runs").exists()
