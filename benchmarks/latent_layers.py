"""One against two stochastic layers (VAE and IWAE k = 5), and prior against post-hoc GMM sampling, on full MNIST
(dynamic binarisation), 2 seeds.

    .venv/bin/python benchmarks/latent_layers.py [--report-only]

Burda et al.'s architectures (``experiment=burda2016_vae``: 784-200-200-50; ``experiment=burda2016_iwae_2layer``:
784-200-200-100-100-100-50) with their Adam and learning-rate schedule, trained for the same epochs at batch 100
(theirs: 20, 3,280 epochs, which this machine cannot afford), two sweeps (``seeded_sweeps.Sweep``: two jobs side
by side, one torch thread each, ``logger=local``) into ``outputs/results/``; each job tests its best checkpoint
with k = 1000 importance samples and measures the Fréchet distance of 1,000 samples (``eval.fid_samples``) drawn
from the prior and from a 10-component Gaussian mixture fitted to the training encodings. The table is printed and written to
``benchmarks/latent_layers.md``.
"""

import platform
import time

from seeded_sweeps import Sweep, configurations, interval, job_times, mean_sd, over_seeds, paired, run_and_publish

COMMON = ["seed=1,2", "trainer.max_epochs=40", "data.batch_size=100", "eval.k=1000"]
# with two layers the KL is a one-sample estimate either way, so the VAE is the IWAE with k = 1
SWEEPS = [Sweep("one_layer", ["experiment=burda2016_vae", "model/objective=elbo,iwae"], COMMON),
          Sweep("two_layers", ["experiment=burda2016_iwae_2layer", "model.objective.k=1,5"], COMMON)]
NAMES = {"model/objective=elbo": "VAE (ELBO), 1 layer (50)", "model/objective=iwae": "IWAE, k = 5, 1 layer (50)",
         "model.objective.k=1": "VAE (ELBO), 2 layers (100 + 50)", "model.objective.k=5": "IWAE, k = 5, 2 layers (100 + 50)"}


def rows() -> list[tuple[str, list[dict]]]:
    """(label, jobs) of every configuration: layers and objective."""
    labelled = []
    for sweep in SWEEPS:
        for label, jobs in configurations(sweep).items():
            objective = next(part for part in label.split(", ") if part.startswith("model"))
            labelled.append((NAMES[objective], jobs))
    return labelled


def active_units(jobs: list[dict]) -> str:
    if "test/active_units_1" not in jobs[0]["metrics"]:
        return mean_sd(over_seeds(jobs, "test/active_units"), 1)
    return " + ".join(mean_sd(over_seeds(jobs, f"test/active_units_{layer}"), 1) for layer in (1, 2))


def table() -> str:
    labelled = rows()
    lines = []
    for label, jobs in labelled:
        nll = over_seeds(jobs, "test/nll_iw")
        lines.append(f"| {label} | {len(jobs)} | {mean_sd(nll)} | {interval(nll)} | {active_units(jobs)} "
                     f"| {mean_sd(over_seeds(jobs, 'test/frechet_distance'), 1)} "
                     f"| {mean_sd(over_seeds(jobs, 'test/frechet_distance_gmm'), 1)} | {job_times(jobs)} |")
    by_label = dict(labelled)
    pairs = [("VAE (ELBO), 2 layers (100 + 50)", "VAE (ELBO), 1 layer (50)"),  # each said best first
             ("IWAE, k = 5, 2 layers (100 + 50)", "IWAE, k = 5, 1 layer (50)"),
             ("IWAE, k = 5, 1 layer (50)", "VAE (ELBO), 1 layer (50)"),
             ("IWAE, k = 5, 2 layers (100 + 50)", "VAE (ELBO), 2 layers (100 + 50)")]
    gmm = [f"- {label}: {paired_metrics(jobs)}" for label, jobs in labelled]
    return "\n".join([
        "Full MNIST (official 54,000 train / 6,000 val / 10,000 test), dynamic binarisation, Burda et al.'s "
        f"networks, optimiser and schedule, {COMMON[1].split('=')[1]} epochs at batch 100, seeds 1 and 2, test NLL "
        f"with k = 1000 importance samples; measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores, "
        "no GPU, two jobs side by side with one thread each. Nats per example, mean ± sd over the seeds; Fréchet "
        "distances (classifier features, 1,000 samples, eval.fid_samples, against the test images) from the prior and from a "
        "10-component Gaussian mixture fitted to the training encodings (of h1 with two layers).",
        "",
        "| objective, stochastic layers | seeds | test/nll_iw | 95% interval of the mean | active units (h1 + h2) "
        "| Fréchet distance, prior | Fréchet distance, GMM | fit time per job (whole job) |",
        "|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        "Paired differences of test/nll_iw over the two seeds (a 95% t-interval; where it includes 0 the two are "
        "tied):",
        "",
        *(comparison(by_label, one, other) for one, other in pairs if one in by_label and other in by_label),
        "",
        "GMM against prior sampling, the same model (paired over the seeds, Fréchet distance, lower is better):",
        "",
        *gmm,
    ])


def comparison(by_label: dict[str, list[dict]], one: str, other: str) -> str:
    """'<lower mean NLL> against <higher>: better / tied (paired difference ...)'."""
    better, worse = sorted((one, other), key=lambda label: over_seeds(by_label[label], "test/nll_iw").mean)
    return f"- {better} against {worse}: {paired(by_label[better], by_label[worse], 'test/nll_iw')}"


def paired_metrics(jobs: list[dict]) -> str:
    """GMM against prior sampling of the same jobs by Fréchet distance."""
    as_other = [{**job, "metrics": {"fd": job["metrics"]["test/frechet_distance"]}} for job in jobs]
    as_gmm = [{**job, "metrics": {"fd": job["metrics"]["test/frechet_distance_gmm"]}} for job in jobs]
    return paired(as_gmm, as_other, "fd")


def main() -> None:
    run_and_publish(SWEEPS, table, "latent_layers.md")


if __name__ == "__main__":
    main()
