"""Independent Bernoulli pixels: the likelihood of binarised images."""

from typing import Literal

import torch
import torch.nn.functional as F

from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.rules import checked


@checked
class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli pixels with logits from the decoder.

    On binary x this is a normalised probability. On grey levels (``binarize: none``) it is the
    binary cross-entropy of the common PyTorch example, which is not a likelihood of anything.
    """

    def __init__(self, binarize: Literal["dynamic", "static", "none"] = "dynamic") -> None:
        super().__init__()
        self.binarize = binarize

    @property
    def pixels(self) -> str:
        return "grey" if self.binarize == "none" else self.binarize

    @property
    def data_model(self) -> str:
        return "binarised" if self.binarize != "none" else "none"

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = x.expand_as(params)
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(-3).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))
