"""Hydra multirun: a folder per job, the sweep report, failures, DDP inside sweeps, W&B groups."""

import csv
import json
import struct
from pathlib import Path

import pytest
from conftest import run_module

FAST = ["debug=fast", "data.eval_batch_size=200"]


def only_sweep(cwd: Path) -> Path:
    """The one sweep folder a sweep started in ``cwd`` made (in ./outputs, the default)."""
    sweeps = list((cwd / "outputs" / "sweeps").iterdir())
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def report_rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "report.csv").open()))


def wandb_records(path: Path):
    """Payloads of a .wandb file: a 7-byte header, then LevelDB-style log records in 32 KiB blocks
    (4-byte checksum, 2-byte length, 1-byte type: 1 full, 2 first, 3 middle, 4 last)."""
    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B", path
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block  # block trailer
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            yield payload
        elif kind in (2, 3):
            pending = (pending if kind == 3 else b"") + payload
        elif kind == 4:
            yield pending + payload


def wandb_group(job_dir: Path, job_type: str = "train") -> str:
    """The group recorded in a job's offline W&B run file, read back from the file itself (its job type checked)."""
    from wandb.proto import wandb_internal_pb2

    (run_file,) = job_dir.glob("wandb/offline-run-*/run-*.wandb")
    for payload in wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "run":
            assert record.run.job_type == job_type, (run_file, record.run.job_type)
            return record.run.run_group
    raise AssertionError(f"no run record in {run_file}")


