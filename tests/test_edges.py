"""Records that stay true at the edges: a cache that cannot lie, the lineage's best after resume, stop signals
outside training, dead runs, and problems found before the work."""

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_module

from vae_lightning.runs.run_folder import read_status
from vae_lightning.user_cache import cached

TESTS = Path(__file__).resolve().parent
FAULTS = {"PYTHONPATH": str(TESTS)}
QUICK = ["logger=local", "eval.k=5", "eval.fid_samples=0", "callbacks.image_grids.every_n_epochs=100"]


def train(log_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_module("vae_lightning.train", *QUICK, *args, f"paths.log_dir={log_dir}", env=env)


def refusal(result: subprocess.CompletedProcess) -> str:
    """The one line of a refusal (exit code 2, no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("first")
    result = train(log_dir, "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (log_dir / "runs").iterdir()
    return run


# ----------------------------------------------------------------------------------------------------------
# The user cache
class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        return {"mean": torch.arange(4.0) + self.calls}


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch code_ran",))


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated", "pickled_code", "no_digest"])
def test_a_damaged_cache_entry_is_never_used_and_is_computed_again(tmp_path, damage, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, compute = tmp_path / "cache" / "entry.pt", Counter()
    first = cached(path, compute)
    assert compute.calls == 1 and torch.equal(cached(path, compute)["mean"], first["mean"]) and compute.calls == 1
    data = path.read_bytes()
    if damage == "flipped_byte":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "pickled_code":
        path.write_bytes(pickle.dumps(RunsCode()))
    else:
        path.with_name("entry.pt.sha256").unlink()
    again = cached(path, compute)
    assert compute.calls == 2 and torch.equal(again["mean"], torch.arange(4.0) + 2)  # computed anew, not read
    assert not (tmp_path / "code_ran").exists()
    assert f"the cached {path} cannot be used" in caplog.text
    assert torch.equal(cached(path, compute)["mean"], again["mean"]) and compute.calls == 2  # and kept again


@pytest.mark.slow
def test_an_unusable_cache_or_data_folder_is_one_line_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    result = train(tmp_path, f"paths.cache_dir={a_file}")
    assert refusal(result).startswith(f"error: paths.cache_dir='{a_file}' is not allowed; it is not a writable folder")
    for data_dir in ("/dev/null", str(a_file / "data")):
        result = run_module("vae_lightning.train", *QUICK, f"paths.log_dir={tmp_path}", env={"VAE_LIGHTNING_DATA_DIR": data_dir})
        not_a_folder = data_dir if data_dir == "/dev/null" else a_file
        assert refusal(result) == f"error: paths.data_dir='{data_dir}' is not allowed; {not_a_folder} is not a folder"
    assert not (tmp_path / "runs").exists()
    result = run_module("vae_lightning.train", *QUICK, f"paths.log_dir={tmp_path}", env={"VAE_LIGHTNING_DATA_DIR": "/proc/self"})
    assert refusal(result).startswith("error: paths.data_dir='/proc/self' is not allowed; /proc/self/MNIST cannot be written")


# ----------------------------------------------------------------------------------------------------------
# Resume: the lineage's best, nothing to train, running and crashed runs
@pytest.mark.slow
def test_a_resumed_run_tests_the_best_checkpoint_of_its_whole_lineage(two_epoch_run, tmp_path):
    """A learning rate that makes the new epoch worse: the earlier run's best stays best, is tested, and is named
    with its run folder; the earlier run's files are all still there."""
    earlier = json.loads((two_epoch_run / "metrics.json").read_text())
    before = sorted(p.name for p in (two_epoch_run / "checkpoints").iterdir())
    result = train(tmp_path, f"resume={two_epoch_run}", "trainer.max_epochs=3", "model.optimizer.lr=0.05")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dirpath" not in result.stderr  # Lightning's warning about the new folder is not shown
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "metrics.json").read_text())
    with (run / "csv" / "metrics.csv").open() as rows:
        val_losses = [float(row["val/loss"]) for row in csv.DictReader(rows) if row["val/loss"]]
    assert val_losses and min(val_losses) > float(Path(earlier["best_checkpoint"]).stem.split("val_loss")[1])
    assert record["best_checkpoint"] == earlier["best_checkpoint"]  # in the earlier run's folder
    assert str(two_epoch_run) in (run / "SUMMARY.txt").read_text()
    assert record["metrics"]["test/loss"] == pytest.approx(earlier["metrics"]["test/loss"], rel=1e-6)
    assert sorted(p.name for p in (two_epoch_run / "checkpoints").iterdir()) == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_resume_with_nothing_left_to_train_is_one_line(two_epoch_run, tmp_path):
    line = refusal(train(tmp_path, f"resume={two_epoch_run}", "trainer.max_epochs=1"))
    assert line.startswith("error: trainer.max_epochs=1 is not allowed here; ")
    assert "has trained 2 epochs already, so there is nothing to train: give trainer.max_epochs > 2" in line


