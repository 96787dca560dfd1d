"""Per-step overhead of the project's training step against a hand-written loop, at small batches.

    .venv/bin/python benchmarks/step_overhead.py [--reps 3] [--threads 1 2] [--device cpu|cuda] [--profile]

Two rows, each on full MNIST at batch 20, 1 and 2 torch threads, the methods interleaved over ``--reps``
repetitions (median reported), every measurement in its own process:

* overhead only: a tiny network (784-8-2 MLP, Bernoulli, dynamic binarisation, analytic KL, fused Adam), where
  a step has next to no compute: ``python -m vae_lightning.train`` (default callbacks and ``logger=local``)
  against the same steps in a plain PyTorch loop over the same in-memory tensors; the row is project minus
  plain, in ms a step (goal <= 0.5 ms);
* ``experiment=burda2016_vae`` (784-200-200-50 tanh): the same comparison per image (goal <= 1.2x).

Both time the second of two training epochs of ``STEPS`` steps (validation and start-up excluded): the project
with ``bench_clock.TrainingClock``, the plain loop with ``time.perf_counter`` around its epoch.
``--profile`` prints, instead, a cProfile breakdown of the project's tiny-network steps (the second epoch, by
``bench_clock.StepProfiler``): every function that costs more than 50 µs a step (under the profiler, which
inflates Python-heavy code).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("VAE_LIGHTNING_DATA_DIR", ROOT / "data"))
BATCH = 20
STEPS = 1000
SETUPS = {
    # name -> (project overrides, plain loop network: hidden sizes, latent size, activation)
    "tiny": (["model.encoder.hidden_dims=[8]", "model.decoder.hidden_dims=[8]", "model.latent_dim=2"], ([8], 2, "relu")),
    "burda2016": (["experiment=burda2016_vae"], ([200, 200], 50, "tanh")),
}


def plain_loop(setup: str, device: str = "cpu") -> dict:
    """The floor: in-memory uint8 images, a permutation, indexing, dynamic binarisation, analytic KL, fused Adam."""
    from bench import vae_step

    from vae_lightning.data.sources import load_digits
    from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
    from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder

    hidden, latent, activation = SETUPS[setup][1]
    images = load_digits("mnist", DATA_DIR, source="auto", download=False).train_images.unsqueeze(1).to(device)
    torch.manual_seed(0)
    encoder = MLPEncoder((1, 28, 28), latent, hidden, activation=activation).to(device)
    decoder = MLPDecoder((1, 28, 28), latent, 1, hidden, activation=activation).to(device)
    likelihood = BernoulliLikelihood()
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3, fused=True)
    seconds = []
    for _ in range(2):
        order = torch.randperm(len(images), device=device)[: STEPS * BATCH].split(BATCH)
        synchronize(device)
        started = time.perf_counter()
        for index in order:
            vae_step(encoder, decoder, likelihood, optimizer, torch.bernoulli(images[index].float() / 255))
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return {"step_seconds": seconds[-1] / STEPS}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def project_overrides(setup: str, work: Path, clock: Path, device: str = "cpu") -> list[str]:
    return [*(["trainer=gpu"] if device == "cuda" else []),
        *SETUPS[setup][0], f"data.batch_size={BATCH}", "trainer.max_epochs=2", f"+trainer.limit_train_batches={STEPS}",
        "+trainer.limit_val_batches=1", "test=false", "logger=local", f"paths.log_dir={work}",
        "+callbacks.bench_clock._target_=bench_clock.TrainingClock", f"+callbacks.bench_clock.path={clock}",
    ]


def environment(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "WANDB_SILENT": "true",
            "PYTHONPATH": str(BENCHMARKS), "VAE_LIGHTNING_DATA_DIR": str(DATA_DIR)}


def measure(method: str, setup: str, threads: int, work: Path, device: str = "cpu") -> float:
    """Seconds per training step, in a fresh process."""
    if method == "plain":
        out = subprocess.run([sys.executable, __file__, "--child", setup, "--device", device], cwd=ROOT,
                             env=environment(threads),
                             capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not lines:
            raise SystemExit(f"plain {setup} failed:\n{out.stderr[-3000:]}")
        return json.loads(lines[-1].removeprefix("RESULT "))["step_seconds"]
    clock = work / f"clock_{time.time_ns()}.json"
    out = subprocess.run([sys.executable, "-m", "vae_lightning.train", *project_overrides(setup, work, clock, device)],
                         cwd=ROOT, env=environment(threads), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"project {setup} failed:\n{out.stderr[-3000:]}")
    return json.loads(clock.read_text())["epochs"][-1] / STEPS


def profile(work: Path) -> None:
    """cProfile the training steps of the project's tiny-network run (second epoch only); print every function
    that costs more than 50 µs a step."""
    import pstats

    stats_file = work / "step.prof"
    overrides = [*project_overrides("tiny", work, work / "clock.json"),
                 "+callbacks.step_profiler._target_=bench_clock.StepProfiler", f"+callbacks.step_profiler.path={stats_file}"]
    subprocess.run([sys.executable, "-m", "vae_lightning.train", *overrides], cwd=ROOT, env=environment(1), check=True,
                   capture_output=True)
    stats = pstats.Stats(str(stats_file))
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        if cumtime / STEPS > 50e-6:
            where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            rows.append((cumtime / STEPS * 1e6, tottime / STEPS * 1e6, calls / STEPS, f"{where}:{line}({name})"))
    print(f"{stats.total_tt / STEPS * 1e6:.0f} µs a step in all, under the profiler\n")
    print("| µs a step (cumulative) | µs a step (own) | calls a step | function |\n|---:|---:|---:|---|")
    for cumulative, own, calls, name in sorted(rows, reverse=True):
        print(f"| {cumulative:.0f} | {own:.0f} | {calls:.1f} | `{name}` |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(plain_loop(args.child, args.device)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.profile:
            profile(work)
            return
        results: dict[tuple[str, str, int], list[float]] = {}
        for rep in range(args.reps):
            for threads in args.threads:
                for setup in SETUPS:
                    for method in ("plain", "project"):
                        results.setdefault((setup, method, threads), []).append(
                            measure(method, setup, threads, work, args.device))
            print(f"rep {rep + 1}/{args.reps} done", flush=True)
    print(f"device: {args.device}")
    lines = ["| row | threads | plain loop | project | result | goal |", "|---|---:|---:|---:|---:|---|"]
    for threads in args.threads:
        plain, project = (statistics.median(results[("tiny", m, threads)]) * 1e3 for m in ("plain", "project"))
        lines.append(f"| tiny network, batch {BATCH}: overhead a step | {threads} | {plain:.2f} ms | {project:.2f} ms | "
                     f"+{project - plain:.2f} ms | <= 0.5 ms: {'met' if project - plain <= 0.5 else 'missed'} |")
    for threads in args.threads:
        plain, project = (statistics.median(results[("burda2016", m, threads)]) / BATCH * 1e6 for m in ("plain", "project"))
        lines.append(f"| experiment=burda2016_vae, batch {BATCH}: time an image | {threads} | {plain:.0f} µs | "
                     f"{project:.0f} µs | {project / plain:.2f}x | <= 1.2x: {'met' if project / plain <= 1.2 else 'missed'} |")
    spread = {key: f"{min(v) * 1e3:.2f}-{max(v) * 1e3:.2f}" for key, v in results.items()}
    print("\n".join(lines))
    print("\nms a step, min-max over repetitions: " + ", ".join(f"{s}/{m}/{t}: {r}" for (s, m, t), r in spread.items()))


if __name__ == "__main__":
    main()
