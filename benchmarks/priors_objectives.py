"""The README's VAE-vs-IWAE and prior comparison on full MNIST (dynamic binarisation), next to Burda et al. (2016).

    .venv/bin/python benchmarks/priors_objectives.py [--epochs 10] [--k 5000] [--only 2 3]

Trains each setting with ``python -m vae_lightning.train logger=local eval.k=K``: the after-training test pass
evaluates the best checkpoint with K importance samples. Runs go to ``outputs/results/``; each row is kept in
``outputs/results/priors_objectives/<row>.json`` (so rows can be run separately) and the table of all kept rows is
printed and written to ``benchmarks/priors_objectives.md``. Fit time: from the start of the command to the last
checkpoint; total: the whole command (fit, the K-sample test pass, pictures, Frechet distance).
"""

import argparse
import json
import platform
import time

from mnist_results import LOG_DIR, publish, run

BURDA = ["experiment=burda2016_vae"]
SETTINGS = {
    "784-200-200-50 tanh (burda2016_vae), `elbo`": BURDA,
    "784-200-200-50 tanh (burda2016_vae), `iwae` k = 5": [*BURDA, "model/objective=iwae", "model.objective.k=5"],
    "784-200-200-50 tanh (burda2016_vae), `iwae` k = 50": [*BURDA, "model/objective=iwae", "model.objective.k=50"],
    "784-400-20 relu (default), `standard_normal` prior": [],
    "784-400-20 relu (default), `vamp` prior (500 pseudo-inputs)": ["model/prior=vamp"],
}
ROWS_DIR = LOG_DIR / "priors_objectives"


def train_row(overrides: list[str], epochs: int, k: int) -> dict:
    start = time.time()
    run_dir, seconds = run(
        "vae_lightning.train", "logger=local", f"paths.log_dir={LOG_DIR}", f"trainer.max_epochs={epochs}",
        *overrides, f"eval.k={k}",
    )
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["data"]["official_mnist"], "not the official MNIST"
    fit_seconds = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime - start
    return {"run_dir": str(run_dir), "epochs": epochs, "k": k, "metrics": saved["metrics"],
            "latent_dim": len(saved["test_details"]["mu_variance_per_dim"]),
            "fit_seconds": fit_seconds, "total_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--only", nargs="*", type=int, help="row numbers to run (1-based), all by default")
    args = parser.parse_args()
    ROWS_DIR.mkdir(parents=True, exist_ok=True)
    for number, overrides in enumerate(SETTINGS.values(), start=1):
        if not args.only or number in args.only:
            row = train_row(overrides, args.epochs, args.k)
            (ROWS_DIR / f"{number}.json").write_text(json.dumps(row, indent=2))
            print(f"row {number}: {row['metrics']['test/nll_iw']:.2f} nats", flush=True)
    lines = []
    for number, name in enumerate(SETTINGS, start=1):
        path = ROWS_DIR / f"{number}.json"
        if path.exists():
            row = json.loads(path.read_text())
            m = row["metrics"]
            lines.append(
                f"| {name} | {row['epochs']} | {m['val/loss']:.2f} | {m['test/nll_iw']:.2f} (k = {row['k']:,}) "
                f"| {m['test/active_units']:.0f} / {row['latent_dim']} "
                f"| {row['fit_seconds'] / 60:.1f} min ({row['total_seconds'] / 60:.1f} min) |"
            )
    table = "\n".join(
        [
            "Full MNIST (official 54,000 train / 6,000 val / 10,000 test), dynamic binarisation, test NLL with "
            f"k importance samples per test image; measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
            "2 cores, no GPU.",
            "",
            "| model, objective / prior | epochs | val/loss (−ELBO, nats) | test/nll_iw (nats, k samples) | active units "
            "| fit time (whole command) |",
            "|---|---|---|---|---|---|",
            *lines,
        ]
    )
    publish("priors_objectives.md", table)


if __name__ == "__main__":
    main()
