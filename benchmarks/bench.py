"""`make bench`: speed and memory of the project against what a user would otherwise run, on full MNIST.

    make bench            # or: .venv/bin/python benchmarks/bench.py [--reps 3]

Same model everywhere: 784-400-20 MLP VAE, Bernoulli pixels with dynamic binarisation, Adam 1e-3, batch 128;
the plain loop uses the project's optimizer (fused Adam, ``conf/model/vae.yaml``), so its ratio is the framework's
overhead, and once more with torch's default Adam, the optimizer a hand-written loop usually has.
Every measurement runs in its own process; methods are interleaved over ``--reps`` repetitions and the median
is reported. Rows:

* training time per image: ``python -m vae_lightning.train`` (its own epochs, validation excluded, timed by a
  callback) against a plain PyTorch loop over the same in-memory tensors and the usual torchvision
  ``MNIST`` + ``ToTensor`` + ``DataLoader(shuffle=True)`` pipeline;
* the whole process: ``python -m vae_lightning.train trainer.max_epochs=3 test=false logger=local`` against the
  conventional single-file script ``benchmarks/plain_vae.py`` (3 epochs and a test pass);
* start-up: from launching the command to the first training step (``logger=local`` and with W&B offline),
  against ``python -c "import torch, torchvision"``;
* Lightning's own loop: a model with next to no compute (one 784 -> 1 linear layer) trained by a bare
  ``Trainer`` (no callbacks, loggers or progress bar) against the same steps in a hand-written loop: the least
  Lightning adds to every step, whatever the project does around it;
* answers: ``--help``, ``--cfg job`` and bad command lines, launch to exit;
* importance-weighted evaluation: ``models/marginal_likelihood.importance_weighted_nll`` against a plain torch loop doing the same
  decoder passes, time and peak RSS, for k = 100 (5,000 test images), 1,000 (500) and 5,000 (100): half a
  million decoder passes each, so the three fit in the time budget while k spans the range.
"""

import argparse
import json
import math
import os
import platform
import resource
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
BATCH = 128
EPOCHS = 3
EVAL_SETTINGS = {100: 5000, 1000: 500, 5000: 100}  # k -> test images: 500,000 decoder passes each
BAD_COMMANDS = {
    "--help": ["--help"],
    "--cfg job": ["--cfg", "job"],
    "model.latent_dim=0": ["model.latent_dim=0"],
    "likelihood=poisson": ["likelihood=poisson"],
    "model.latnt_dim=3 (typo)": ["model.latnt_dim=3"],
    "model/objective=iwae model.objective.k=0": ["model/objective=iwae", "model.objective.k=0"],
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mnist(split: str = "train") -> torch.Tensor:
    """The official MNIST images of a split, uint8 (N, 1, 28, 28)."""
    from vae_lightning.data.sources import load_digits

    digits = load_digits("mnist", DATA_DIR, source="auto", download=False)  # raw/ or the wheel's folder
    assert digits.official, f"the benchmarks need the official MNIST in {DATA_DIR} (make train fetches it)"
    return (digits.train_images if split == "train" else digits.test_images).unsqueeze(1)


def torchvision_root() -> Path:
    """A folder torchvision's ``MNIST`` reads (``ROOT/MNIST/raw``): ``DATA_DIR`` when its raw/ is complete, else a
    temporary one whose raw/ links to the files the project rebuilt from the wheel."""
    from vae_lightning.data.sources import SPLIT_FILES, idx_folder, wheel_folder

    names = [name for pair in SPLIT_FILES.values() for name in pair]
    if all((idx_folder(DATA_DIR, "mnist") / name).is_file() for name in names):
        return DATA_DIR
    root = Path(tempfile.gettempdir()) / "vae_lightning_bench_torchvision"
    raw = idx_folder(root, "mnist")
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (raw / name).exists():
            (raw / name).symlink_to(wheel_folder(DATA_DIR) / name)
    return root


def build_parts():
    from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
    from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder

    torch.manual_seed(0)
    return MLPEncoder((1, 28, 28), 20, [400]), MLPDecoder((1, 28, 28), 20, 1, [400]), BernoulliLikelihood()


def vae_step(encoder, decoder, likelihood, optimizer, x: torch.Tensor) -> None:
    from vae_lightning.models.gaussians import clamp_logvar, kl_to_standard_normal, reparameterise

    mu, logvar = encoder(x)
    logvar = clamp_logvar(logvar)
    recon = -likelihood.log_prob(decoder(reparameterise(mu, logvar)), x)
    loss = (recon + kl_to_standard_normal(mu, logvar).sum(-1)).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def train_plain(epochs: int, fused: bool = True) -> dict:
    """The floor: the same tensors in memory, a permutation, indexing, nothing else."""
    images = mnist()
    encoder, decoder, likelihood = build_parts()
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3, fused=fused)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for index in torch.randperm(len(images)).split(BATCH):
            vae_step(encoder, decoder, likelihood, optimizer, torch.bernoulli(images[index].float() / 255))
        times.append(time.perf_counter() - start)
    return {"epochs": times, "images": len(images)}


