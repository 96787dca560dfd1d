"""What a GPU machine should check after `make install`, in one table (run by benchmarks/gpu_check.sh).

    .venv/bin/python benchmarks/gpu_check.py

Rows: the devices found; the tests that need CUDA (``trainer=gpu``); DDP with NCCL over two devices (when there are
two); the two per-step rows of ``benchmarks/step_overhead.py`` on that device; a 3-epoch training run of the
default model on full MNIST (``trainer=gpu``). Without CUDA each row that needs it says so and the rest run on the
CPU, which is how this script is tested here. Under 10 minutes on one GPU.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_SILENT": "true"}


def run(*command: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    return result, time.perf_counter() - started


def train(cwd: Path, *overrides: str) -> tuple[str, float]:
    """'ok' or the failure, and the training seconds, of one run in ``cwd``."""
    result, _ = run(sys.executable, "-m", "vae_lightning.train", "logger=local", *overrides, cwd=cwd)
    if result.returncode:
        return f"FAILED: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}", 0.0
    (folder,) = (cwd / "outputs" / "runs").iterdir()
    return "ok", json.loads((folder / "metrics.json").read_text())["seconds"]["fit"]


def main() -> None:
    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    device = "cuda" if cuda else "cpu"
    gpu = ["trainer=gpu"] if cuda else []
    rows = [("devices", ", ".join(torch.cuda.get_device_name(i) for i in range(count)) if cuda
             else f"no CUDA device: the CPU-only parts run (torch {torch.__version__})")]

    tests, seconds = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "tests/test_every_option.py::test_every_option_composes_and_trains[trainer=gpu]")
    summary = (tests.stdout.strip().splitlines() or ["no output"])[-1]
    rows.append(("tests that need CUDA (trainer=gpu)", f"{summary} ({seconds:.0f} s)"))
    if tests.returncode:
        rows[-1] = (rows[-1][0], "FAILED: " + rows[-1][1])

    with tempfile.TemporaryDirectory() as work:
        if count >= 2:
            status, fit = train(Path(work), "debug=fast", "trainer=gpu", "trainer.devices=2", "trainer.strategy=ddp")
            rows.append(("DDP, NCCL, 2 devices (debug=fast)", f"{status} ({fit:.0f} s training)"))
        else:
            rows.append(("DDP, NCCL, 2 devices", f"skipped: {count} CUDA device(s)"))

        steps, seconds = run(sys.executable, "benchmarks/step_overhead.py", "--reps", "1", "--threads", "1",
                             "--device", device)
        table = [line for line in steps.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
        for line in table:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.append((f"{cells[0]} ({device})", f"plain {cells[2]}, project {cells[3]}: {cells[4]} (goal {cells[5]})"))
        if steps.returncode or not table:
            rows.append(("per-step rows", f"FAILED: {steps.stderr.strip()[-300:]}"))

        run_dir = Path(work) / "three_epochs"
        run_dir.mkdir()
        status, fit = train(run_dir, *gpu, "trainer.max_epochs=3", "test=false")
        rows.append((f"3 epochs, default model, full MNIST ({device})", f"{status}: {fit:.1f} s training"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'check'.ljust(width)} | result |\n|{'-' * (width + 2)}|---|")
    for name, result in rows:
        print(f"| {name.ljust(width)} | {' '.join(result.split())} |")
    if any(result.startswith("FAILED") or ": FAILED" in result for _, result in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
