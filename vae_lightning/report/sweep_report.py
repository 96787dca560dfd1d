"""Sweep reports: ``python -m vae_lightning.report SWEEP_DIR`` (also run when a multirun ends).

Writes into the sweep folder: ``report.csv`` and ``report.md`` (every job's overrides, status, what its
likelihood is a probability of, final metrics, and its rank within its comparison group), ``report_nll.png``
(the group's metric against the first numeric swept key, one line per combination of the other swept keys,
one panel per group; repeated seeds as a mean with a 95% error bar), ``report_test_kl.png``, ``report_curves.png``
(every job's val/loss against epoch, one panel per group) and ``report_samples.png`` (each job's last prior
samples, side by side). Jobs are ranked only against jobs whose numbers measure the same thing (see
COMPARISON_GROUPS); with ``seed`` swept (``-m ... seed=1,2,3``), configurations are also ranked by their mean over
seeds, and neighbours whose paired difference is not distinguishable from 0 are named as tied.
"""

import csv
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vae_lightning.report.seed_statistics import Summary, compare, summarise
from vae_lightning.runs.run_folder import read_status

REPORT_METRICS = ("test/bits_per_dim", "test/nll_iw", "test/loss", "test/kl", "test/active_units", "val/loss",
                  "test/frechet_distance", "test/frechet_distance_gmm")

#: Likelihood.data_model -> (comparison group, the metric that ranks it, what the group's numbers are)
COMPARISON_GROUPS = {
    "8-bit": ("8-bit images", "test/bits_per_dim", "exact probabilities or dequantised bounds of the 8-bit test images"),
    "8-bit dequantised": (
        "8-bit images", "test/bits_per_dim", "exact probabilities or dequantised bounds of the 8-bit test images"
    ),
    "binarised": (
        "binarised images", "test/nll_iw",
        "Bernoulli models the binarised test images, a different data set from the 8-bit images, "
        "so its numbers are ranked on their own",
    ),
    "none": ("not a likelihood", "", "these objectives are not normalised likelihoods of the data and are not ranked"),
}
UNKNOWN_GROUP = ("unknown", "", "jobs without a recorded data model (failed, or from an older version)")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job folders in order, a number missing between them included (as a folder that is not there)."""
    numbers = sorted(int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    return [sweep_dir / str(number) for number in range(numbers[-1] + 1)] if numbers else []


def read_job(job_dir: Path) -> dict[str, Any]:
    """One job's overrides (key -> value), status, metrics and comparison group; a job whose files cannot be read
    is reported as such (``missing``, ``unreadable``, ``crashed``), never left out."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    status = read_status(job_dir) if job_dir.is_dir() else {"status": "missing", "error": "no job folder"}
    metrics_file = job_dir / "metrics.json"
    try:
        results = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    except (OSError, ValueError) as err:
        results, status = {}, {"status": "unreadable", "error": f"metrics.json: {err}"}
    # strict JSON writes a value that is not a number as null: read it back as NaN (never ranked)
    metrics = {name: math.nan if value is None else value for name, value in results.get("metrics", {}).items()}
    if status["status"] == "completed" and not metrics:
        status = {"status": "failed", "error": "no metrics.json"}
    return {
        "job": job_dir.name,
        "overrides": dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith("hydra")),
        "status": status["status"],
        "error": status.get("error"),
        "metrics": metrics,
        "group": COMPARISON_GROUPS.get(results.get("data_model"), UNKNOWN_GROUP),
    }


