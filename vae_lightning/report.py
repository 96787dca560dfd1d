"""Sweep reports: ``python -m vae_lightning.report SWEEP_DIR`` (also run when a multirun ends).

Writes into the sweep folder: ``report.csv`` and ``report.md`` (every job's overrides, status and
final metrics), ``report_<metric>.png`` (metric against the first numeric swept key, one line per
combination of the other swept keys) and ``report_samples.png`` (each job's last prior samples).
"""

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

REPORT_METRICS = ("test/nll_iw", "test/loss", "test/kl", "test/active_units", "val/loss")
PLOTTED = ("test/nll_iw", "test/kl")


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def read_job(job_dir: Path) -> dict[str, Any]:
    """One job's overrides (key -> value), status and metrics."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    status_file, metrics_file = job_dir / "status.json", job_dir / "metrics.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {"status": "unknown", "error": None}
    metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.exists() else {}
    if status["status"] == "completed" and not metrics:
        status = {"status": "failed", "error": "no metrics.json"}
    return {
        "job": job_dir.name,
        "overrides": dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith("hydra")),
        "status": status["status"],
        "error": status.get("error"),
        "metrics": metrics,
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
        return f"{value:.2f}" if math.isfinite(value) else str(value)
    return "" if value is None else str(value)


def report_rows(jobs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    keys = swept_keys(jobs)
    metric_names = [m for m in REPORT_METRICS if any(m in job["metrics"] for job in jobs)]
    header = ["job", *keys, "status", *metric_names]
    rows = []
    for job in jobs:
        status = job["status"] if job["status"] != "failed" else f"FAILED: {(job['error'] or '')[:80]}"
        rows.append(
            [job["job"], *(job["overrides"].get(k, "") for k in keys), status]
            + [format_value(job["metrics"].get(m)) for m in metric_names]
        )
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plot_metric(jobs: list[dict[str, Any]], metric: str, path: Path) -> bool:
    """metric against the first numeric swept key; one line per value of the other swept keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = swept_keys(jobs)
    numeric = [k for k in keys if all(as_number(j["overrides"].get(k)) is not None for j in jobs)]
    done = [j for j in jobs if metric in j["metrics"]]
    if not numeric or not done:
        return False
    x_key, others = numeric[0], [k for k in keys if k != numeric[0]]
    lines: dict[str, list[tuple[float, float]]] = {}
    for job in done:
        label = ", ".join(f"{k}={job['overrides'].get(k)}" for k in others) or metric
        lines.setdefault(label, []).append((as_number(job["overrides"][x_key]), job["metrics"][metric]))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, points in sorted(lines.items()):
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel(x_key)
    ax.set_ylabel(f"{metric} (nats)" if metric != "test/active_units" else metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_samples(jobs: list[dict[str, Any]], sweep_dir: Path, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

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


def write_report(sweep_dir: str | Path) -> str:
    """Write the report files into ``sweep_dir``; returns the Markdown table."""
    sweep_dir = Path(sweep_dir)
    jobs = [read_job(d) for d in job_dirs(sweep_dir)]
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (0, 1, ...) to report on")
    header, rows = report_rows(jobs)
    with (sweep_dir / "report.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    table = markdown_table(header, rows)
    failed = sum(job["status"] != "completed" for job in jobs)
    made = [f"report_{m.replace('/', '_')}.png" for m in PLOTTED if plot_metric(jobs, m, sweep_dir / f"report_{m.replace('/', '_')}.png")]
    if plot_samples(jobs, sweep_dir, sweep_dir / "report_samples.png"):
        made.append("report_samples.png")
    text = "\n".join(
        [
            f"# Sweep {sweep_dir.name}",
            "",
            f"{len(jobs)} jobs, {len(jobs) - failed} completed, {failed} failed. Metrics in nats per example.",
            "",
            table,
            "",
            *(f"![{name}]({name})" for name in made),
        ]
    )
    (sweep_dir / "report.md").write_text(text + "\n")
    return text


class SweepReportCallback(Callback):
    """Hydra callback: write the sweep report when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir() and job_dirs(sweep_dir):
            print(write_report(sweep_dir))
            print(f"\nSweep report: {sweep_dir / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m vae_lightning.report SWEEP_DIR", file=sys.stderr)
        return 2
    try:
        print(write_report(argv[0]))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
