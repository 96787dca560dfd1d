"""The README's full-MNIST results table: the default run (784-400-20 MLP, 30 epochs) per likelihood setting.

    .venv/bin/python benchmarks/mnist_results.py [--epochs 30] [--k 1000] [--k-bernoulli 5000]

Each setting is trained with ``python -m vae_lightning.train`` (``logger=local``, the default config otherwise),
then its best checkpoint is evaluated with ``python -m vae_lightning.evaluate eval.k=K``; the Bernoulli row is
evaluated with k = 1000 and k = 5000 too. Runs go to ``outputs/results/``; the table is printed and written to
``benchmarks/mnist_results.md``. Wall time: the training command (fit, the k = 100 test pass and pictures).
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "outputs" / "results"
SETTINGS = {
    "Bernoulli, dynamic binarisation": ["likelihood=bernoulli"],
    "Gaussian, fixed σ = 0.1 (MSE), dequantised": ["likelihood=gaussian", "likelihood.sigma_mode=fixed"],
    "Gaussian, learned σ, dequantised": ["likelihood=gaussian", "likelihood.sigma_mode=learned"],
    "Gaussian, per-pixel σ, dequantised": ["likelihood=gaussian", "likelihood.sigma_mode=per_pixel"],
}


def run(module: str, *args: str) -> tuple[Path, float]:
    """Run an entry point; returns the output folder it reported and the wall time."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    marker = "Run folder: " if module.endswith("train") else "Written to "
    line = next(line for line in result.stdout.splitlines() if line.startswith(marker))
    return Path(line[len(marker):].split(" (")[0].strip()), seconds


def publish(name: str, table: str) -> None:
    """Print a results table and write it to benchmarks/NAME."""
    (ROOT / "benchmarks" / name).write_text(table + "\n")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--k-bernoulli", type=int, default=5000)
    args = parser.parse_args()
    rows = []
    for name, overrides in SETTINGS.items():
        run_dir, seconds = run(
            "vae_lightning.train", "logger=local", f"paths.log_dir={LOG_DIR}", f"trainer.max_epochs={args.epochs}",
            *overrides,
        )
        trained = json.loads((run_dir / "metrics.json").read_text())
        assert trained["data"]["official_mnist"], "not the official MNIST"
        ks = [args.k] + ([args.k_bernoulli] if "Bernoulli" in name else [])
        evaluations = {}
        for k in ks:
            eval_dir, eval_seconds = run("vae_lightning.evaluate", f"ckpt_path={trained['best_checkpoint']}", f"eval.k={k}")
            evaluations[k] = (json.loads((eval_dir / "metrics.json").read_text())["metrics"], eval_seconds)
        metrics = evaluations[args.k][0]
        nll = " / ".join(f"{evaluations[k][0]['test/nll_iw']:.2f}" for k in ks)
        rows.append(
            f"| {name} | {trained['metrics']['val/loss']:.2f} | {nll} "
            f"| {format(metrics['test/nll_8bit'], '.1f') if 'test/nll_8bit' in metrics else '— (binarised)'} "
            f"| {metrics['test/bits_per_dim']:.3f} | {metrics['test/active_units']:.0f} / 20 "
            f"| {metrics['test/frechet_distance']:.1f} | {seconds:.0f} s (+{evaluations[args.k][1]:.0f} s for k = {args.k}) |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"Full MNIST (official 54,000 train / 6,000 val / 10,000 test), {args.epochs} epochs, 784-400-20 MLP, "
            f"batch 128, Adam 1e-3, seed 12345; {platform.processor() or platform.machine()}, 2 cores, no GPU.",
            "",
            f"| likelihood | val/loss (−ELBO, nats) | test/nll_iw, k = {args.k} (/ {args.k_bernoulli}) | test/nll_8bit "
            "| test/bits_per_dim | active units | Fréchet distance | wall time |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    publish("mnist_results.md", table)


if __name__ == "__main__":
    main()