@pytest.mark.slow
def test_two_by_two_sweep_writes_every_job_and_the_report(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", *FAST, "model.latent_dim=2,3", "likelihood=bernoulli,gaussian",
        cwd=tmp_path, as_typed=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    rows = report_rows(sweep)
    assert [(r["model.latent_dim"], r["likelihood"]) for r in rows] == [
        ("2", "bernoulli"), ("2", "gaussian"), ("3", "bernoulli"), ("3", "gaussian")
    ]
    assert all(r["status"] == "completed" and float(r["test/nll_iw"]) for r in rows)
    for job in range(4):
        assert (sweep / str(job) / "metrics.json").exists() and (sweep / str(job) / "checkpoints" / "last.ckpt").exists()
    for name in ("report.md", "report_nll.png", "report_test_kl.png", "report_samples.png"):
        assert (sweep / name).stat().st_size > 0, name
    assert "4 jobs, 4 completed, 0 failed" in result.stdout
    assert "wandb:" not in result.stdout + result.stderr  # the jobs' runs and the report's: no W&B banner
    # ranked only within what each likelihood is a probability of, best first
    assert [r["compared as"] for r in rows] == ["binarised images", "8-bit images"] * 2
    for group, metric in (("binarised images", "test/nll_iw"), ("8-bit images", "test/bits_per_dim")):
        members = sorted((r for r in rows if r["compared as"] == group), key=lambda r: float(r[metric]))
        assert [r["rank in group"] for r in members] == ["1", "2"]
        best = members[0]
        report = (sweep / "report.md").read_text()
        assert f"## Ranking: {group}, by {metric} (lower is better)" in report
        assert f"**Best: job {best['job']} (model.latent_dim={best['model.latent_dim']}, " in report
    assert "Bernoulli models the binarised test images, a different data set" in report
    # W&B: all runs of the sweep share a group named after the sweep folder; the report is a table there too
    assert {wandb_group(sweep / str(job)) for job in range(4)} == {sweep.name}
    assert wandb_group(sweep, job_type="sweep-report") == sweep.name
    (table_file,) = sweep.glob("wandb/offline-run-*/files/media/table/sweep/report_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == [*rows[0], "model artifact"]
    artifacts = [f"model-{json.loads((sweep / r['job'] / 'run_info.json').read_text())['wandb']['id']}:best" for r in rows]
    assert table["data"] == [[*r.values(), artifact] for r, artifact in zip(rows, artifacts)]


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep_and_the_sweep_exits_non_zero(tmp_path):
    # lr = 1e30 passes every check and fails at run time: its loss stops being a number
    result = run_module(
        "vae_lightning.train", "-m", *FAST, "logger=local", "model.optimizer.lr=0.001,1e30,0.002", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 3 sweep jobs did not complete (jobs 1; see {sweep / 'report.md'})"
    )
    rows = report_rows(sweep)
    assert [r["status"].split(":")[0] for r in rows] == ["completed", "FAILED", "completed"]
    assert "became non-finite" in rows[1]["status"]
    status = json.loads((sweep / "1" / "status.json").read_text())
    assert status["status"] == "failed" and "non-finite" in status["error"]
    assert "3 jobs, 2 completed, 1 failed" in (sweep / "report.md").read_text()


def test_every_swept_value_is_checked_before_the_first_job(tmp_path):
    result = run_module("vae_lightning.train", "-m", *FAST, "logger=local", "model.latent_dim=2,-1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: model.latent_dim=-1 is not allowed; use an integer >= 1"]
    assert not (tmp_path / "outputs" / "sweeps").exists() or not any((tmp_path / "outputs" / "sweeps").iterdir())


@pytest.mark.slow
def test_sweep_with_two_ddp_processes_per_job(tmp_path):
    """Every step after training on (the Fréchet distances, pictures, W&B): only epochs and batches shortened."""
    result = run_module(
        "vae_lightning.train", "-m", "model.latent_dim=2,3", "likelihood=bernoulli,gaussian", "trainer.devices=2",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=5", "eval.k=5", "eval.fid_samples=100",
        cwd=tmp_path, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    rows = report_rows(sweep)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    for job in "0123":
        metrics = json.loads((sweep / job / "metrics.json").read_text())["metrics"]
        assert metrics["test/frechet_distance"] > 0 and metrics["test/frechet_distance_gmm"] > 0, job
        assert list((sweep / job / "pictures").glob("*.png")) and list((sweep / job).glob("wandb/offline-run-*")), job
    # the children re-ran their own job, not the sweep: no extra sweep folders or jobs
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1", "2", "3"]
    assert len(list((tmp_path / "outputs" / "sweeps").iterdir())) == 1
    assert not (tmp_path / "outputs" / "runs").exists()


def test_report_command_on_a_folder_without_jobs(tmp_path):
    result = run_module("vae_lightning.report", str(tmp_path))
    assert result.returncode == 2 and f"{tmp_path}: no job folders" in result.stderr


@pytest.mark.slow
def test_optuna_search_minimises_val_loss(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2", *FAST, "logger=local", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    rows = report_rows(sweep)
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    best_line = next(line for line in result.stdout.splitlines() + result.stderr.splitlines() if "Best value:" in line)
    assert float(best_line.split("Best value:")[1]) == pytest.approx(min(float(r["val/loss"]) for r in rows), rel=1e-4)
    optimization = (sweep / "optimization_results.yaml").read_text()
    assert "model.optimizer.lr" in optimization and "model.latent_dim" in optimization


@pytest.mark.slow
def test_submitit_local_launcher_runs_jobs_in_parallel_processes(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        "model.latent_dim=2,3", *FAST, "logger=local", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    assert [r["status"] for r in report_rows(sweep)] == ["completed", "completed"]
    assert list(sweep.glob(".submitit/*/*_log.out"))  # the jobs really went through submitit


def log_span(job: Path) -> tuple[float, float]:
    """(start, end) of a job in its worker: Hydra writes ``.hydra/config.yaml`` as the job starts, before the job
    imports torch; ``metrics.json`` is its last file. (The log's own lines span a second or two of a debug job,
    too little to show two jobs overlapping when one worker starts later.)"""
    return (job / ".hydra" / "config.yaml").stat().st_mtime, (job / "metrics.json").stat().st_mtime


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_side_by_side_with_one_thread_each(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1",
        "model.latent_dim=2,3", *FAST, "logger=local", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    assert [r["status"] for r in report_rows(sweep)] == ["completed", "completed"]
    (start_0, end_0), (start_1, end_1) = log_span(sweep / "0"), log_span(sweep / "1")
    assert start_1 < end_0 and start_0 < end_1  # the two jobs ran at the same time
    assert all(json.loads((sweep / j / "metrics.json").read_text())["metrics"]["test/nll_iw"] > 0 for j in "01")
