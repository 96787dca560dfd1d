#!/usr/bin/env bash
# On a fresh GPU machine after `make install`: the tests that need CUDA, DDP with NCCL on two devices (when there are
# two), the per-step rows and a 3-epoch run on the GPU, in one table (under 10 minutes on one GPU). Without CUDA it
# runs the CPU-only parts. See benchmarks/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python benchmarks/gpu_check.py "$@"