def train_torchvision(epochs: int) -> dict:
    """The conventional data path: torchvision's MNIST, ToTensor, DataLoader(shuffle=True)."""
    import torchvision
    from torch.utils.data import DataLoader

    dataset = torchvision.datasets.MNIST(str(torchvision_root()), train=True, transform=torchvision.transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)
    encoder, decoder, likelihood = build_parts()
    # the project's optimizer: this row compares data paths
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3, fused=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, _ in loader:
            vae_step(encoder, decoder, likelihood, optimizer, torch.bernoulli(x))
        times.append(time.perf_counter() - start)
    return {"epochs": times, "images": len(dataset)}


def evaluate(k: int, n_images: int, plain: bool) -> dict:
    """-log p(x) with k importance samples over the first n test images (random weights: cost, not quality)."""
    from vae_lightning.models.likelihoods.bernoulli import BernoulliLikelihood
    from vae_lightning.models.marginal_likelihood import importance_weighted_nll
    from vae_lightning.models.networks.mlp import MLPDecoder, MLPEncoder
    from vae_lightning.models.vae import VAE

    test = (mnist("test")[:n_images] > 127).float()
    torch.manual_seed(0)
    model = VAE(MLPEncoder, MLPDecoder, BernoulliLikelihood(), latent_dim=20).eval()
    start = time.perf_counter()
    with torch.no_grad():
        if plain:  # the textbook loop: all k samples of a batch at once when they fit, else 4,096 rows at a time
            results = []
            for x in test.split(1000):
                mu, logvar = model.encoder(x)
                chunk = max(1, 4096 // len(x))
                weights = []
                for start_k in range(0, k, chunk):
                    eps = torch.randn(min(chunk, k - start_k), *mu.shape)
                    z = mu + torch.exp(0.5 * logvar) * eps
                    log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
                        model.decoder(z), x.expand(len(z), *x.shape), reduction="none").flatten(2).sum(-1)
                    log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
                    log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
                    weights.append(log_px + log_pz - log_qz)
                results.append(-(torch.logsumexp(torch.cat(weights), 0) - math.log(k)))
            nll = torch.cat(results)
        else:
            nll = torch.cat([importance_weighted_nll(model, x, k) for x in test.split(1000)])
    assert torch.isfinite(nll).all()
    return {"seconds": time.perf_counter() - start, "images": n_images}


FLOOR_STEPS = 1000


def loop_floor(lightning: bool) -> dict:
    """Seconds per step of a model with next to no compute, batches from the project's in-memory loader:
    Lightning's bare ``Trainer`` (timed by the project row's clock) against a hand-written loop (second epoch of two)."""
    import lightning as L
    from bench_clock import TrainingClock

    from vae_lightning.data.batching import tensor_loader

    images = torch.zeros(FLOOR_STEPS * BATCH, 784, dtype=torch.uint8)  # indexed like the project's pixels
    labels = torch.zeros(len(images), dtype=torch.long)

    class Floor(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(784, 1)

        def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
            return self.linear(batch[0].float()).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=1e-3)

        def train_dataloader(self):
            return tensor_loader(images, labels, BATCH, shuffle=True)

    model = Floor()
    if lightning:
        clock = TrainingClock(path=os.devnull)
        trainer = L.Trainer(
            max_epochs=2, accelerator="cpu", logger=False, callbacks=[clock], enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        )
        trainer.fit(model)
        seconds = clock.epochs[-1]
    else:
        optimizer = model.configure_optimizers()
        for _ in range(2):
            started = time.perf_counter()
            for batch_idx, batch in enumerate(model.train_dataloader()):
                loss = model.training_step(batch, batch_idx)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            seconds = time.perf_counter() - started
    return {"step_seconds": seconds / FLOOR_STEPS}


