"""Independent Gaussian pixels: fixed sigma (MSE), one learned sigma, or one per pixel."""

import math
from typing import Literal

import torch
from torch import nn

from vae_lightning.models.gaussians import LOG_2PI
from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.rules import Positive, checked

LOG_SIGMA_MIN = math.log(1e-3)
LOG_SIGMA_MAX = math.log(10.0)


@checked
class GaussianLikelihood(Likelihood):
    """Independent Gaussian pixels N(x; mu, sigma^2), mu = sigmoid(decoder output) in [0, 1]
    (``mean_activation: identity`` uses the raw output, e.g. for a linear-Gaussian model).

    sigma_mode:
      * ``fixed``: sigma = ``sigma`` (MSE up to a scale and a constant);
      * ``learned``: one sigma for all pixels, learned (initialised at ``sigma``);
      * ``per_pixel``: the decoder predicts log sigma for each pixel (a second output channel; with the output
        from the data, every pixel's sigma starts at ``sigma``).
    log sigma is clamped to [log 1e-3, log 10] so the density stays finite. ``dequantize`` says the
    data module feeds x = (k + u) / 256, which makes the density a bound on the 8-bit data.
    """

    def __init__(
        self,
        sigma_mode: Literal["fixed", "learned", "per_pixel"] = "learned",
        sigma: Positive = 0.1,
        dequantize: bool = True,
        mean_activation: Literal["sigmoid", "identity"] = "sigmoid",
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

    def params_at(self, location: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Per-pixel σ starts at ``sigma``, as the learned one does, not at the data's spread: a pixel almost never
        inked would start near the floor (one inked image then costs about 1 / (2 σ²) nats); smaller starts were
        no better (docs/results.md)."""
        if self.sigma_mode != "per_pixel":
            return location
        return torch.cat([location, self.log_sigma.expand_as(location)])

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
