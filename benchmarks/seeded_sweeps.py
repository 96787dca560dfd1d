"""Result tables over seeds: run a Hydra sweep (two jobs side by side, one torch thread each) once, then summarise
each configuration's jobs, which differ only in seed, as mean ± sd with a 95% t-interval.

A sweep whose folder already holds a completed job for every combination is not run again, so a table can be
re-made from its jobs (``--report-only``), and an interrupted script picks up the sweeps it had not finished.
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae_lightning.report.seed_statistics import Summary, compare, summarise
from vae_lightning.report.sweep_report import job_dirs, read_job

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "outputs" / "results"
SIDE_BY_SIDE = ["hydra/launcher=joblib", "threads=1", "logger=local"]


@dataclass(frozen=True)
class Sweep:
    """One command: ``python -m vae_lightning.train -m`` + the side-by-side settings + ``settings`` (what names a
    configuration in the table) + ``common`` (the budget and seeds, the same for every configuration)."""

    name: str
    settings: list[str]
    common: list[str]
    side_by_side: int = 2  # jobs at a time

    @property
    def overrides(self) -> list[str]:
        return [*self.settings, *self.common]

    @property
    def folder(self) -> Path:
        return RESULTS_DIR / self.name

    @property
    def jobs(self) -> int:
        count = 1
        for override in self.overrides:
            count *= len(override.split("=", 1)[1].split(","))
        return count

    def command(self) -> str:
        return " ".join(["python -m vae_lightning.train -m", *self.launcher, *self.overrides])

    @property
    def launcher(self) -> list[str]:
        return [*SIDE_BY_SIDE, f"hydra.launcher.n_jobs={self.side_by_side}"]

    def done(self) -> bool:
        if not self.folder.is_dir():
            return False
        completed = [job for job in map(read_job, job_dirs(self.folder)) if job["status"] == "completed"]
        return len(completed) == self.jobs

    def run(self) -> None:
        if self.done():
            print(f"{self.name}: all {self.jobs} jobs already completed in {self.folder}", flush=True)
            return
        if self.folder.exists():
            sys.exit(f"{self.folder} holds an unfinished sweep: move it away to run it again")
        print(f"{self.name}: {self.command()}", flush=True)
        arguments = [*self.launcher, *self.overrides, f"hydra.sweep.dir={self.folder}"]
        result = subprocess.run([sys.executable, "-m", "vae_lightning.train", "-m", *arguments], cwd=ROOT)
        if result.returncode != 0:
            sys.exit(f"{self.name}: the sweep failed (exit {result.returncode}); see {self.folder}")


def configurations(sweep: Sweep) -> dict[str, list[dict]]:
    """The sweep's completed jobs by configuration (its ``settings``), each with its ``metrics.json`` contents, its
    wall times from there (``fit_seconds``: training; ``total_seconds``: every part the job timed) and the commit
    of the code that ran it (``commit``, from ``run_info.json``)."""
    grouped: dict[str, list[dict]] = {}
    for job_dir in job_dirs(sweep.folder):
        job = read_job(job_dir)
        if job["status"] != "completed":  # a table of a sweep still running shows the jobs done so far
            continue
        saved = json.loads((job_dir / "metrics.json").read_text())
        if not saved["data"]["official_mnist"]:
            sys.exit(f"{job_dir} did not train on the official MNIST")
        job["fit_seconds"] = saved["seconds"]["fit"]
        job["total_seconds"] = sum(saved["seconds"].values())
        job["saved"] = saved
        job["commit"] = json.loads((job_dir / "run_info.json").read_text())["git_commit"][:7]
        named = {override.split("=", 1)[0] for override in sweep.settings}
        label = ", ".join(f"{k}={v}" for k, v in job["overrides"].items() if k in named)
        grouped.setdefault(label, []).append(job)
    return grouped


def over_seeds(jobs: list[dict], metric: str) -> Summary:
    return summarise([job["metrics"][metric] for job in jobs])


def mean_sd(summary: Summary, digits: int = 2) -> str:
    """``mean ± sd`` over the seeds, or the one value."""
    return f"{summary.mean:.{digits}f} ± {summary.sd:.{digits}f}" if summary.n > 1 else f"{summary.mean:.{digits}f}"


def interval(summary: Summary, digits: int = 2) -> str:
    low, high = summary.interval
    return f"{low:.{digits}f} .. {high:.{digits}f}" if summary.n > 1 else "one seed"


def job_times(jobs: list[dict]) -> str:
    """Mean training time per job and, in brackets, of every part it timed (training, test pass, pictures, Frechet
    distance)."""
    fit = sum(job["fit_seconds"] for job in jobs) / len(jobs)
    total = sum(job["total_seconds"] for job in jobs) / len(jobs)
    return f"{fit / 60:.1f} min ({total / 60:.1f} min)"


def commits(jobs: list[dict]) -> str:
    """The commits of the code that ran the jobs, in job order, each once."""
    return ", ".join(f"`{commit}`" for commit in dict.fromkeys(job["commit"] for job in jobs))


def made_by(sweeps: list[Sweep]) -> list[str]:
    return ["", "Made by:", "", "```bash", *(sweep.command() for sweep in sweeps), "```"]


def run_and_publish(sweeps: list[Sweep], table: Callable[[], str], name: str) -> None:
    """The command line of a results script: run its sweeps (unless --report-only), then print the table and
    write it to benchmarks/NAME."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--report-only", action="store_true", help="make the table from the sweeps' jobs")
    if not parser.parse_args().report_only:
        for sweep in sweeps:
            sweep.run()
    text = table() + "\n" + "\n".join(made_by(sweeps))
    (ROOT / "benchmarks" / name).write_text(text + "\n")
    print(text)


def paired(better: list[dict], worse: list[dict], metric: str) -> str:
    """The paired difference of ``metric`` over the seeds two configurations share, and whether it excludes 0."""
    by_seed = [{int(job["overrides"]["seed"]): job["metrics"][metric] for job in jobs} for jobs in (better, worse)]
    return compare(*by_seed).describe()
