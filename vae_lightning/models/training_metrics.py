"""Training metrics written straight to the run's loggers, on logging steps only.

Lightning's ``self.log`` moves and reduces each value through its result collection on every call, which at
small batches costs more than the step itself (``benchmarks/README.md``). Training values are single numbers
logged at the loggers' cadence, so they become floats with one host sync and go to each logger with the step and
epoch Lightning would have used; validation and test metrics still go through ``self.log`` (reduced across ranks).
"""

from typing import Any

import torch

TERMS = ("train/loss", "train/recon", "train/kl", "train/elbo")


def is_logging_step(trainer: Any, batch_idx: int) -> bool:
    """The steps the loggers write (``trainer.log_every_n_steps``) and the last batch of each epoch."""
    last_batch = batch_idx + 1 >= trainer.num_training_batches
    return last_batch or (trainer.global_step + 1) % trainer.log_every_n_steps == 0


def training_terms(loss: torch.Tensor, recon: torch.Tensor, kl: torch.Tensor) -> dict[str, float]:
    """The objective's loss and the batch means of recon, kl and the ELBO as floats, with one host sync."""
    recon_mean, kl_mean = recon.detach().mean(), kl.detach().mean()
    values = torch.stack([loss.detach(), recon_mean, kl_mean, -(recon_mean + kl_mean)]).tolist()
    return dict(zip(TERMS, values))


def write_training_metrics(trainer: Any, metrics: dict[str, float], step: int) -> None:
    """``metrics`` (floats) to every logger of ``trainer`` at ``step`` (the optimizer steps before this batch)."""
    for logger in trainer.loggers:
        logger.log_metrics({**metrics, "epoch": trainer.current_epoch}, step=step)
