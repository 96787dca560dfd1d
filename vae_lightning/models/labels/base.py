"""Labels: how a model uses the digit classes y (``model/labels``; none by default).

Contract: built as ``labels(image_shape=(C, H, W))``, a module with ``n_classes`` K. The VAE then gives its encoder
and decoder the one-hot label as a second input (q(z|x, y), p(x|y, z)) and asks the component for:

* ``training_terms(model, x, y, context)``: the training step's :class:`ObjectiveTerms` for a batch whose labels
  y (B,) are class indices, -1 where a label is not to be used;
* ``class_log_probs(model, x, log_px_given_y)``: log-probabilities (B, K) of the classes of x; ``log_px_given_y()``
  gives estimates of log p(x|y) (B, K) for every class, if it needs them; their argmax is ``test/error``'s
  prediction;
* ``encoding_labels(model, x, y)``: the one-hot labels (B, K) to encode training images with (post-hoc sampling).

p(y) is uniform over the K classes. :class:`GivenLabel` is the model seen at fixed labels: every objective and the
importance-weighted estimate of log p(x|y) work on it unchanged.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from vae_lightning.errors import ConfigError
from vae_lightning.models.objectives.base import ObjectiveTerms, PosteriorSample, TrainingContext


def check_label(n_classes: int | None, label: int | None) -> None:
    """ConfigError, one line, for a ``label`` to draw that a model with ``n_classes`` (None: no labels) lacks."""
    if label is None:
        return
    if n_classes is None:
        raise ConfigError(f"label={label} is not allowed; this model has no labels (trained without model/labels)")
    if not 0 <= label < n_classes:
        raise ConfigError(f"label={label} is not allowed; use a class from 0 to {n_classes - 1}")


class GivenLabel:
    """The model at fixed one-hot labels ``y`` (B, K): ``encode``, ``decode`` and ``sample_posterior`` are
    q(z|x, y) and p(x|y, z); everything else is the model's own."""

    def __init__(self, model: Any, y: torch.Tensor) -> None:
        self.model, self.y = model, y

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(x, self.y)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, self.y)

    def sample_posterior(self, x: torch.Tensor, n_samples: int = 1, eps: torch.Tensor | None = None) -> PosteriorSample:
        return self.model.sample_posterior(x, n_samples, eps, self.y)


class Labels(nn.Module, ABC):
    """How a model uses the labels; see the module docstring for the contract."""

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "model.labels"
    #: whether it learns from a labelled subset of the training split (``data.labelled``) and the rest unlabelled
    semi_supervised: ClassVar[bool] = False

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(y.long(), self.n_classes).float()

    @abstractmethod
    def training_terms(self, model: Any, x: torch.Tensor, y: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        ...

    @abstractmethod
    def class_log_probs(self, model: Any, x: torch.Tensor, log_px_given_y: Callable[[], torch.Tensor]
                        ) -> torch.Tensor: ...

    @abstractmethod
    def encoding_labels(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
