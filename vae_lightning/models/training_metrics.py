"""Metrics written straight to the run's loggers, at the optimizer step.

Lightning's ``self.log`` moves and reduces each value through its result collection on every call, which at
small batches costs more than the step itself (``benchmarks/README.md``), and its logger step counts calls of the
training step, which makes several optimizer steps. Training values are single numbers logged at the loggers'
cadence, so they become floats with one host sync; validation and test metrics are reduced across ranks by the
module and also go through ``self.log`` (``logger=False``) for the checkpoint callback and the progress bar.
"""

from typing import Any

import torch

TERMS = ("train/loss", "train/recon", "train/kl", "train/elbo")


def is_logging_step(trainer: Any, last_of_epoch: bool) -> bool:
    """The steps the loggers write (``trainer.log_every_n_steps``) and the last step of each epoch."""
    return last_of_epoch or (trainer.global_step + 1) % trainer.log_every_n_steps == 0


def training_terms(loss: torch.Tensor, recon: torch.Tensor, kl: torch.Tensor) -> dict[str, float]:
    """The objective's loss and the batch means of recon, kl and the ELBO as floats, with one host sync."""
    recon_mean, kl_mean = recon.detach().mean(), kl.detach().mean()
    values = torch.stack([loss.detach(), recon_mean, kl_mean, -(recon_mean + kl_mean)]).tolist()
    return dict(zip(TERMS, values))


def write_metrics(trainer: Any, metrics: dict[str, Any], step: int) -> None:
    """``metrics`` (numbers or one-element tensors) to every logger of ``trainer`` at ``step`` (optimizer steps)."""
    values = {name: float(value) for name, value in metrics.items()}
    for logger in trainer.loggers:
        logger.log_metrics({**values, "epoch": trainer.current_epoch}, step=step)
