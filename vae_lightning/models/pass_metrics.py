"""What a validation or test pass measures, per example with fixed noise and reduced exactly across DDP ranks.

Both passes: ``{stage}/recon``, ``/kl`` and ``/loss`` (the negative ELBO, whatever the training objective),
each example with its own fixed noise draw, so the numbers depend neither on the batch size nor on the number of
processes. With two stochastic layers, each layer's KL too (``{stage}/kl_1``, ``/kl_2``). The test pass adds
``test/nll_iw`` (k importance samples), the latent statistics (active units, per layer with two layers; KL
per dimension) and what the likelihood makes of the NLL (``test/bits_per_dim``, ``test/nll_8bit``).

A model with labels (``model/labels``): ``{stage}/recon``, ``/kl``, ``/loss`` at each image's true label (a bound on
-log p(x|y)); ``test/nll_iw`` the marginal -log p(x) (exact sum over the classes, importance sampling over z), on
the scale of the models without labels; ``test/error`` and ``test/error_<class>`` (percent) from the model's
class probabilities, and the confusion matrix in the test details; ``val/error`` each validation (for the conditional
VAE's Bayes rule from the one-sample ELBO of each class, not the k-sample estimate of the test pass).
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vae_lightning.models.epoch_means import EpochMeans
from vae_lightning.models.gaussians import PerExampleNoise
from vae_lightning.models.latent_statistics import LatentStatistics
from vae_lightning.models.marginal_likelihood import (
    elbo_given_each_class,
    importance_weighted_nll,
    log_px_given_each_class,
)


class PassMetrics(nn.Module):
    """``update(model, batch, stage)`` on every batch, then ``results(stage)`` (validation) or ``test_results``."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.means = EpochMeans()
        self.noise = {"val": PerExampleNoise(latent_dim, seed=1), "test": PerExampleNoise(latent_dim, seed=2)}
        self.latent_statistics = LatentStatistics()
        self.test_nll: list[tuple[torch.Tensor, torch.Tensor]] = []  # (index, nll_iw) of each test batch
        self.confusion: torch.Tensor | None = None  # (true class, predicted class) counts of a test pass
        #: after a test pass: test/nll_iw of every test example by its index (nats), the same on every rank
        self.nll_per_example: torch.Tensor | None = None

    def update(self, model: Any, batch: tuple[torch.Tensor, ...], stage: str) -> None:
        """One batch ``(x, y, index)`` of ``stage``; the model is the VAE (its forward gives the ELBO terms)."""
        x, y, index = batch
        out = model(x, eps=self.noise[stage](index).to(device=x.device, dtype=x.dtype), y=y)
        for name in ("recon", "kl", "kl_1", "kl_2"):
            if name in out:
                self.means.update(f"{stage}/{name}", out[name])
        self.means.update(f"{stage}/loss", out["recon"] + out["kl"])
        if stage == "val" and model.labels is not None:
            noise = self.noise["val"](index).to(device=x.device, dtype=x.dtype)
            predicted = model.labels.class_log_probs(model, x, lambda: elbo_given_each_class(model, x, noise)).argmax(-1)
            self.means.update("val/error", 100.0 * (predicted != y).to(x.dtype))
        if stage == "test":
            if model.labels is None:
                nll = importance_weighted_nll(model, x, model.iw_samples, model.iw_chunk_elements)
            else:
                nll = self._classify(model, x, y)
            self.means.update("test/nll_iw", nll)
            self.test_nll.append((index, nll))
            self.latent_statistics.update(out["mu"], out["kl_per_dim"])

    def _classify(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The marginal -log p(x) of a model with labels, counting its class predictions into the confusion."""
        log_px_y = log_px_given_each_class(model, x, model.iw_samples, model.iw_chunk_elements)
        predicted = model.labels.class_log_probs(model, x, lambda: log_px_y).argmax(-1)
        n_classes = model.labels.n_classes
        if self.confusion is None:
            self.confusion = torch.zeros(n_classes, n_classes, dtype=torch.float64, device=x.device)
        self.confusion += torch.bincount(y.long() * n_classes + predicted, minlength=n_classes**2).view(
            n_classes, n_classes).to(self.confusion)
        return -(torch.logsumexp(log_px_y, -1) - math.log(n_classes))

    def results(self, stage: str) -> dict[str, torch.Tensor]:
        return self.means.pop(stage)

    def test_results(self, model: Any, n_examples: int, reduce_sum: Callable[[torch.Tensor], torch.Tensor]
                     ) -> tuple[dict[str, Any], dict]:
        """(the test metrics, the per-dimension details) of a pass over ``n_examples``, the sums reduced across
        ranks by ``reduce_sum``; each example's nll_iw goes to ``nll_per_example``."""
        metrics: dict[str, Any] = self.means.pop("test")
        details, n_active = self.latent_statistics.summary(reduce_sum)
        self.latent_statistics = LatentStatistics()
        self.nll_per_example = self._gathered_nll(n_examples, reduce_sum)
        metrics.update({"test/active_units": n_active, "test/iw_samples": float(model.iw_samples)})
        if model.layered:  # per layer, as Burda et al. count them ("16+5")
            active = details["active_per_dim"]
            for layer, flags in (("1", active[: model.latent_dim]), ("2", active[model.latent_dim:])):
                metrics[f"test/active_units_{layer}"] = float(sum(flags))
        metrics.update(model.likelihood.data_scores(float(metrics["test/nll_iw"]), math.prod(model.image_shape)))
        if self.confusion is not None:
            confusion, self.confusion = reduce_sum(self.confusion), None
            metrics["test/error"] = 100 * (1 - confusion.trace() / confusion.sum()).item()
            for label, row in enumerate(confusion):
                metrics[f"test/error_{label}"] = 100 * (1 - row[label] / row.sum().clamp_min(1)).item()
            details["confusion"] = confusion.long().tolist()
        return metrics, details

    def _gathered_nll(self, size: int, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Each of the ``size`` test examples' nll_iw at its index, from every rank: sums and counts by index,
        reduced across ranks (a distributed sampler may give an example to two ranks; both computed it alike)."""
        index = torch.cat([index for index, _ in self.test_nll]).long()
        nll = torch.cat([nll for _, nll in self.test_nll]).double()
        self.test_nll = []
        sums = torch.zeros(size, dtype=torch.float64, device=nll.device).index_add_(0, index.to(nll.device), nll)
        counts = torch.zeros_like(sums).index_add_(0, index.to(nll.device), torch.ones_like(nll))
        return (reduce_sum(sums) / reduce_sum(counts)).float().cpu()
