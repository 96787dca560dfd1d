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
from typing import ClassVar

import torch
from torch import nn

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

    #: where its settings live in the config (named in refusals of a bad setting)
    config_section: ClassVar[str] = "likelihood"
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

    def params_at(self, location: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (C * params_per_pixel, H, W) with the channels that move the mean at ``location``
        (C, H, W) and any scale set from the data's per-pixel ``std``; the mean rises with ``location``."""
        return location

    @torch.no_grad()
    def output_bias(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Decoder outputs whose ``mean`` is the image ``mean`` (C, H, W), clipped half an 8-bit level away from 0
        and 1 (a logit of 0 or 1 is infinite): the location found by bisection on [-1000, 1000] (a mean the
        likelihood cannot reach ends at an edge). A likelihood whose mean-matched start is a bad one overrides this."""
        target = mean.clamp(1 / 512, 1 - 1 / 512)
        low, high = torch.full_like(target, -1000.0), torch.full_like(target, 1000.0)
        for _ in range(60):
            middle = (low + high) / 2
            below = self.mean(self.params_at(middle, std)) < target
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        return self.params_at((low + high) / 2, std)

    @abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example, shape params.shape[:-3]."""

    @abstractmethod
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z], in [0, 1], for pictures."""

    @abstractmethod
    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z)."""
