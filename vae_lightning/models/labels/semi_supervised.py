"""Kingma, Rezende, Mohamed and Welling's (2014) semi-supervised model M2: a classifier q(y|x) next to the VAE,
trained on a few labelled images and many unlabelled ones (formulas with their constants: docs/objective.md)."""

import math
from collections.abc import Callable, Sequence
from math import prod
from typing import Any

import torch
from torch import nn

from vae_lightning.models.labels.base import GivenLabel, Labels
from vae_lightning.models.networks.base import Activation, Init, initialise, mlp
from vae_lightning.models.objectives.base import ObjectiveTerms, TrainingContext, kl_terms
from vae_lightning.rules import Count, NonNegative, checked


@checked
class SemiSupervisedLabels(Labels):
    """M2. Per training example, with p(y) uniform over K classes and the model's one-sample ELBO terms:

    * labelled (x, y): L(x, y) = -log p(x|y, z) + w * KL(q(z|x, y) || p(z)) + log K (w: the ELBO's beta and
      warm-up; w = 1 is Kingma et al.'s bound);
    * unlabelled x: U(x) = sum_y q(y|x) L(x, y) - H(q(y|x)), every class decoded;
    * the loss, an unbiased estimate of Kingma et al.'s J^alpha / N from a batch:
      (N_l / N) mean_l L + (N_u / N) mean_u U + ``alpha_over_n`` * mean_l (-log q(y|x)),
      with N_l labelled and N_u unlabelled images of N; ``alpha_over_n`` = alpha / N, 0.1 in the paper.

    The classifier q(y|x) is an MLP (``hidden_dims``, ``activation``, ``init``) with a softmax over K classes.
    """

    semi_supervised = True

    def __init__(
        self,
        image_shape: Sequence[int],
        n_classes: Count = 10,
        hidden_dims: Sequence[int] = (500,),
        activation: Activation = "softplus",
        init: Init = "torch",
        alpha_over_n: NonNegative = 0.1,
    ) -> None:
        super().__init__(n_classes)
        self.alpha_over_n = alpha_over_n
        self.classifier = nn.Sequential(
            nn.Flatten(), mlp([prod(image_shape), *hidden_dims], activation),
            nn.Linear(hidden_dims[-1] if hidden_dims else prod(image_shape), n_classes))
        initialise(self.classifier, init)

    def bound_terms(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(-log p(x|y, z), KL(q(z|x, y) || p(z))), each (B,), at one posterior sample per example."""
        given = GivenLabel(model, self.one_hot(y))
        sample = given.sample_posterior(x, n_samples=1)
        return -sample.log_px_z[0], kl_terms(given, sample)[0]

    def every_class(self, model: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`bound_terms` of each example at each class, each (B, K): one decoder pass of B * K."""
        classes = torch.arange(self.n_classes, device=x.device).repeat_interleave(len(x))
        recon, kl = self.bound_terms(model, x.repeat(self.n_classes, *([1] * (x.dim() - 1))), classes)
        return recon.view(self.n_classes, len(x)).T, kl.view(self.n_classes, len(x)).T

    def training_terms(self, model: Any, x: torch.Tensor, y: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        w = model.objective.kl_weight(context)
        labelled = y >= 0
        x_l, y_l, x_u = x[labelled], y[labelled], x[~labelled]
        recon_l, kl_l = self.bound_terms(model, x_l, y_l)
        recon_u, kl_u = self.every_class(model, x_u)
        q_u = self.classifier(x_u).softmax(-1)
        bound_u = recon_u + w * kl_u + math.log(self.n_classes)
        u = (q_u * bound_u).sum(-1) + (q_u * q_u.clamp_min(1e-12).log()).sum(-1)  # E_q[L] - H(q)
        l_ = recon_l + w * kl_l + math.log(self.n_classes)
        cross_entropy = nn.functional.cross_entropy(self.classifier(x_l), y_l.long(), reduction="sum")
        # the labelled share of the training split; the batch's own share when the run does not say (a bare loader)
        share = context.labelled_size / context.dataset_size if context.dataset_size else len(x_l) / len(x)
        loss = (share * l_.sum() / max(len(x_l), 1) + (1 - share) * u.sum() / max(len(x_u), 1)
                + self.alpha_over_n * cross_entropy / max(len(x_l), 1))
        # logged per example: the labelled terms at the label, the unlabelled ones averaged over q(y|x)
        recon = torch.cat([recon_l, (q_u * recon_u).sum(-1)]).detach()
        kl = torch.cat([kl_l, (q_u * kl_u).sum(-1)]).detach()
        return ObjectiveTerms(loss=loss, recon=recon, kl=kl)

    def class_log_probs(self, model: Any, x: torch.Tensor, log_px_given_y: Callable[[], torch.Tensor]) -> torch.Tensor:
        return self.classifier(x).log_softmax(-1)

    def encoding_labels(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The classifier's choice (the labels M2 learns from are too few to encode the training split with)."""
        return self.one_hot(self.classifier(x).argmax(-1))