def swept_keys(jobs: list[dict[str, Any]]) -> list[str]:
    """Keys whose value differs between jobs, in the order they first appear."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job["overrides"] if k not in keys]
    return [k for k in keys if len({job["overrides"].get(k) for job in jobs}) > 1] or keys


def as_number(value: str | None) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) and abs(value) < 10 else f"{value:.2f}"
    return "" if value is None else str(value)


def settings(job: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={job['overrides'].get(k)}" for k in keys)


def rankings(jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Completed jobs per comparison group, best first by the group's metric (groups without one: not ranked)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        name, metric, _ = job["group"]
        if metric and job["status"] == "completed" and math.isfinite(job["metrics"].get(metric, math.nan)):
            groups.setdefault(name, []).append(job)
    for members in groups.values():
        metric = members[0]["group"][1]
        members.sort(key=lambda job: job["metrics"][metric])
    return groups


def report_rows(jobs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    keys = swept_keys(jobs)
    ranks = {job["job"]: rank for members in rankings(jobs).values() for rank, job in enumerate(members, 1)}
    metric_names = [m for m in REPORT_METRICS if any(m in job["metrics"] for job in jobs)]
    header = ["job", *keys, "status", "compared as", "rank in group", *metric_names]
    rows = []
    for job in jobs:
        status = f"{job['status'].upper()}: {job['error'][:80]}" if job["error"] else job["status"]
        rows.append(
            [job["job"], *(job["overrides"].get(k, "") for k in keys), status, job["group"][0],
             str(ranks.get(job["job"], ""))]
            + [format_value(job["metrics"].get(m)) for m in metric_names]
        )
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ranking_text(jobs: list[dict[str, Any]]) -> list[str]:
    """A section per comparison group: what its numbers are, the best configuration, the ranking."""
    keys = swept_keys(jobs)
    lines = []
    for name, members in rankings(jobs).items():
        metric, meaning = members[0]["group"][1], members[0]["group"][2]
        best = members[0]
        lines += [
            f"## Ranking: {name}, by {metric} (lower is better)",
            "",
            f"{meaning[0].upper()}{meaning[1:]}.",
            "",
            f"**Best: job {best['job']} ({settings(best, keys)}), {metric} = {format_value(best['metrics'][metric])}.**",
            "",
            markdown_table(
                ["rank", "job", *keys, metric],
                [[str(rank), job["job"], *(job["overrides"].get(k, "") for k in keys),
                  format_value(job["metrics"][metric])] for rank, job in enumerate(members, 1)],
            ),
            "",
        ]
    return lines


SEED_KEY = "seed"


def configuration(job: dict[str, Any], keys: list[str]) -> str:
    """The job's swept settings other than its seed."""
    return settings(job, [k for k in keys if k != SEED_KEY]) or "(one configuration)"


def seed_rankings(jobs: list[dict[str, Any]]) -> dict[str, list[tuple[str, Summary, dict[int, float]]]]:
    """Per comparison group: (configuration, summary over seeds, value by seed), best mean first. Empty unless
    the sweep ran some configuration with more than one seed."""
    keys = swept_keys(jobs)
    if SEED_KEY not in keys:
        return {}
    by_group: dict[str, dict[str, dict[int, float]]] = {}
    for name, members in rankings(jobs).items():
        metric = members[0]["group"][1]
        for job in members:
            seed = int(as_number(job["overrides"].get(SEED_KEY)) or 0)
            by_group.setdefault(name, {}).setdefault(configuration(job, keys), {})[seed] = job["metrics"][metric]
    return {
        name: sorted(((label, summarise(list(v.values())), v) for label, v in configs.items()), key=lambda c: c[1].mean)
        for name, configs in by_group.items()
    }


def seed_text(jobs: list[dict[str, Any]]) -> list[str]:
    """A section per comparison group: mean, spread and 95% interval over seeds, and for each configuration
    whether it can be told apart from the next one in the ranking."""
    lines = []
    for name, configs in seed_rankings(jobs).items():
        metric = next(job["group"][1] for job in jobs if job["group"][0] == name)
        rows = []
        for rank, (label, summary, values) in enumerate(configs, 1):
            low, high = summary.interval
            against = compare(values, configs[rank][2]).describe() if rank < len(configs) else ""
            rows.append([str(rank), label, str(summary.n), format_value(summary.mean), format_value(summary.sd),
                         f"{format_value(low)} .. {format_value(high)}" if summary.n > 1 else "one seed", against])
        lines += [
            f"## Over seeds: {name}, by {metric} (lower is better)",
            "",
            "Mean over the seeds of each configuration, its standard deviation and the 95% t-interval of the mean; "
            "'against the next' is a paired t-interval of the difference over the seeds both ran: where it "
            "includes 0 the two are tied.",
            "",
            markdown_table(["rank", "configuration", "seeds", "mean", "sd", "95% interval", "against the next"], rows),
            "",
        ]
    return lines


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


Points = dict[str, list[tuple[float, float, float]]]


