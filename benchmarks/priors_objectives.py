"""The README's VAE-vs-IWAE and prior comparison on full MNIST (dynamic binarisation), next to Burda et al. (2016).

    .venv/bin/python benchmarks/priors_objectives.py [--epochs 10] [--k 5000]

Trains each setting with ``python -m vae_lightning.train logger=local`` for ``--epochs`` epochs, then evaluates
its best checkpoint with ``python -m vae_lightning.evaluate eval.k=K``. Runs go to ``outputs/results/``; the
table is printed and written to ``benchmarks/priors_objectives.md``. Wall time is the training command (fit, its
k = 100 test pass and pictures); the evaluation's time is given beside it.
"""

import argparse
import json
import platform
import time

from mnist_results import LOG_DIR, ROOT, run

BURDA = ["experiment=burda2016_vae"]
SETTINGS = {
    "784-200-200-50 tanh (burda2016_vae), `elbo`": BURDA,
    "784-200-200-50 tanh (burda2016_vae), `iwae` k = 5": [*BURDA, "model/objective=iwae", "model.objective.k=5"],
    "784-200-200-50 tanh (burda2016_vae), `iwae` k = 50": [*BURDA, "model/objective=iwae", "model.objective.k=50"],
    "784-400-20 relu (default), `standard_normal` prior": [],
    "784-400-20 relu (default), `vamp` prior (500 pseudo-inputs)": ["model/prior=vamp"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--only", nargs="*", help="row numbers to run (1-based), all by default")
    args = parser.parse_args()
    rows = []
    for number, (name, overrides) in enumerate(SETTINGS.items(), start=1):
        if args.only and str(number) not in args.only:
            continue
        run_dir, seconds = run(
            "vae_lightning.train", "logger=local", f"paths.log_dir={LOG_DIR}", f"trainer.max_epochs={args.epochs}",
            *overrides,
        )
        trained = json.loads((run_dir / "metrics.json").read_text())
        assert trained["data"]["official_mnist"], "not the official MNIST"
        eval_dir, eval_seconds = run("vae_lightning.evaluate", f"ckpt_path={trained['best_checkpoint']}", f"eval.k={args.k}")
        metrics = json.loads((eval_dir / "metrics.json").read_text())["metrics"]
        latent = len(trained["test_details"]["mu_variance_per_dim"])
        rows.append(
            f"| {name} | {trained['metrics']['val/loss']:.2f} | {metrics['test/nll_iw']:.2f} "
            f"| {metrics['test/active_units']:.0f} / {latent} | {seconds:.0f} s (+{eval_seconds:.0f} s) |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"Full MNIST (official 54,000 train / 6,000 val / 10,000 test), dynamic binarisation, {args.epochs} epochs "
            f"each; measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores, no GPU.",
            "",
            f"| model, objective / prior | val/loss (−ELBO, nats) | test/nll_iw, k = {args.k} (nats) | active units "
            "| wall time: train (+ evaluate) |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    (ROOT / "benchmarks" / "priors_objectives.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
