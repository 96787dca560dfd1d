"""Diagonal Gaussian against planar-flow and IAF posteriors on full MNIST (dynamic binarisation), 2 seeds.

    .venv/bin/python benchmarks/posteriors.py [--report-only]

One sweep (``seeded_sweeps.Sweep``: two jobs side by side, one torch thread each, ``logger=local``) of the default
model (784-400-20 MLP, Bernoulli, Adam 1e-3, batch 128) for 5 epochs into ``outputs/results/posteriors/``; each
job tests its best checkpoint with k = 100 importance samples. The table (mean ± sd over the seeds, the 95%
t-interval of the mean test NLL, paired differences) is printed and written to ``benchmarks/posteriors.md``.
"""

import platform
import time

from seeded_sweeps import Sweep, configurations, interval, job_times, mean_sd, over_seeds, paired, run_and_publish

SWEEPS = [Sweep("posteriors", ["model/posterior=diagonal_gaussian,planar_flow,iaf"],
                ["seed=1,2", "trainer.max_epochs=5", "eval.k=100"])]
NAMES = {
    "model/posterior=diagonal_gaussian": "`diagonal_gaussian` (closed-form KL)",
    "model/posterior=planar_flow": "`planar_flow`, 4 steps (one-sample KL)",
    "model/posterior=iaf": "`iaf`, 2 steps of 64 hidden units (one-sample KL)",
}


def table() -> str:
    rows, by_row = [], []
    for label, jobs in configurations(SWEEPS[0]).items():
        by_row.append((NAMES[label], jobs))
        nll = over_seeds(jobs, "test/nll_iw")
        rows.append(f"| {NAMES[label]} | {len(jobs)} | {mean_sd(over_seeds(jobs, 'val/loss'))} | {mean_sd(nll)} "
                    f"| {interval(nll)} | {mean_sd(over_seeds(jobs, 'test/active_units'), 1)} / 20 | {job_times(jobs)} |")
    diagonal = by_row[0]
    return "\n".join([
        "Full MNIST (official 54,000 train / 6,000 val / 10,000 test), dynamic binarisation, default model "
        "(784-400-20 MLP, batch 128), 5 epochs, seeds 1 and 2, test NLL with k = 100 importance samples; measured "
        f"{time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores, no GPU, two jobs side by side with one thread "
        "each. Nats per example, mean ± sd over the seeds.",
        "",
        "| posterior | seeds | val/loss (−ELBO) | test/nll_iw | 95% interval of the mean | active units "
        "| fit time per job (whole job) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Paired differences of test/nll_iw over the two seeds against the diagonal Gaussian (a 95% t-interval; "
        "where it includes 0 the two are tied):",
        "",
        *(comparison(row, diagonal) for row in by_row[1:]),
    ])


def comparison(row: tuple[str, list[dict]], other: tuple[str, list[dict]]) -> str:
    """'<lower mean> against <higher mean>: better / tied (paired difference ...)' by test/nll_iw."""
    mean = {name: over_seeds(jobs, "test/nll_iw").mean for name, jobs in (row, other)}
    better, worse = sorted((row, other), key=lambda pair: mean[pair[0]])
    return f"- {better[0]} against {worse[0]}: {paired(better[1], worse[1], 'test/nll_iw')}"


def main() -> None:
    run_and_publish(SWEEPS, table, "posteriors.md")


if __name__ == "__main__":
    main()
