"""torch's random state in a checkpoint: a run resumed mid-epoch draws the same noise as one never stopped."""

from typing import Any

import torch


def save_random_state(checkpoint: dict[str, Any]) -> None:
    checkpoint["torch_rng_state"] = torch.get_rng_state()
    if torch.cuda.is_available():
        checkpoint["cuda_rng_states"] = torch.cuda.get_rng_state_all()


def restore_random_state(checkpoint: dict[str, Any]) -> None:
    if "torch_rng_state" in checkpoint:
        torch.set_rng_state(checkpoint["torch_rng_state"])
    if "cuda_rng_states" in checkpoint and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["cuda_rng_states"])