def child(method: str) -> None:
    """One in-process measurement; prints a JSON line."""
    if method.startswith("eval"):
        _, which, k = method.split(":")
        result = evaluate(int(k), EVAL_SETTINGS[int(k)], plain=which == "plain")
    elif method.startswith("floor"):
        result = loop_floor(lightning=method == "floor:lightning")
    else:
        trainers = {"plain": train_plain, "plain_unfused": lambda epochs: train_plain(epochs, fused=False),
                    "torchvision": train_torchvision}
        result = trainers[method](2)
    print("RESULT " + json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))


def measure_child(method: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", method], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def launch(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Launch a command; wall seconds from launch to exit."""
    start = time.time()
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return time.time() - start, out


def project_run(work: Path, *overrides: str) -> dict:
    """python -m vae_lightning.train with the bench clock: start-up, training seconds per epoch, whole process."""
    clock = work / f"clock_{time.time_ns()}.json"
    start = time.time()
    seconds, out = launch(
        [sys.executable, "-m", "vae_lightning.train", *overrides, "+callbacks.bench_clock._target_=bench_clock.TrainingClock",
         f"+callbacks.bench_clock.path={clock}"],
        cwd=work, env={"PYTHONPATH": str(BENCHMARKS), "VAE_LIGHTNING_DATA_DIR": str(DATA_DIR)},
    )
    if out.returncode:
        raise SystemExit(f"vae_lightning.train {' '.join(overrides)} failed:\n{out.stderr[-3000:]}")
    recorded = json.loads(clock.read_text())
    return {"startup": recorded["first_step"] - start, "epochs": recorded["epochs"], "process": seconds}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


def time_answers(answers: dict[str, list[float]], cwd: Path) -> None:
    """One launch-to-exit time of ``python -m vae_lightning.train`` for each of BAD_COMMANDS, added to ``answers``."""
    for name, command in BAD_COMMANDS.items():
        answers[name].append(launch([sys.executable, "-m", "vae_lightning.train", *command], cwd=cwd)[0])


def answer_table(reps: int) -> None:
    """The answers alone, median of ``reps``, as a Markdown table."""
    answers: dict[str, list[float]] = {name: [] for name in BAD_COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            time_answers(answers, Path(tmp))
    print(f"| command (median of {reps}, launch to exit) | seconds |\n|---|---|")
    for name, seconds in answers.items():
        print(f"| `python -m vae_lightning.train {name}` | {median(seconds):.2f} |")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--answers", action="store_true", help="only time --help, --cfg job and the bad command lines")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.answers:
        answer_table(args.reps)
        return

    from vae_lightning.data.sources import load_digits

    official = load_digits("mnist", DATA_DIR).official  # fetched once if missing (see the README's data section)
    began = time.time()
    names = ("project", "wandb", "plain", "plain_unfused", "torchvision", "script", "import", "floor:lightning",
             "floor:loop")
    runs: dict[str, list] = {name: [] for name in names}
    answers: dict[str, list[float]] = {name: [] for name in BAD_COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rep in range(args.reps):  # interleaved, so drifts in machine load hit every method alike
            runs["project"].append(project_run(work, f"trainer.max_epochs={EPOCHS}", "test=false", "logger=local"))
            runs["plain"].append(measure_child("plain"))
            runs["plain_unfused"].append(measure_child("plain_unfused"))
            runs["torchvision"].append(measure_child("torchvision"))
            runs["script"].append(launch([sys.executable, str(BENCHMARKS / "plain_vae.py"), "--epochs", str(EPOCHS),
                                          "--data-dir", str(torchvision_root())], cwd=work)[0])
            runs["wandb"].append(project_run(work, "trainer.max_epochs=1", "+trainer.limit_train_batches=5",
                                             "+trainer.limit_val_batches=1", "test=false", "logger=default"))
            runs["import"].append(launch([sys.executable, "-c", "import torch, torchvision"], cwd=work)[0])
            for floor in ("floor:lightning", "floor:loop"):
                runs[floor].append(measure_child(floor))
            time_answers(answers, work)
            print(f"rep {rep + 1}/{args.reps} done ({time.time() - began:.0f} s)", flush=True)
    evals: dict[tuple[int, str], list[dict]] = {(k, which): [] for k in EVAL_SETTINGS for which in ("project", "plain")}
    for _ in range(args.reps):  # interleaved as well: single evaluation runs differed by up to 1.7x
        for k, which in evals:
            evals[(k, which)].append(measure_child(f"eval:{which}:{k}"))
    evals_median = {
        key: {field: median([run[field] for run in measured]) for field in ("seconds", "peak_rss_mb")}
        for key, measured in evals.items()
    }

    n_project = 54_000
    per_image = {"project": median([median(r["epochs"][1:]) for r in runs["project"]]) / n_project}
    for loop in ("plain", "plain_unfused", "torchvision"):  # last epoch of each run, over that loop's own images
        per_image[loop] = median([r["epochs"][-1] for r in runs[loop]]) / runs[loop][0]["images"]
    imports = median(runs["import"])
    startup_local = median([r["startup"] for r in runs["project"]])
    startup_wandb = median([r["startup"] for r in runs["wandb"]])
    process, script = median([r["process"] for r in runs["project"]]), median(runs["script"])
    floor = per_image["plain"]
    lightning_step, loop_step = (median([r["step_seconds"] for r in runs[name]]) for name in ("floor:lightning", "floor:loop"))
    plain_step = floor * BATCH
    lines = [
        f"Data: the official MNIST ({'MD5 checked' if official else 'NOT the official files'}); model 784-400-20 MLP, "
        f"Bernoulli, Adam 1e-3, batch {BATCH}.",
        f"Machine: {machine()}. Median of {args.reps} interleaved repetitions; `make bench` took "
        f"{(time.time() - began) / 60:.1f} min.",
        "",
        "| what | project | reference | ratio | goal |",
        "|---|---|---|---|---|",
        f"| training time per image (validation excluded) vs a plain loop over the same tensors "
        f"| {per_image['project'] * 1e6:.1f} µs | {floor * 1e6:.1f} µs | {per_image['project'] / floor:.2f}x | <= 1.10x |",
        f"| training time per image vs the same plain loop with torch's default (unfused) Adam "
        f"| {per_image['project'] * 1e6:.1f} µs | {per_image['plain_unfused'] * 1e6:.1f} µs "
        f"| {per_image['project'] / per_image['plain_unfused']:.2f}x | report |",
        f"| training time per image vs torchvision MNIST + ToTensor + DataLoader "
        f"| {per_image['project'] * 1e6:.1f} µs | {per_image['torchvision'] * 1e6:.1f} µs "
        f"| {per_image['torchvision'] / per_image['project']:.2f}x faster | report |",
        f"| Lightning's own loop per step (a model with next to no compute, bare `Trainer`) vs a hand-written loop "
        f"| {lightning_step * 1e6:.0f} µs | {loop_step * 1e6:.0f} µs | +{(lightning_step - loop_step) * 1e6:.0f} µs a "
        f"step = {(lightning_step - loop_step) / plain_step:.0%} of the plain loop's {BATCH}-image step "
        f"({plain_step * 1e3:.1f} ms) | report |",
        f"| whole process, {EPOCHS} epochs (`test=false logger=local`) vs `benchmarks/plain_vae.py` ({EPOCHS} epochs + "
        f"test pass) | {process:.1f} s | {script:.1f} s | {process / script:.2f}x | <= 0.9x |",
        f"| launch to first training step, `logger=local`, vs `import torch, torchvision` | {startup_local:.1f} s "
        f"| {imports:.1f} s | +{startup_local - imports:.1f} s | <= +2 s |",
        f"| launch to first training step, W&B offline | {startup_wandb:.1f} s | {imports:.1f} s "
        f"| +{startup_wandb - imports:.1f} s | <= +3 s |",
    ]
    for name, seconds in answers.items():
        lines.append(f"| `python -m vae_lightning.train {name}`, launch to answer | {median(seconds):.2f} s | | | <= 1.5 s |")
    for k, n_images in EVAL_SETTINGS.items():
        ours, plain = evals_median[(k, "project")], evals_median[(k, "plain")]
        lines.append(
            f"| importance-weighted NLL, k = {k:,}, {n_images:,} test images: time (peak RSS) | {ours['seconds']:.1f} s "
            f"({ours['peak_rss_mb']:,.0f} MB) | {plain['seconds']:.1f} s ({plain['peak_rss_mb']:,.0f} MB) "
            f"| {ours['seconds'] / plain['seconds']:.2f}x | <= 1.1x, <= 1,200 MB |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
