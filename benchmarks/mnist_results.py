"""The README's full-MNIST results table: the default model (784-400-20 MLP, 30 epochs) per likelihood, 2 seeds.

    .venv/bin/python benchmarks/mnist_results.py [--report-only]

Runs one sweep (``seeded_sweeps.Sweep``: two jobs side by side, one torch thread each, ``logger=local``) into
``outputs/results/mnist_results/``; each job tests its best checkpoint (by ``val/loss``) with k = 1000 importance
samples. The table (mean ± sd over the seeds, the 95% t-interval of the mean test NLL) is printed and written to
``benchmarks/mnist_results.md``. Fit time: from the job's start to its last checkpoint; total: the whole job (fit,
the k = 1000 test pass, pictures, Frechet distance). Jobs side by side share the 2 cores, so times are per job.
"""

import platform
import time

from seeded_sweeps import Sweep, commits, configurations, interval, job_times, mean_sd, over_seeds, run_and_publish

COMMON = ["seed=1,2", "trainer.max_epochs=30", "eval.k=1000"]
SWEEPS = [
    Sweep("mnist_results/likelihoods",
          ["likelihood=bernoulli,continuous_bernoulli,gaussian,gaussian_per_pixel,logistic"], COMMON),
]
NAMES = {
    "likelihood=bernoulli": "`bernoulli`, dynamic binarisation (binarised images)",
    "likelihood=continuous_bernoulli": "`continuous_bernoulli`, dequantised (bound)",
    "likelihood=gaussian": "`gaussian`, one learned σ, dequantised (bound)",
    "likelihood=gaussian_per_pixel": "`gaussian_per_pixel`, σ per pixel, dequantised (bound)",
    "likelihood=logistic": "`logistic`, discretised logistic (exact)",
}


def table() -> str:
    rows = []
    for sweep in SWEEPS:
        for label, jobs in configurations(sweep).items():
            nll = over_seeds(jobs, "test/nll_iw")
            rows.append(
                f"| {NAMES[label]} | {len(jobs)} | {mean_sd(over_seeds(jobs, 'val/loss'))} | {mean_sd(nll)} "
                f"| {interval(nll)} | {mean_sd(over_seeds(jobs, 'test/bits_per_dim'), 3)} "
                f"| {mean_sd(over_seeds(jobs, 'test/active_units'), 1)} / 20 "
                f"| {mean_sd(over_seeds(jobs, 'test/frechet_distance'), 1)} | {job_times(jobs)} | {commits(jobs)} |"
            )
    return "\n".join(
        [
            "Full MNIST (official 54,000 train / 6,000 val / 10,000 test), 30 epochs, 784-400-20 MLP, batch 128, "
            f"Adam 1e-3, seeds 1 and 2, k = 1000; measured {time.strftime('%Y-%m-%d')} on "
            f"{platform.machine()}, 2 cores, no GPU, two jobs side by side with one thread each. Nats per example "
            "(mean ± sd over the seeds); bits/dim of the 8-bit test images except for `bernoulli` (binarised).",
            "",
            "| likelihood | seeds | val/loss (−ELBO) | test/nll_iw | 95% interval of the mean | test/bits_per_dim "
            "| active units | Fréchet distance | fit time per job (whole job) | code (commit) |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def main() -> None:
    run_and_publish(SWEEPS, table, "mnist_results.md")


if __name__ == "__main__":
    main()
