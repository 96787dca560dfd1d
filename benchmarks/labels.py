"""Labels on full MNIST: Kingma et al.'s M2 with 100 labels (3 seeds) next to their 11.97 ± 1.71% test error, and the
class-conditional VAE against the same model without labels (2 seeds).

    .venv/bin/python benchmarks/labels.py [--report-only]

Two sweeps (``seeded_sweeps.Sweep``: jobs side by side, one torch thread each, ``logger=local``) into
``outputs/results/labels/``. M2: ``experiment=kingma2014_m2`` cut to ``M2_EPOCHS`` epochs (the paper trains far
longer), its test pass with k = 10 importance samples per class (K * k = 100 decoder passes per image). The
conditional VAE and the default model: 784-400-20 MLP, Bernoulli, 10 epochs, k = 100. The tables (mean ± sd over
the seeds, the 95% t-interval of the mean) are printed and written to ``benchmarks/labels.md``; M2's validation
error per epoch (``val/error``, 6,000 validation images) of each seed is drawn to ``docs/figures/m2_curve.png``.
"""

import csv
import platform
import time

from seeded_sweeps import ROOT, Sweep, configurations, interval, job_times, mean_sd, over_seeds, paired, run_and_publish

M2_EPOCHS = 20
COMMON = ["seed=1,2", "trainer.max_epochs=10", "eval.k=100"]
SWEEPS = [
    Sweep("labels/m2", ["experiment=kingma2014_m2"], ["seed=1,2,3", f"trainer.max_epochs={M2_EPOCHS}", "eval.k=10"],
          side_by_side=3),
    Sweep("labels/no_labels", [], COMMON),
    Sweep("labels/conditional", ["model/labels=conditional"], COMMON),
]
NAMES = {
    "experiment=kingma2014_m2": "M2, 100 labels (`experiment=kingma2014_m2`)",
    "": "784-400-20 MLP, no labels (the default)",
    "model/labels=conditional": "784-400-20 MLP, `model/labels=conditional`",
}


def validation_errors(job: dict) -> list[tuple[int, float]]:
    """(epoch, val/error in %) of a job, from its CSV log."""
    with (SWEEPS[0].folder / job["job"] / "csv" / "metrics.csv").open() as rows:
        return [(int(row["epoch"]) + 1, float(row["val/error"])) for row in csv.DictReader(rows) if row.get("val/error")]


def curve(m2: list[dict]) -> str:
    """M2's validation error per epoch, one line per seed, to docs/figures/m2_curve.png; returns the last epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    last = []
    for job in m2:
        points = validation_errors(job)
        ax.plot(*zip(*points), label=f"seed {job['overrides']['seed']}")
        last.append(", ".join(f"{error:.1f}" for _, error in points[-5:]))
    ax.axhline(11.97, color="grey", linestyle="--", label="Kingma et al. 2014: 11.97% (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation error (%)")
    ax.set_ylim(0, 60)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "figures" / "m2_curve.png")
    plt.close(fig)
    return "; ".join(f"seed {job['overrides']['seed']}: {text}" for job, text in zip(m2, last))


def table() -> str:
    (m2,) = configurations(SWEEPS[0]).values()
    error = over_seeds(m2, "test/error")
    conditional = [*configurations(SWEEPS[1]).items(), *configurations(SWEEPS[2]).items()]
    rows = []
    for label, jobs in conditional:
        nll = over_seeds(jobs, "test/nll_iw")
        rows.append(f"| {NAMES[label]} | {len(jobs)} | {mean_sd(nll)} | {interval(nll)} "
                    f"| {mean_sd(over_seeds(jobs, 'test/loss'))} | {mean_sd(over_seeds(jobs, 'test/frechet_distance'), 1)} "
                    f"| {job_times(jobs)} |")
    (_, plain), (_, labelled) = conditional
    bayes = over_seeds(labelled, "test/error")
    when = f"measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores, no GPU, jobs side by side"
    return "\n".join([
        f"**M2 with 100 labels** (10 per class, `data.labelled_seed=0`), full MNIST (official 54,000 train / 6,000 "
        f"val / 10,000 test), dynamic binarisation, {M2_EPOCHS} epochs, seeds 1-3; {when} (three jobs, one thread "
        "each, beside other sweeps). Kingma et al. (2014), Table 1: 11.97% (± 1.71).",
        "",
        "| model | seeds | test/error (%) | 95% interval of the mean | test/nll_iw (nats, k = 10 per class) "
        "| fit time per job (whole job) |",
        "|---|---|---|---|---|---|",
        f"| {NAMES['experiment=kingma2014_m2']} | {len(m2)} | {mean_sd(error)} | {interval(error)} "
        f"| {mean_sd(over_seeds(m2, 'test/nll_iw'))} | {job_times(m2)} |",
        "",
        "Per seed, test/error (%): " + ", ".join(
            f"seed {job['overrides']['seed']}: {job['metrics']['test/error']:.2f}" for job in m2),
        "",
        f"Validation error (%) of the last five epochs: {curve(m2)}.",
        "",
        "![M2's validation error per epoch](../docs/figures/m2_curve.png)",
        "",
        "**The class-conditional VAE against the same model without labels**, 10 epochs, seeds 1 and 2, k = 100 "
        f"(for the conditional VAE per class: the marginal over p(y) = 1/10, the same scale); {when} (two jobs, one "
        "thread each). test/loss is −ELBO: of log p(x) without labels, of log p(x|y) with them.",
        "",
        "| model | seeds | test/nll_iw (−log p(x), nats) | 95% interval of the mean | test/loss (−ELBO) "
        "| Fréchet distance | fit time per job (whole job) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- test/nll_iw, the conditional VAE against no labels: {paired(labelled, plain, 'test/nll_iw')}",
        f"- the conditional VAE as a classifier by Bayes' rule (p(y|x) ∝ p(x|y)): test/error {mean_sd(bayes)}%",
    ])


def main() -> None:
    run_and_publish(SWEEPS, table, "labels.md")


if __name__ == "__main__":
    main()
