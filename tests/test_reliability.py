"""Bad input fails early with one line; interruption, resume, NaN, W&B failure and concurrent runs are safe."""

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_module

from vae_lightning.command_line import config_groups
from vae_lightning.data.sources import Source

GROUPS = config_groups()

TESTS = Path(__file__).resolve().parent
FAULTS = {"PYTHONPATH": str(TESTS)}
QUICK = ["logger=local", "eval.k=5", "eval.fid_samples=0", "callbacks.image_grids.every_n_epochs=100"]

BAD_INPUTS = [
    (["model.latent_dim=0"], "model.latent_dim=0 is not allowed; use an integer >= 1"),
    (["model.latent_dim=abc"], "model.latent_dim='abc' is not allowed; use an integer >= 1"),
    (["data.batch_size=0"], "data.batch_size=0 is not allowed; use an integer >= 1"),
    (["data.batch_size=-5"], "data.batch_size=-5 is not allowed; use an integer >= 1"),
    (["model.optimizer.lr=0"], "model.optimizer.lr=0 is not allowed; use a number > 0"),
    (["model.optimizer.lr=-0.001"], "model.optimizer.lr=-0.001 is not allowed; use a number > 0"),
    (["likelihood=poisson"], f"likelihood='poisson' is not allowed; use one of {GROUPS['likelihood']}"),
    (["model/encoder=transformer"], "model/encoder='transformer' is not allowed; use one of ['conv', 'mlp']"),
    (["model/decoder=gan"], "model/decoder='gan' is not allowed; use one of ['conv', 'mlp']"),
    (["likelihood=gaussian", "likelihood.sigma=-1"], "likelihood.sigma=-1 is not allowed; use a number > 0"),
    (
        ["likelihood=gaussian", "likelihood.sigma_mode=wild"],
        "likelihood.sigma_mode='wild' is not allowed; use one of ['fixed', 'learned', 'per_pixel']",
    ),
    (["trainer.devices=99"], f"trainer.devices=99 is not allowed; this machine has {os.cpu_count()} CPU cores"),
    (["data.source=kaggle"], f"data.source='kaggle' is not allowed; use one of {list(typing.get_args(Source))}"),
    (["seed=abc"], "seed='abc' is not allowed; use an integer in [0, 4294967295]"),
    (["seed=4294967296"], "seed=4294967296 is not allowed; use an integer in [0, 4294967295]"),
    (["data.split_seed=4294967296"], "data.split_seed=4294967296 is not allowed; use an integer in [0, 4294967295]"),
    (["test=maybe"], "test='maybe' is not allowed; use true or false"),
    (["eval.fid_samples=-1"], "eval.fid_samples=-1 is not allowed; use an integer >= 0"),
]


