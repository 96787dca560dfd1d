"""The class-conditional VAE: every training image with its label, q(z|x, y), p(x|y, z), p(z)."""

from collections.abc import Callable, Sequence
from typing import Any

import torch

from vae_lightning.models.labels.base import GivenLabel, Labels
from vae_lightning.models.objectives.base import ObjectiveTerms, TrainingContext
from vae_lightning.rules import Count, checked


@checked
class ConditionalLabels(Labels):
    """Trains with the configured objective (``model/objective``) at each image's own label. Its classes come
    from Bayes' rule, p(y|x) proportional to p(x|y) with the uniform p(y): a generative classifier for free."""

    def __init__(self, image_shape: Sequence[int] | None = None, n_classes: Count = 10) -> None:
        super().__init__(n_classes)

    def training_terms(self, model: Any, x: torch.Tensor, y: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        return model.objective(GivenLabel(model, self.one_hot(y)), x, context)

    def class_log_probs(self, model: Any, x: torch.Tensor, log_px_given_y: Callable[[], torch.Tensor]) -> torch.Tensor:
        return log_px_given_y().log_softmax(-1)

    def encoding_labels(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.one_hot(y)
