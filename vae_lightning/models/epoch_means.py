"""Per-example evaluation values averaged exactly over a validation or test pass, on any number of DDP ranks."""

import torch
from torch import nn
from torchmetrics import MeanMetric


class EpochMeans(nn.Module):
    """``update("val/kl", values)`` with per-example values during a pass; ``pop("val")`` then gives the pass's
    means and starts the next pass afresh. Each mean is a ``MeanMetric`` (its sum and count are reduced across
    ranks), made on first use on the values' device."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics = nn.ModuleDict()  # keys: metric names with "/" as "__" (a module name cannot hold "/")

    def update(self, name: str, values: torch.Tensor) -> None:
        key = name.replace("/", "__")
        if key not in self.metrics:
            self.metrics[key] = MeanMetric().to(values.device)
        self.metrics[key].update(values)

    def pop(self, stage: str) -> dict[str, torch.Tensor]:
        """The means of every ``{stage}/...`` value updated since the last pop, reduced across ranks."""
        means = {}
        for key, metric in self.metrics.items():
            name = key.replace("__", "/")
            if name.startswith(f"{stage}/") and metric.update_count:
                means[name] = metric.compute()
                metric.reset()
        return means