@pytest.mark.parametrize("overrides,message", BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_gives_one_line_and_a_non_zero_exit(tmp_path, overrides, message):
    result = run_module("vae_lightning.train", *overrides, f"paths.log_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert "Traceback" not in result.stderr
    assert "data:" not in result.stderr + result.stdout  # failed before loading any data


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_module("vae_lightning.train", f"paths.log_dir={blocker}/outputs")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: paths.log_dir='{blocker}/outputs' is not allowed; it is not a writable folder ({blocker} is not a "
        "folder)"
    ]


@pytest.mark.slow
def test_full_traceback_on_request(tmp_path):
    result = run_module("vae_lightning.train", "model.latent_dim=0", f"paths.log_dir={tmp_path}",
                        env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # 29 batches per epoch on the offline digits: epoch 0 ends (and is checkpointed) before step 40 goes bad
    result = run_module(
        "vae_lightning.train", *QUICK, "trainer.max_epochs=3", f"paths.log_dir={tmp_path}",
        "+callbacks.fault._target_=fault_injection.PoisonWeightsAtStep", "+callbacks.fault.step=40", env=FAULTS,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert result.stderr.strip().splitlines()[-1] == (
        "error: train/recon and train/kl became non-finite at step 40; stopped (the last good checkpoint is "
        f"{run / 'checkpoints' / 'last.ckpt'})"
    )
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    from vae_lightning.models.build import load_model

    model, _ = load_model(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 29


def final_metrics(log_dir: Path) -> dict[str, float]:
    (run,) = [p for p in (log_dir / "runs").iterdir()]
    return json.loads((run / "metrics.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def uninterrupted_metrics(tmp_path_factory) -> dict[str, float]:
    log_dir = tmp_path_factory.mktemp("full")
    full = run_module("vae_lightning.train", *QUICK, "trainer.max_epochs=3", f"paths.log_dir={log_dir}")
    assert full.returncode == 0, full.stderr[-2000:]
    return final_metrics(log_dir)


@pytest.mark.slow
@pytest.mark.parametrize("signal_name,exit_code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGUSR2", 140)])
def test_a_signal_mid_epoch_then_resume_ends_like_an_uninterrupted_run(tmp_path, uninterrupted_metrics, signal_name, exit_code):
    """A real signal to a real run (Ctrl-C is SIGINT; SIGUSR2 a cluster's warning, here without submitit to requeue
    the job): each stops at a batch boundary and resumes exactly."""
    stopped = run_module(
        "vae_lightning.train", *QUICK, "trainer.max_epochs=3", f"paths.log_dir={tmp_path / 'stopped'}",
        "+callbacks.fault._target_=fault_injection.SendSignalAtStep", "+callbacks.fault.step=40",
        f"+callbacks.fault.signal_name={signal_name}", env=FAULTS,
    )
    assert stopped.returncode == exit_code, stopped.stderr[-2000:]
    (run,) = (tmp_path / "stopped" / "runs").iterdir()
    assert (run / "checkpoints" / "interrupted.ckpt").exists()
    assert json.loads((run / "status.json").read_text()) == {"status": "interrupted", "error": signal_name}
    interrupted = torch.load(run / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert (interrupted["epoch"], interrupted["global_step"]) == (1, 40)  # mid-epoch: 29 steps per epoch

    # the run's own command line is recomposed: the fault callback comes back (it fires at step 40 only)
    resumed = run_module("vae_lightning.train", f"resume={run}", f"paths.log_dir={tmp_path / 'resumed'}", env=FAULTS)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = uninterrupted_metrics, final_metrics(tmp_path / "resumed")
    for name in ("val/loss", "val/kl", "test/loss", "test/kl", "test/recon"):
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name
    # the interrupted run's folder is left as it was; the resumed run has its own
    assert (run / "checkpoints" / "interrupted.ckpt").exists() and not (run / "metrics.json").exists()


def test_resume_needs_a_run_folder(tmp_path):
    result = run_module("vae_lightning.train", f"resume={tmp_path}", f"paths.log_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: resume='{tmp_path}' is not allowed; it is not a run folder (no config.yaml)"
    )


@pytest.mark.slow
def test_two_runs_started_at_the_same_moment_get_different_folders(tmp_path):
    command = [sys.executable, "-m", "vae_lightning.train", "debug=fast", "logger=local", "test=false",
               f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "WANDB_SILENT": "true"}
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    assert all((run / "checkpoints" / "last.ckpt").exists() for run in runs)


@pytest.mark.slow
def test_training_goes_on_when_wandb_cannot_start(tmp_path):
    result = run_module(
        "vae_lightning.train", "debug=fast", "eval.fid_samples=0", "logger.wandb.mode=online",
        f"paths.log_dir={tmp_path}", env={"HOME": str(tmp_path), "WANDB_API_KEY": "", "WANDB_MODE": "online"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "W&B could not start" in line]  # on stderr only
    assert len(warnings) == 1 and warnings[0].startswith("warning: W&B could not start"), result.stderr[-2000:]
    assert "W&B could not start" not in result.stdout
    assert "continuing with the local loggers only" in warnings[0]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "csv" / "metrics.csv").exists() and (run / "metrics.json").exists()
    assert "W&B (offline)" not in result.stdout


@pytest.mark.slow
def test_a_submitit_job_stopped_by_its_time_limit_is_requeued_and_ends_like_an_uninterrupted_run(tmp_path):
    """submitit's local executor sends SIGUSR2 30 s before its 1-minute limit and requeues the job into its own
    folder: each attempt saves interrupted.ckpt at the signal, the next continues from it, and the job ends with
    the metrics of the same run never stopped."""
    settings = [*QUICK, "trainer.max_epochs=20", "model.latent_dim=5"]
    full = run_module("vae_lightning.train", *settings, f"paths.log_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-2000:]
    # 20 epochs of 29 steps, 0.08 s asleep after each: about 50 s of training on any machine, so the signal at 30 s
    # always comes during training, and two or three attempts finish it
    slow = ["+callbacks.slow._target_=fault_injection.SleepEachStep", "+callbacks.slow.seconds=0.08"]
    result = run_module("vae_lightning.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=1",
                        "+hydra.launcher.max_num_timeout=8", *settings, *slow, cwd=tmp_path, env=FAULTS, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    job = sweep / "0"
    logs = "".join(path.read_text() for path in sweep.glob(".submitit/*/*_log.*"))
    assert logs.count("requeued after SIGUSR2: continuing from") >= 1, logs[-3000:]
    assert json.loads((job / "status.json").read_text())["status"] == "completed"
    got, expected = json.loads((job / "metrics.json").read_text())["metrics"], final_metrics(tmp_path / "full")
    for name in ("val/loss", "val/kl", "test/loss", "test/kl", "test/recon", "test/nll_iw"):
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name
    assert json.loads((job / "run_info.json").read_text())["started_from_checkpoint"] == str(
        job / "checkpoints" / "interrupted.ckpt")
    assert not list(job.glob("checkpoints/last-v*.ckpt"))  # one lineage in one folder, not a fresh start beside it


@pytest.mark.slow
def test_a_submitit_job_signalled_in_its_test_pass_is_requeued_and_tests_its_finished_training(tmp_path):
    """A cluster's signal (SIGUSR2) in the test pass: the job is requeued into its own folder, the next attempt
    continues from last.ckpt with nothing left to train, tests the best checkpoint and ends with the metrics of the
    same run never stopped; the folder holds one lineage of checkpoints."""
    settings = [*QUICK, "trainer.max_epochs=2", "model.latent_dim=5"]
    full = run_module("vae_lightning.train", *settings, f"paths.log_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-2000:]
    fault = ["+callbacks.fault._target_=fault_injection.SendSignalInTestPass", "+callbacks.fault.signal_name=SIGUSR2",
             f"+callbacks.fault.once_marker={tmp_path / 'signalled'}"]
    result = run_module("vae_lightning.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                        "+hydra.launcher.max_num_timeout=3", *settings, *fault, cwd=tmp_path, env=FAULTS, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "signalled").exists()
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    job = sweep / "0"
    logs = "".join(path.read_text() for path in sweep.glob(".submitit/*/*_log.*"))
    assert "requeued after SIGUSR2: continuing from " + str(job / "checkpoints" / "last.ckpt") in logs, logs[-3000:]
    assert json.loads((job / "status.json").read_text())["status"] == "completed"
    got, expected = json.loads((job / "metrics.json").read_text())["metrics"], final_metrics(tmp_path / "full")
    for name in ("val/loss", "test/loss", "test/kl", "test/recon", "test/nll_iw"):
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name
    names = sorted(path.name for path in (job / "checkpoints").iterdir())
    assert len(names) == 2 and "last.ckpt" in names and names[0].startswith("epoch001-"), names  # no -v1 copies
    assert (sweep / "report.md").exists()


@pytest.mark.slow
def test_a_submitit_job_out_of_attempts_still_leaves_the_sweep_report(tmp_path):
    """A time limit the job cannot finish within and no requeue left (max_num_timeout=0): the job ends at the
    signal with its checkpoint, and the sweep writes its report naming it, then exits 1 in one line."""
    slow = ["+callbacks.slow._target_=fault_injection.SleepEachStep", "+callbacks.slow.seconds=0.5"]
    result = run_module("vae_lightning.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=1",
                        "+hydra.launcher.max_num_timeout=0", *QUICK, "trainer.max_epochs=20", *slow, cwd=tmp_path,
                        env=FAULTS, timeout=600)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 1 sweep jobs did not complete (jobs 0; see {sweep / 'report.md'})")
    assert "Traceback" not in result.stderr and "UncompletedJobError" not in result.stderr
    status = json.loads((sweep / "0" / "status.json").read_text())
    assert status["status"] == "interrupted" and status["error"].startswith("SIGUSR2; Job not requeued because: ")
    assert "not requeued" in (sweep / "report.md").read_text()
    assert (sweep / "0" / "checkpoints" / "interrupted.ckpt").exists()  # resume= can still continue it
