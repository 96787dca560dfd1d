"""Decoder output distributions p(x|z).

A likelihood turns the decoder's raw output (``params_per_pixel`` channels per image channel) into a
per-example log-probability in nats, a display mean in [0, 1], and samples. ``data_model`` says what that
log-probability is a probability of, which decides what it can be compared with:

* ``8-bit``: an exact probability of the 8-bit images (pixels k / 255);
* ``8-bit dequantised``: a density of (k + u) / 256, u ~ U[0, 1), whose -log p + D ln 256 bounds -log P(k);
* ``binarised``: a probability of binarised images (a different data set, its own scale);
* ``none``: not a normalised likelihood of the data (e.g. the grey-level BCE of the usual PyTorch example).
"""

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from vae_lightning.contracts import Binarize, MeanActivation, Positive, SigmaMode, checked
from vae_lightning.models.diagonal_normal import LOG_2PI

LOG_SIGMA_MIN = math.log(1e-3)
LOG_SIGMA_MAX = math.log(10.0)
#: the values of Likelihood.data_model
DATA_MODELS = ("8-bit", "8-bit dequantised", "binarised", "none")


class Likelihood(nn.Module, ABC):
    """p(x|z) for images; all log-probabilities are summed over pixels (nats per example).

    Contract: ``log_prob(params, x)`` takes decoder outputs of shape (..., C * params_per_pixel, H, W) and
    inputs x of shape (B, C, H, W) broadcastable against them, and returns shape params.shape[:-3];
    ``mean`` and ``sample`` return (..., C, H, W) in [0, 1]. ``pixels`` (one of ``PIXEL_MODES``) is what it
    asks the data module for, and ``data_model`` what its log-probability is a probability of: the data
    module learns the pixels from the built likelihood, never from a second setting.
    """

    #: how many decoder output channels one image channel needs
    params_per_pixel: int = 1
    #: whether the data are dequantised 8-bit pixels, so a density bounds log P(8-bit image)
    dequantize: bool = False

    @property
    def pixels(self) -> str:
        """The x it models: dequantised levels (k + u) / 256 with ``dequantize``, else grey levels k / 255."""
        return "dequantize" if self.dequantize else "grey"

    @property
    def data_model(self) -> str:
        """What log_prob is a probability of: one of DATA_MODELS."""
        return "8-bit dequantised" if self.dequantize else "none"

    def data_scores(self, nll: float, n_pixels: int) -> dict[str, float]:
        """What a test NLL (nats per example, of x as the model saw it) says about the images, by ``data_model``:
        ``test/nll_8bit`` (nats) for the 8-bit images and ``test/bits_per_dim`` for any normalised data model."""
        if self.data_model == "8-bit dequantised":
            # uniform dequantisation: -log P(k) <= -log p((k + u) / 256) + D ln 256 for 8-bit pixels k
            nll = nll + n_pixels * math.log(256)
        scores = {"test/nll_8bit": nll} if self.data_model in ("8-bit", "8-bit dequantised") else {}
        if self.data_model != "none":  # 8-bit images, or binarised ones (their own scale)
            scores["test/bits_per_dim"] = nll / (n_pixels * math.log(2))
        return scores

    @abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example, shape params.shape[:-3]."""

    @abstractmethod
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z], in [0, 1], for pictures."""

    @abstractmethod
    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z)."""


@checked("likelihood")
class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli pixels with logits from the decoder.

    On binary x this is a normalised probability. On grey levels (``binarize: none``) it is the
    binary cross-entropy of the common PyTorch example, which is not a likelihood of anything.
    """

    def __init__(self, binarize: Binarize = "dynamic") -> None:
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


@checked("likelihood")
class GaussianLikelihood(Likelihood):
    """Independent Gaussian pixels N(x; mu, sigma^2), mu = sigmoid(decoder output) in [0, 1]
    (``mean_activation: identity`` uses the raw output, e.g. for a linear-Gaussian model).

    sigma_mode:
      * ``fixed``: sigma = ``sigma`` (MSE up to a scale and a constant);
      * ``learned``: one sigma for all pixels, learned (initialised at ``sigma``);
      * ``per_pixel``: the decoder predicts log sigma for each pixel (a second output channel).
    log sigma is clamped to [log 1e-3, log 10] so the density stays finite. ``dequantize`` says the
    data module feeds x = (k + u) / 256, which makes the density a bound on the 8-bit data.
    """

    def __init__(
        self,
        sigma_mode: SigmaMode = "learned",
        sigma: Positive = 0.1,
        dequantize: bool = True,
        mean_activation: MeanActivation = "sigmoid",
    ) -> None:
        super().__init__()
        self.mean_activation = mean_activation
        self.sigma_mode = sigma_mode
        self.dequantize = dequantize
        self.params_per_pixel = 2 if sigma_mode == "per_pixel" else 1
        log_sigma = torch.tensor(math.log(sigma))
        if sigma_mode == "learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def _mean_and_log_sigma(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sigma_mode == "per_pixel":
            channels = params.shape[-3] // 2
            raw_mean, log_sigma = params[..., :channels, :, :], params[..., channels:, :, :]
        else:
            raw_mean, log_sigma = params, self.log_sigma
        mean = torch.sigmoid(raw_mean) if self.mean_activation == "sigmoid" else raw_mean
        return mean, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, log_sigma = self._mean_and_log_sigma(params)
        z = (x - mu) * torch.exp(-log_sigma)
        per_pixel = -0.5 * z.pow(2) - log_sigma - 0.5 * LOG_2PI
        return per_pixel.expand_as(mu).flatten(-3).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self._mean_and_log_sigma(params)[0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        mu, log_sigma = self._mean_and_log_sigma(params)
        return mu + torch.exp(log_sigma) * torch.randn_like(mu)
