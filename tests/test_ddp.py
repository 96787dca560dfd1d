"""Two CPU processes with Lightning's DDP (gloo): one output folder, metrics equal to one process."""

import json
from pathlib import Path

import pytest
from conftest import run_module

pytestmark = pytest.mark.slow  # two processes, then evaluations of both: CI runs them


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, str]:
    log_dir = tmp_path_factory.mktemp("ddp")
    result = run_module(
        "vae_lightning.train", "debug=fast", "logger=local", "trainer.accelerator=cpu", "trainer.devices=2",
        f"paths.log_dir={log_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir, result.stdout + result.stderr


def test_two_process_training_writes_one_output_folder(ddp_run):
    log_dir, stdout = ddp_run
    runs = list((log_dir / "runs").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in stdout and "distributed_backend=gloo" in stdout
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert stdout.count("Run folder:") == 1  # only rank 0 reports


def evaluate(ckpt: Path, devices: int) -> dict[str, float]:
    result = run_module(
        "vae_lightning.evaluate", f"ckpt_path={ckpt}", "trainer.accelerator=cpu", f"trainer.devices={devices}",
        "eval.k=5", "eval.fid_samples=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    newest = max((ckpt.parent.parent / "evaluations").iterdir(), key=lambda p: p.stat().st_mtime)
    return json.loads((newest / "metrics.json").read_text())["metrics"]


def test_two_processes_report_the_same_metrics_as_one(ddp_run):
    """Same weights, same data: the exactly reduced validation and test metrics agree across 1 and 2 ranks."""
    log_dir, _ = ddp_run
    (run,) = (log_dir / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    one, two = evaluate(ckpt, devices=1), evaluate(ckpt, devices=2)
    for name in ("val/loss", "val/recon", "val/kl", "test/loss", "test/recon", "test/kl", "test/active_units"):
        assert two[name] == pytest.approx(one[name], rel=1e-5), name