def _lines(jobs: list[dict[str, Any]], metric: str, keys: list[str] | None = None) -> tuple[str, Points] | None:
    """(x key, {label: [(x, mean, 95% half-width)]}): metric against the first numeric swept key (the seed
    aside), a line per other setting; repeated seeds become a mean with an error bar."""
    keys = [k for k in (keys or swept_keys(jobs)) if k != SEED_KEY]
    numeric = [k for k in keys if all(as_number(j["overrides"].get(k)) is not None for j in jobs)]
    done = [j for j in jobs if math.isfinite(j["metrics"].get(metric, math.nan))]
    if not numeric or not done:
        return None
    x_key, others = numeric[0], [k for k in keys if k != numeric[0]]
    values: dict[tuple[str, float], list[float]] = {}
    for job in done:
        label = settings(job, others) or metric
        values.setdefault((label, as_number(job["overrides"][x_key])), []).append(job["metrics"][metric])
    lines: Points = {}
    for (label, x), ys in values.items():
        summary = summarise(ys)
        lines.setdefault(label, []).append((x, summary.mean, summary.half_width if summary.n > 1 else 0.0))
    return x_key, lines


def _draw(ax, x_key: str, lines: Points, ylabel: str, title: str = "") -> None:
    for label, points in sorted(lines.items()):
        xs, ys, errors = zip(*sorted(points))
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label)
    xs = [x for points in lines.values() for x, _, _ in points]
    if min(xs) > 0 and max(xs) >= 10 * min(xs):  # latent sizes such as 2, 10, 50
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(xs)), [f"{x:g}" for x in sorted(set(xs))])
        ax.minorticks_off()  # the log axis's minor labels (3x10^0, ...) would overlap the swept values
    ax.set_xlabel(x_key)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def unit(metric: str) -> str:
    return {"test/bits_per_dim": "bits/dim", "test/active_units": "units"}.get(metric, "nats")


def plot_metric(jobs: list[dict[str, Any]], metric: str, path: Path) -> bool:
    """metric against the first numeric swept key; one line per value of the other swept keys."""
    found = _lines(jobs, metric)
    if found is None:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    _draw(ax, *found, ylabel=f"{metric} ({unit(metric)})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_nll(jobs: list[dict[str, Any]], path: Path) -> bool:
    """Each comparison group's metric against the first numeric swept key, one panel per group."""
    panels, keys = [], swept_keys(jobs)
    for name, members in rankings(jobs).items():
        metric = members[0]["group"][1]
        found = _lines(members, metric, keys)
        if found is not None:
            panels.append((name, metric, found))
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), dpi=120, squeeze=False)
    for ax, (name, metric, (x_key, lines)) in zip(axes[0], panels):
        _draw(ax, x_key, lines, ylabel=f"{metric} ({unit(metric)})", title=name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def learning_curve(job_dir: Path, metric: str = "val/loss") -> list[tuple[int, float]]:
    """(epoch, value) of ``metric`` from a job's ``csv/metrics.csv`` (empty without one)."""
    path = job_dir / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get(metric) not in (None, "")]
    return [(int(float(row["epoch"])), float(row[metric])) for row in rows]


