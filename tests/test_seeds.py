"""Seeds as a sweep axis: the report aggregates jobs that differ only in seed, names ties, draws learning curves."""

import json
import math
import statistics
from pathlib import Path

import pytest
import yaml
from conftest import run_module

from vae_lightning.report.seed_statistics import compare, summarise, t_quantile
from vae_lightning.report.sweep_report import job_dirs, read_job, seed_rankings, write_report


def test_summary_matches_the_textbook_t_interval():
    values = [90.0, 91.0, 92.5]
    summary = summarise(values)
    half = 4.302653 * statistics.stdev(values) / math.sqrt(3)  # t(0.975, 2) = 4.302653 (tables: 4.303)
    assert (summary.n, summary.mean, summary.sd) == (3, pytest.approx(91.1666667), pytest.approx(statistics.stdev(values)))
    assert summary.interval == pytest.approx((summary.mean - half, summary.mean + half))
    assert summarise([5.0]).half_width == math.inf and t_quantile(100) == pytest.approx(1.984, abs=5e-4)  # tables: 1.984


def test_a_paired_comparison_tells_a_winner_from_a_tie():
    # a clear winner: 1 nat better on every seed, whatever the seed's own level
    winner = compare({1: 90.0, 2: 95.0, 3: 92.0}, {1: 91.0, 2: 96.1, 3: 92.9})
    assert winner.distinguishable and winner.difference == pytest.approx(1.0, abs=0.1)
    # a tie: the sign of the difference flips from seed to seed
    tie = compare({1: 90.0, 2: 95.0, 3: 92.0}, {1: 90.5, 2: 94.4, 3: 92.3})
    assert not tie.distinguishable and tie.describe().startswith("tied: not distinguishable")
    assert compare({1: 90.0}, {1: 95.0}).describe() == "not tested (fewer than 2 shared seeds)"


def write_job(sweep: Path, number: int, overrides: list[str], nll: float, curve: list[float]) -> None:
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "status.json").write_text(json.dumps({"status": "completed", "error": None}))
    metrics = {"test/nll_iw": nll, "test/bits_per_dim": nll / (784 * math.log(2)), "val/loss": curve[-1]}
    (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "data_model": "binarised"}))
    (job / "csv").mkdir()
    rows = ["epoch,step,val/loss"] + [f"{epoch},{epoch * 10},{value}" for epoch, value in enumerate(curve)]
    (job / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def synthetic_sweep(tmp_path: Path) -> Path:
    """latent 2 is clearly worst; latent 10 and 50 are tied (their order flips between seeds)."""
    nll = {("2", "1"): 100.0, ("2", "2"): 101.0, ("2", "3"): 100.5,
           ("10", "1"): 90.0, ("10", "2"): 90.6, ("10", "3"): 90.2,
           ("50", "1"): 90.3, ("50", "2"): 90.1, ("50", "3"): 90.5}
    for number, ((latent, seed), value) in enumerate(sorted(nll.items())):
        write_job(tmp_path, number, [f"model.latent_dim={latent}", f"seed={seed}"], value, [value + 20, value + 5, value + 1])
    return tmp_path


def test_the_report_ranks_configurations_over_seeds_and_names_the_tie(synthetic_sweep):
    text, _, _ = write_report(synthetic_sweep)
    ranking = seed_rankings([read_job(job) for job in job_dirs(synthetic_sweep)])["binarised images"]
    assert [label for label, _, _ in ranking] == ["model.latent_dim=10", "model.latent_dim=50", "model.latent_dim=2"]
    assert [summary.n for _, summary, _ in ranking] == [3, 3, 3]
    assert ranking[0][1].mean == pytest.approx(90.2667, abs=1e-3)
    assert "## Over seeds: binarised images, by test/nll_iw (lower is better)" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1 | model.latent_dim=10")]
    assert len(rows) == 1 and "tied: not distinguishable" in rows[0]
    rows = [line for line in text.splitlines() if line.startswith("| 2 | model.latent_dim=50")]
    assert len(rows) == 1 and "| better (paired difference" in rows[0]
    assert (synthetic_sweep / "report_curves.png").stat().st_size > 10_000
    assert (synthetic_sweep / "report_nll.png").exists()


@pytest.mark.slow
def test_a_real_sweep_over_seeds_reports_them(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", "debug=fast", "logger=local", "test=true", "eval.fid_samples=0",
        "trainer.max_epochs=2", "seed=1,2", "model.latent_dim=2,5", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    text = (sweep / "report.md").read_text()
    assert "## Over seeds: binarised images, by test/nll_iw" in text
    assert "| model.latent_dim=2 | 2 |" in text and "| model.latent_dim=5 | 2 |" in text
    assert (sweep / "report_curves.png").exists()
