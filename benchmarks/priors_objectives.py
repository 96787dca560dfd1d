"""The README's VAE-vs-IWAE and prior comparison on full MNIST (dynamic binarisation), next to Burda et al. (2016).

    .venv/bin/python benchmarks/priors_objectives.py [--report-only]

Runs three sweeps (``seeded_sweeps.Sweep``: two jobs side by side, one torch thread each, ``logger=local``) of 5
epochs and 2 seeds into ``outputs/results/priors_objectives/``; each job tests its best checkpoint with k = 100
importance samples. The table (mean ± sd over the seeds, the 95% t-interval of the mean test NLL) is printed and
written to ``benchmarks/priors_objectives.md``. Fit time: from the job's start to its last checkpoint; total: the
whole job (fit, test pass, pictures, Frechet distance).
"""

import platform
import time

from seeded_sweeps import Sweep, configurations, interval, job_times, mean_sd, over_seeds, paired, run_and_publish

COMMON = ["seed=1,2", "trainer.max_epochs=5", "eval.k=100"]
BURDA = "784-200-200-50 tanh (burda2016_vae)"
DEFAULT = "784-400-20 relu (default)"
SWEEPS = [
    Sweep("priors_objectives/burda_elbo", ["experiment=burda2016_vae", "model/objective=elbo"], COMMON),
    Sweep("priors_objectives/burda_iwae",
          ["experiment=burda2016_vae", "model/objective=iwae", "model.objective.k=5,50"], COMMON),
    Sweep("priors_objectives/default_priors", ["model/prior=standard_normal,vamp"], COMMON),
]
NAMES = {
    "experiment=burda2016_vae, model/objective=elbo": f"{BURDA}, `elbo`",
    "experiment=burda2016_vae, model/objective=iwae, model.objective.k=5": f"{BURDA}, `iwae` k = 5",
    "experiment=burda2016_vae, model/objective=iwae, model.objective.k=50": f"{BURDA}, `iwae` k = 50",
    "model/prior=standard_normal": f"{DEFAULT}, `standard_normal` prior",
    "model/prior=vamp": f"{DEFAULT}, `vamp` prior (500 pseudo-inputs)",
}


#: the comparisons the README draws: (better, worse) by row name, compared by test/nll_iw over shared seeds
PAIRS = [(2, 1), (3, 2), (5, 4)]


def table() -> str:
    rows, by_row = [], []
    for sweep in SWEEPS:
        for label, jobs in configurations(sweep).items():
            by_row.append((NAMES[label], jobs))
            nll = over_seeds(jobs, "test/nll_iw")
            latent = len(jobs[0]["saved"]["test_details"]["mu_variance_per_dim"])
            rows.append(
                f"| {NAMES[label]} | {len(jobs)} | {mean_sd(over_seeds(jobs, 'val/loss'))} | {mean_sd(nll)} "
                f"| {interval(nll)} | {mean_sd(over_seeds(jobs, 'test/active_units'), 1)} / {latent} "
                f"| {job_times(jobs)} |"
            )
    return "\n".join(
        [
            "Full MNIST (official 54,000 train / 6,000 val / 10,000 test), dynamic binarisation, 5 epochs (batch 20 "
            "for the Burda architecture, 128 for the default model), seeds 1 and 2, test NLL with k = 100 "
            f"importance samples; measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores, no GPU, "
            "two jobs side by side with one thread each. Nats per example, mean ± sd over the seeds.",
            "",
            "| model, objective / prior | seeds | val/loss (−ELBO) | test/nll_iw | 95% interval of the mean "
            "| active units | fit time per job (whole job) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Paired differences of test/nll_iw over the two seeds (a 95% t-interval; where it includes 0 the two "
            "are tied):",
            "",
            *(f"- {by_row[b - 1][0]} against {by_row[w - 1][0]}: {paired(by_row[b - 1][1], by_row[w - 1][1], 'test/nll_iw')}"
              for b, w in PAIRS),
        ]
    )


def main() -> None:
    run_and_publish(SWEEPS, table, "priors_objectives.md")


if __name__ == "__main__":
    main()