def plot_curves(jobs: list[dict[str, Any]], sweep_dir: Path, path: Path) -> bool:
    """val/loss against epoch for every job, one panel per comparison group: is a ranking still moving?"""
    keys = swept_keys(jobs)
    panels: dict[str, list[tuple[str, list[tuple[int, float]]]]] = {}
    for job in jobs:
        curve = learning_curve(sweep_dir / job["job"])
        if len(curve) > 1:
            panels.setdefault(job["group"][0], []).append((f"{job['job']}: {settings(job, keys)}", curve))
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), dpi=120, squeeze=False)
    for ax, (name, curves) in zip(axes[0], sorted(panels.items())):
        for label, curve in curves:
            epochs, values = zip(*curve)
            ax.plot(epochs, values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("val/loss (nats)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_samples(jobs: list[dict[str, Any]], sweep_dir: Path, path: Path) -> bool:
    plt = _pyplot()
    import matplotlib.image as mpimg

    grids = []
    for job in jobs:
        samples = sorted((sweep_dir / job["job"] / "images").glob("samples_epoch*.png"))
        if samples:
            grids.append((job, samples[-1]))
    if not grids:
        return False
    keys = swept_keys(jobs)
    fig, axes = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 3.0), dpi=120, squeeze=False)
    for ax, (job, image) in zip(axes[0], grids):
        ax.imshow(mpimg.imread(image), cmap="gray")
        ax.set_title("\n".join(f"{k.split('.')[-1]}={job['overrides'].get(k)}" for k in keys), fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(sweep_dir: str | Path) -> tuple[str, list[str], list[list[str]]]:
    """Write the report files into ``sweep_dir``; returns the Markdown text and the table (header, rows)."""
    sweep_dir = Path(sweep_dir)
    jobs = [read_job(d) for d in job_dirs(sweep_dir)]
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (0, 1, ...) to report on")
    header, rows = report_rows(jobs)
    with (sweep_dir / "report.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    counts = Counter(job["status"] for job in jobs)
    others = "".join(f", {n} {status}" for status, n in sorted(counts.items()) if status not in ("completed", "failed"))
    made = []
    for name, draw in (
        ("report_nll.png", lambda path: plot_nll(jobs, path)),
        ("report_test_kl.png", lambda path: plot_metric(jobs, "test/kl", path)),
        ("report_curves.png", lambda path: plot_curves(jobs, sweep_dir, path)),
        ("report_samples.png", lambda path: plot_samples(jobs, sweep_dir, path)),
    ):
        if draw(sweep_dir / name):
            made.append(name)
    text = "\n".join(
        [
            f"# Sweep {sweep_dir.name}",
            "",
            f"{len(jobs)} jobs, {counts['completed']} completed, {counts['failed']} failed{others}. Metrics in nats per example "
            "(bits/dim for test/bits_per_dim).",
            "",
            markdown_table(header, rows),
            "",
            *ranking_text(jobs),
            *seed_text(jobs),
            *(f"![{name}]({name})" for name in made),
        ]
    )
    (sweep_dir / "report.md").write_text(text + "\n")
    return text, header, rows


class SweepReportCallback(Callback):
    """Hydra callback: write the sweep report when a multirun ends (and log it to W&B when W&B is on); a sweep
    with a failed job then exits with code 1, so scripts and CI see it."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not (sweep_dir.is_dir() and job_dirs(sweep_dir)):
            return
        text, header, rows = write_report(sweep_dir)
        print(text)
        print(f"\nSweep report: {sweep_dir / 'report.md'}")
        wandb_cfg = config.get("logger", {}).get("wandb") if config.get("logger") else None
        if wandb_cfg is not None:
            from vae_lightning.tracking.dashboard import model_artifact
            from vae_lightning.tracking.loggers import log_sweep_report

            artifacts = [[*row, model_artifact(sweep_dir / row[0])] for row in rows]  # row[0]: the job's folder
            log_sweep_report(sweep_dir, wandb_cfg.get("project", "vae-lightning"), wandb_cfg.get("mode"),
                             [*header, "model artifact"], artifacts)
        not_completed = [row[0] for row in rows if row[header.index("status")] != "completed"]
        if not_completed:
            print(
                f"error: {len(not_completed)} of {len(rows)} sweep jobs did not complete (jobs {', '.join(not_completed)}; "
                f"see {sweep_dir / 'report.md'})",
                file=sys.stderr,
            )
            sys.exit(1)


USAGE = "usage: python -m vae_lightning.report SWEEP_DIR (or vae-lightning-report SWEEP_DIR)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--help"], ["-h"]):
        print(f"{USAGE}\n\nWrites report.md, report.csv and the report's pictures into a sweep folder "
              "(outputs/sweeps/<sweep>) and prints the report.")
        return 0
    if len(argv) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    if not Path(argv[0]).is_dir():
        print(f"error: {argv[0]} is not a sweep folder (give outputs/sweeps/<sweep>)", file=sys.stderr)
        return 2
    try:
        print(write_report(argv[0])[0])
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted (SIGINT); {argv[0]}'s jobs are untouched, its report may be incomplete", file=sys.stderr)
        return 130
    return 0


def cli() -> None:
    """The ``vae-lightning-report`` console script, and ``python -m vae_lightning.report``."""
    sys.exit(main())
