"""The continuous Bernoulli likelihood (Loaiza-Ganem and Cunningham, NeurIPS 2019)."""

import math

import torch
import torch.nn.functional as F
from torch.distributions import ContinuousBernoulli

from vae_lightning.models.likelihoods.base import Likelihood

#: below this |logit| the log-normaliser uses its Taylor series (the closed form is 0 / 0 at logit 0)
TAYLOR_BELOW = 1e-2


def log_normaliser(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) with lambda = sigmoid(logits), C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda).

    In logits l: 1 - 2 lambda = -tanh(l / 2) and atanh(1 - 2 lambda) = -l / 2, so C = l / tanh(l / 2), which is
    stable everywhere except l = 0 (lambda = 1/2), where log C = log 2 + l^2 / 12 - 7 l^4 / 1440 + O(l^6).
    """
    small = logits.abs() < TAYLOR_BELOW
    safe = torch.where(small, torch.ones_like(logits), logits)
    closed_form = torch.log(safe.abs()) - torch.log(torch.tanh(safe / 2).abs())
    l2 = logits.pow(2)
    taylor = math.log(2.0) + l2 / 12 - 7 * l2.pow(2) / 1440
    return torch.where(small, taylor, closed_form)


class ContinuousBernoulliLikelihood(Likelihood):
    """Independent continuous Bernoulli pixels on [0, 1]: p(x|lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x).

    The normalised density that the grey-level binary cross-entropy lacks (the BCE is its log without log C).
    With ``dequantize`` (default) the data are (k + u) / 256, so -log p + D ln 256 bounds -log P(8-bit image).
    """

    def __init__(self, dequantize: bool = True) -> None:
        super().__init__()
        self.dequantize = dequantize

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = x.expand_as(params)
        per_pixel = -F.binary_cross_entropy_with_logits(params, x, reduction="none") + log_normaliser(params)
        return per_pixel.flatten(-3).sum(-1)

    @torch.no_grad()
    def output_bias(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """lambda at the mean pixel (the Bernoulli's start), not the logits whose continuous-Bernoulli mean is the
        data's: that mean falls to 0 only as -1 / logit, so a pixel inked in 1% of the images would start at a logit
        of -100 and each inked image there would cost about 100 nats (measured: 171 nats worse after 10 epochs)."""
        return torch.logit(mean.clamp(1 / 512, 1 - 1 / 512))

    def _distribution(self, params: torch.Tensor) -> ContinuousBernoulli:
        return ContinuousBernoulli(logits=params, validate_args=False)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self._distribution(params).mean

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return self._distribution(params).sample()
