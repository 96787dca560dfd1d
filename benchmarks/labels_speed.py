"""What the labels cost a training step: the conditional VAE's label input, and M2's decoding of every class for
each unlabelled image (plus its labelled images and classifier).

    .venv/bin/python benchmarks/labels_speed.py [--reps 3] [--threads 1]

Each row: ``python -m vae_lightning.train`` on full MNIST with ``logger=local``, 2 epochs of ``STEPS`` steps, the
second epoch timed by ``bench_clock.TrainingClock`` (start-up and validation excluded), median over ``--reps``
interleaved repetitions, each in its own process. Per image: per image of the training split a step takes
(``data.batch_size``); M2's step also carries ``data.labelled`` = 100 labelled images.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from step_overhead import ROOT, environment

STEPS = 100
#: experiment=kingma2014_m2's networks and batch without its labels
NO_LABELS_M2_NETWORK = ["model.latent_dim=50", "data.batch_size=100", "model.optimizer.lr=3e-4",
                        *(f"model.{net}.{key}" for net in ("encoder", "decoder")
                          for key in ("hidden_dims=[500]", "activation=softplus", "init=normal_0.001"))]
ROWS = {
    "default (784-400-20, batch 128), no labels": [],
    "default, `model/labels=conditional`": ["model/labels=conditional"],
    "M2's networks (784-500-50 softplus, batch 100), no labels": NO_LABELS_M2_NETWORK,
    "M2's networks, `model/labels=conditional`": [*NO_LABELS_M2_NETWORK, "model/labels=conditional"],
    "M2 (`experiment=kingma2014_m2`: + 100 labelled images a step, 10 classes per unlabelled image)":
        ["experiment=kingma2014_m2"],
}


def step_seconds(overrides: list[str], threads: int, work: Path) -> float:
    import json
    import subprocess
    import sys

    clock = work / f"clock_{time.time_ns()}.json"
    command = [sys.executable, "-m", "vae_lightning.train", *overrides, "trainer.max_epochs=2",
               f"+trainer.limit_train_batches={STEPS}", "+trainer.limit_val_batches=1", "test=false",
               "logger=local", f"threads={threads}", f"paths.log_dir={work}",
               "+callbacks.bench_clock._target_=bench_clock.TrainingClock", f"+callbacks.bench_clock.path={clock}"]
    out = subprocess.run(command, cwd=ROOT, env=environment(threads), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{overrides} failed:\n{out.stderr[-3000:]}")
    return json.loads(clock.read_text())["epochs"][-1] / STEPS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in ROWS}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.reps):
            for name, overrides in ROWS.items():
                seconds[name].append(step_seconds(overrides, args.threads, Path(work)))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    batch = {name: 100 if "M2" in name else 128 for name in ROWS}
    base = {name: median[next(iter(ROWS))] if name.startswith("default") else median[list(ROWS)[2]] for name in ROWS}
    print(f"Training step on full MNIST, {args.threads} torch thread(s), CPU, median of {args.reps} "
          f"({time.strftime('%Y-%m-%d')}, nothing else running)\n")
    print("| model | ms a step | µs per training image | against the same networks without labels |\n|---|---:|---:|---:|")
    for name in ROWS:
        print(f"| {name} | {median[name] * 1e3:.1f} | {median[name] / batch[name] * 1e6:.0f} "
              f"| {median[name] / base[name]:.2f}x |")


if __name__ == "__main__":
    main()
