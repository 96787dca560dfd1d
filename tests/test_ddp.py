"""Two CPU processes with Lightning's DDP (gloo): the README's first command as typed, every step after training on
(Fréchet distances, pictures, W&B artifacts); one output folder; metrics, distances and pictures equal to one
process for the same checkpoint."""

import json
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, run_module
from test_dashboard import records
from test_readme import page_commands

pytestmark = pytest.mark.slow  # two processes, then evaluations of both: CI runs them

#: only what shortens the command; nothing that switches a step off
SHORTER = ["trainer.max_epochs=1", "+trainer.limit_train_batches=10", "eval.k=5", "eval.fid_samples=200"]


def readme_first_command() -> list[str]:
    first = page_commands(ROOT / "README.md")[0]
    assert first == "python -m vae_lightning.train likelihood=gaussian trainer.devices=2", first
    return shlex.split(first)[3:]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("ddp")
    result = run_module("vae_lightning.train", *readme_first_command(), *SHORTER, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (cwd / "outputs" / "runs").iterdir()
    return run, result.stdout + result.stderr


def test_the_readme_first_command_completes_with_every_step_after_training(ddp_run):
    run, console = ddp_run
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in console and "distributed_backend=gloo" in console
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert console.count("Run folder:") == 1  # only rank 0 reports
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["test/frechet_distance"] > 0 and metrics["test/frechet_distance_gmm"] > 0
    assert {"samples.png", "reconstructions.png"} <= {p.name for p in (run / "pictures").glob("*.png")}
    artifacts = [a for a in records(run)["artifact"] if a.type == "model"]
    assert artifacts and {"best", "latest"} <= {alias for a in artifacts for alias in a.aliases}


def evaluate(ckpt: Path, devices: int) -> Path:
    result = run_module("vae_lightning.evaluate", f"ckpt_path={ckpt}", f"trainer.devices={devices}", "eval.k=5",
                        "eval.fid_samples=200")
    assert result.returncode == 0, result.stderr[-3000:]
    return max((ckpt.parent.parent / "evaluations").iterdir(), key=lambda p: p.stat().st_mtime)


def test_two_processes_report_the_metrics_distances_and_pictures_of_one(ddp_run):
    """Same weights, same data: exactly reduced metrics, and distances and pictures made by rank 0 alone."""
    run, _ = ddp_run
    ckpt = run / "checkpoints" / "last.ckpt"
    one, two = evaluate(ckpt, devices=1), evaluate(ckpt, devices=2)
    one_metrics, two_metrics = (json.loads((e / "metrics.json").read_text())["metrics"] for e in (one, two))
    for name in ("val/loss", "val/recon", "val/kl", "test/loss", "test/recon", "test/kl", "test/active_units",
                 "test/frechet_distance", "test/frechet_distance_gmm"):
        assert two_metrics[name] == pytest.approx(one_metrics[name], rel=1e-5), name
    pictures = sorted(p.name for p in (one / "pictures").glob("*.png"))
    assert pictures and pictures == sorted(p.name for p in (two / "pictures").glob("*.png"))
    for name in pictures:
        assert (one / "pictures" / name).read_bytes() == (two / "pictures" / name).read_bytes(), name