def test_resume_with_an_empty_value_is_refused(tmp_path):
    assert refusal(train(tmp_path, "resume=")) == (
        "error: resume='' is not allowed; give a run folder (resume=outputs/runs/<run>)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_running_run_is_not_resumed_and_a_dead_one_reads_as_crashed(two_epoch_run, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(two_epoch_run), str(copy)], check=True)
    status = {"status": "running", "error": None, "pid": os.getpid(), "host": os.uname().nodename}
    (copy / "status.json").write_text(json.dumps(status))
    line = refusal(train(tmp_path / "a", f"resume={copy}", "trainer.max_epochs=3"))
    assert line == (f"error: resume='{copy}' is not allowed; that run is still running (process {os.getpid()} on "
                    f"{os.uname().nodename}): wait for it, or stop it (Ctrl-C keeps a checkpoint to resume from)")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (copy / "status.json").write_text(json.dumps({**status, "pid": int(dead.stdout)}))
    assert read_status(copy)["status"] == "crashed"
    resumed = train(tmp_path / "b", f"resume={copy}", "trainer.max_epochs=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"warning: resume: {copy} was not finished cleanly" in resumed.stderr


@pytest.mark.slow  # two training runs: CI runs it
def test_a_setting_the_earlier_run_added_may_be_set_again_on_resume(tmp_path):
    """The earlier run added +trainer.limit_train_batches; debug=fast now sets it too: the composed command applies."""
    first = train(tmp_path / "a", "trainer.max_epochs=1", "+trainer.limit_train_batches=3")
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (tmp_path / "a" / "runs").iterdir()
    resumed = train(tmp_path / "b", f"resume={run}", "debug=fast", "trainer.max_epochs=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (again,) = (tmp_path / "b" / "runs").iterdir()
    assert json.loads((again / "status.json").read_text())["status"] == "completed"


# ----------------------------------------------------------------------------------------------------------
# Stop signals outside training
@pytest.mark.slow  # a training run per signal: CI runs it
@pytest.mark.parametrize("signal_name,exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_signal_during_the_test_pass_stops_it(tmp_path, signal_name, exit_code):
    result = train(tmp_path, "trainer.max_epochs=1", "+callbacks.fault._target_=fault_injection.SendSignalInTestPass",
                   f"+callbacks.fault.signal_name={signal_name}", env=FAULTS)
    assert result.returncode == exit_code, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "status.json").read_text()) == {"status": "interrupted", "error": signal_name}
    assert (run / "checkpoints" / "last.ckpt").exists() and not (run / "metrics.json").exists()


@pytest.mark.slow
def test_a_failure_after_the_test_pass_keeps_the_test_metrics_and_names_its_step(tmp_path):
    result = train(tmp_path, "trainer.max_epochs=1", "+trainer.limit_train_batches=5", "eval.fid_samples=100",
                   "+callbacks.fault._target_=fault_injection.BreakFrechetDistance", env=FAULTS)
    assert result.returncode == 1, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert line == ("error: the Fréchet distance failed after the test pass (RuntimeError: injected failure in the "
                    "Frechet distance); the checkpoints and metrics.json (the test metrics) are kept; traceback: "
                    f"{run / 'error.txt'}")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["error"].startswith("AfterTestError: the Fréchet distance failed")
    assert "injected failure" in (run / "error.txt").read_text()
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["test/nll_iw"] > 0 and "test/frechet_distance" not in metrics
    assert (run / "checkpoints" / "last.ckpt").exists() and list((run / "pictures").glob("*.png"))


# ----------------------------------------------------------------------------------------------------------
# Problems found before the work
@pytest.mark.slow  # three processes that each build a model: CI runs it
def test_sizes_that_cannot_fit_in_memory_are_one_line(two_epoch_run, tmp_path):
    checkpoint = two_epoch_run / "checkpoints" / "last.ckpt"
    line = refusal(run_module("vae_lightning.sample", f"ckpt_path={checkpoint}", "n=100000000", cwd=tmp_path))
    assert line.startswith("error: n=100000000 is not allowed; decoding 100,000,000 images takes about ")
    assert line.endswith("GB are available")
    line = refusal(train(tmp_path, "likelihood=logistic", "likelihood.components=1000"))
    assert line.startswith("error: DiscretisedLogisticLikelihood with 3000 parameters per pixel and batches of 1000")
    assert refusal(run_module("vae_lightning.sample", f"ckpt_path={checkpoint}", "mean=maybe", cwd=tmp_path)) == (
        "error: mean='maybe' is not allowed; use true or false")


DIAGONAL_ONLY = ("error: BetaTCVAE (model.objective) needs q(z|x) to be the encoder's diagonal Gaussian: "
                 "model/posterior=diagonal_gaussian and one stochastic layer (no model/latents)")


@pytest.mark.parametrize("args,expected", [
    (["model/objective=beta_tc", "model/posterior=iaf"], DIAGONAL_ONLY),
    (["model/objective=beta_tc", "model/latents=two_layer"], DIAGONAL_ONLY),
    (["model/objective=beta_tc", "data.batch_size=1"], "error: data.batch_size=1 is not allowed with BetaTCVAE "
     "(model.objective); use an integer >= 2: its minibatch estimate needs that many examples"),
    (["model/objective=cyclical_elbo", "trainer.max_epochs=null"], "error: CyclicalKLELBO (model.objective) needs a "
     "bounded run; set trainer.max_epochs or trainer.max_steps"),
], ids=["beta_tc-iaf", "beta_tc-two_layer", "beta_tc-batch_of_one", "cyclical-unbounded"])
def test_what_an_objective_needs_is_refused_before_the_first_folder(tmp_path, args, expected):
    result = run_module("vae_lightning.train", *args, cwd=tmp_path)
    assert refusal(result) == expected
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_legacy_pickle_holding_code_is_one_line_and_runs_nothing(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "code": RunsCode()}, path, _use_new_zipfile_serialization=False)
    line = refusal(run_module("vae_lightning.evaluate", f"ckpt_path={path}", cwd=tmp_path))
    assert line.startswith(f"error: ckpt_path='{path}' is not loaded; it holds objects other than tensors")
    assert not (tmp_path / "code_ran").exists()


# ----------------------------------------------------------------------------------------------------------
# The sweep report
@pytest.mark.slow
def test_the_report_names_running_missing_and_unreadable_jobs(two_epoch_run, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for job in ("0", "1", "3"):
        subprocess.run(["cp", "-r", str(two_epoch_run), str(sweep / job)], check=True)
    (sweep / "1" / "metrics.json").write_text('{"metrics": {"val/loss": 1')
    (sweep / "3" / "status.json").write_text(json.dumps(
        {"status": "running", "error": None, "pid": os.getpid(), "host": os.uname().nodename}))
    result = run_module("vae_lightning.report", str(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    report = (sweep / "report.md").read_text()
    assert "4 jobs, 1 completed, 0 failed, 1 missing, 1 running, 1 unreadable." in report
    with (sweep / "report.csv").open() as table:
        status = {row["job"]: row["status"] for row in csv.DictReader(table)}
    assert status["0"] == "completed" and status["2"] == "MISSING: no job folder" and status["3"] == "running"
    assert status["1"].startswith("UNREADABLE: metrics.json: ")
    helped = run_module("vae_lightning.report", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m vae_lightning.report SWEEP_DIR")
    assert refusal(run_module("vae_lightning.report", str(sweep / "report.md"))) == (
        f"error: {sweep / 'report.md'} is not a sweep folder (give outputs/sweeps/<sweep>)")


@pytest.mark.slow  # waits out W&B's start-up time-out
def test_wandb_online_without_a_server_falls_back_with_one_warning_and_no_banner(tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_MODE": "online"}
    result = run_module("vae_lightning.train", "debug=fast", "logger.wandb.mode=online", f"paths.log_dir={tmp_path}",
                        env=env, as_typed=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: W&B could not start (") and line.endswith("continuing with the local loggers only")
    assert "wandb:" not in result.stdout + result.stderr
    assert "init_timeout" in line  # given up by the time-out (10 s here; W&B's own default waits 90 s and more)


def test_a_stray_word_is_one_line_and_creates_nothing(tmp_path):
    result = run_module("vae_lightning.train", "model.latent_dim=5", "oops", cwd=tmp_path)
    assert refusal(result) == "error: 'oops' is not a setting; give key=value or group=option (--help lists them)"
    assert list(tmp_path.iterdir()) == []


def test_version_and_hydras_own_flags_pass(tmp_path):
    version = run_module("vae_lightning.train", "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == "vae-lightning 0.1.0 (Hydra 1.3.8)"
    completion = run_module("vae_lightning.train", "-sc", "install=bash", cwd=tmp_path)
    assert completion.returncode == 0 and "hydra_bash_completion()" in completion.stdout
    info = run_module("vae_lightning.train", "--info", "config", cwd=tmp_path)
    assert info.returncode == 0 and "Config search path" in info.stdout
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_the_report_is_one_line(tmp_path, monkeypatch, capsys):
    from vae_lightning.report import sweep_report as report

    def interrupted(sweep_dir):  # Ctrl-C while the report is being written
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", interrupted)
    assert report.main([str(tmp_path)]) == 130
    assert capsys.readouterr().err == (f"interrupted (SIGINT); {tmp_path}'s jobs are untouched, its report may be "
                                       "incomplete\n")


# ----------------------------------------------------------------------------------------------------------
# Paths as a shell passes them
@pytest.mark.slow  # four short processes
def test_a_folder_with_spaces_and_accents_is_used_again_as_typed_in_a_shell(tmp_path):
    run = tmp_path / "my runs" / "été 1"
    made = run_module("vae_lightning.train", *QUICK, "debug=fast", "test=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # resume="$RUN" in a shell is one word with spaces; 'resume="$RUN"' keeps Hydra's quotes: both are the run
    resumed = run_module("vae_lightning.train", f"resume={run}", "trainer.max_epochs=2", "test=false", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resume='{run}'" not in resumed.stderr
    assert refusal(run_module("vae_lightning.train", f'resume="{run}"', "trainer.max_epochs=1", cwd=tmp_path)) == (
        f"error: trainer.max_epochs=1 is not allowed here; {run}/checkpoints/last.ckpt has trained 1 epochs already, "
        "so there is nothing to train: give trainer.max_epochs > 1, or test it with python -m vae_lightning.evaluate "
        f"'ckpt_path={run}/checkpoints/last.ckpt'")
    sampled = run_module("vae_lightning.sample", f"ckpt_path={run}/checkpoints/last.ckpt", "n=4", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert len(list((run / "samples").glob("*/samples_prior_n4_*.png"))) == 1


def test_a_path_hydra_cannot_read_is_one_line_before_anything_is_claimed(tmp_path):
    line = refusal(run_module("vae_lightning.train", "debug=fast", f"hydra.run.dir={tmp_path}/a=b", cwd=tmp_path))
    assert line.startswith("error: mismatched input '=' expecting <EOF>")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_more_mixture_components_than_training_images_is_one_line_before_encoding(two_epoch_run, tmp_path):
    checkpoint = two_epoch_run / "checkpoints" / "last.ckpt"
    n_train = json.loads((two_epoch_run / "run_info.json").read_text())["data"]["n_train"]
    result = run_module("vae_lightning.sample", f"ckpt_path={checkpoint}", "sampler=gmm", "gmm_components=100000",
                        cwd=tmp_path)
    assert refusal(result) == ("error: gmm_components=100000 is not allowed; the Gaussian mixture is fitted to the "
                               f"{n_train:,} training images, so use at most {n_train:,} components")


@pytest.mark.slow  # two processes
def test_a_second_resume_of_a_run_being_resumed_is_one_line(two_epoch_run, tmp_path):
    import signal
    import socket
    import time

    from vae_lightning.runs.run_folder import RESUMING_FILE

    slow = ["+callbacks.slow._target_=fault_injection.SleepEachStep", "+callbacks.slow.seconds=0.5"]
    first = subprocess.Popen(
        [sys.executable, "-m", "vae_lightning.train", *QUICK, f"resume={two_epoch_run}", "trainer.max_epochs=3", *slow,
         f"paths.log_dir={tmp_path / 'first'}"],
        env={**os.environ, **FAULTS}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = two_epoch_run / RESUMING_FILE
    for _ in range(600):
        if marker.exists() or first.poll() is not None:
            break
        time.sleep(0.1)
    assert marker.exists(), first.stderr.read()[-2000:] if first.poll() is not None else "no marker after 60 s"
    line = refusal(train(tmp_path / "second", f"resume={two_epoch_run}", "trainer.max_epochs=3"))
    assert line == (f"error: resume='{two_epoch_run}' is not allowed; process {first.pid} on {socket.gethostname()} "
                    "is resuming that run now: wait for it, or stop it")
    assert not (tmp_path / "second").exists()
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130
    assert not marker.exists()  # the first resume's record goes with its process
