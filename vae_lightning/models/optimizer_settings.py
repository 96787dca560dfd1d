"""The optimizer a config describes; and a run resumed from a checkpoint trains with the optimizer settings
of its config, not the checkpoint's.

Lightning restores an optimizer's state with its saved ``param_groups``, hyperparameters included, so
``ckpt_path=last.ckpt model.optimizer.lr=0.01`` would otherwise record 0.01 in ``config.yaml`` and train at
the checkpoint's learning rate. The moment estimates and step counts are kept.
"""

from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer


def apply_configured_settings(optimizer: Optimizer, settings: dict[str, Any], schedulers: list[Any]) -> list[str]:
    """Set every hyperparameter in ``settings`` (the optimizer's config keywords) on each parameter group;
    returns 'lr: 0.001 -> 0.01' for each one that differed."""
    changed = []
    for key, value in settings.items():
        for index, group in enumerate(optimizer.param_groups):
            if key not in group or group[key] == (tuple(value) if isinstance(group[key], tuple) else value):
                continue
            changed.append(f"{key}: {group[key]} -> {value}")
            group[key] = tuple(value) if isinstance(group[key], tuple) else value
            if key == "lr":
                group["initial_lr"] = value
                for scheduler in schedulers:
                    if hasattr(scheduler, "base_lrs"):
                        scheduler.base_lrs[index] = value
    return sorted(set(changed))


def optimizers_for(parameters: Any, optimizer: Callable[..., Optimizer], scheduler: Callable[..., Any] | None) -> Any:
    """What ``configure_optimizers`` returns: the optimizer, with its scheduler (stepped per epoch) if any."""
    built = optimizer(params=parameters)
    if scheduler is None:
        return built
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler(optimizer=built), "interval": "epoch"}}


def reapply_configured_settings(trainer: Any, settings: dict[str, Any]) -> list[str]:
    """:func:`apply_configured_settings` for every optimizer of a trainer, with its schedulers."""
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    return sorted({change for optimizer in trainer.optimizers
                   for change in apply_configured_settings(optimizer, settings, schedulers)})
