"""The discretised logistic likelihood of 8-bit pixels (Salimans et al., 2017, PixelCNN++), optionally a mixture."""

import math

import torch
import torch.nn.functional as F

from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.rules import Count, checked

LEVELS = 256
BIN_WIDTH = 1.0 / (LEVELS - 1)  # pixels x = k / 255
LOG_SCALE_MIN = -7.0  # scale >= 9e-4, a quarter of a bin: the top bin can still hold almost all the mass
LOG_SCALE_MAX = math.log(10.0)


def log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-a)) for a > 0, accurate for small and large a (Maechler, 2012)."""
    return torch.where(a < math.log(2.0), torch.log(-torch.expm1(-a)), torch.log1p(-torch.exp(-a)))


def discretised_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(level) per pixel for x = level / 255 (rounded to the nearest level): the logistic's mass on
    [(level - 1/2) / 255, (level + 1/2) / 255], the lowest bin open to -inf and the highest to +inf, so the
    256 probabilities sum to 1.

    Both edges are computed from the level, so neighbouring bins share the very same edge value (in float32,
    x + 1/510 and the next x - 1/510 differ in the last bit, which a narrow logistic turns into 1e-5 of
    mass counted twice). With a = (upper - mean) / s and b = (lower - mean) / s, the middle bins use the exact
    identity sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(b - a)), which never subtracts two nearly
    equal numbers; the end bins are log sigmoid(a) and log sigmoid(-b).
    """
    level = torch.round(x * (LEVELS - 1))
    inv_scale = torch.exp(-log_scale)
    upper = ((level + 0.5) * BIN_WIDTH - mean) * inv_scale
    lower = ((level - 0.5) * BIN_WIDTH - mean) * inv_scale
    log_below_upper = -F.softplus(-upper)  # log sigmoid(a)
    log_above_lower = -F.softplus(lower)  # log sigmoid(-b)
    middle = log_below_upper + log_above_lower + log1mexp(upper - lower)
    return torch.where(level <= 0, log_below_upper, torch.where(level >= LEVELS - 1, log_above_lower, middle))


@checked
class DiscretisedLogisticLikelihood(Likelihood):
    """Independent 8-bit pixels, each a mixture of ``components`` discretised logistics.

    An exact probability of the 8-bit images (no dequantisation): -log p is directly -log P(k) in nats.
    Decoder channels per image channel: mean and log-scale for one component; mixture logits, means and
    log-scales (3 K) for K > 1. Means are unconstrained (the end bins are open), log-scales clamped to
    [-7, log 10].
    """

    def __init__(self, components: Count = 1) -> None:
        super().__init__()
        self.components = components
        self.params_per_pixel = 2 if components == 1 else 3 * components

    @property
    def pixels(self) -> str:
        return "grey"  # the levels k / 255 themselves: log_prob reads k back from x

    @property
    def data_model(self) -> str:
        return "8-bit"

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log mixture weights, means, log-scales), each (..., K, C, H, W)."""
        params = params.unflatten(-3, (self.params_per_pixel, -1))
        n = self.components
        if n == 1:
            log_weights = torch.zeros_like(params[..., :1, :, :, :])
            means, log_scales = params[..., :1, :, :, :], params[..., 1:, :, :, :]
        else:
            log_weights = F.log_softmax(params[..., :n, :, :, :], dim=-4)
            means, log_scales = params[..., n : 2 * n, :, :, :], params[..., 2 * n :, :, :, :]
        return log_weights, means, log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def params_at(self, location: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Every component at ``location`` with the logistic scale of the data's std (s = std sqrt(3) / pi),
        equal mixture weights."""
        log_scale = (std * math.sqrt(3) / math.pi).clamp(math.exp(LOG_SCALE_MIN), math.exp(LOG_SCALE_MAX)).log()
        n = self.components
        parts = [location, log_scale] if n == 1 else [torch.zeros_like(location)] * n + [location] * n + [log_scale] * n
        return torch.cat(parts)

    def _log_prob_per_pixel(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_weights, means, log_scales = self._split(params)
        per_component = discretised_logistic_log_prob(x.unsqueeze(-4), means, log_scales)
        return torch.logsumexp(log_weights + per_component, dim=-4)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        per_pixel = self._log_prob_per_pixel(params, x)
        return per_pixel.flatten(-3).sum(-1)

    @torch.no_grad()
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The exact expectation of level / 255, as a tail sum: E[level] = sum_{k=1}^{255} P(level >= k), and
        P(level >= k) is the logistic's mass above the bin edge (k - 1/2) / 255, sigmoid((mean - edge) / scale),
        mixed over the components (one sigmoid per level, not a log-probability of every level)."""
        log_weights, means, log_scales = self._split(params)
        inv_scale = torch.exp(-log_scales)
        above = torch.zeros_like(means)
        for level in range(1, LEVELS):
            above += torch.sigmoid((means - (level - 0.5) * BIN_WIDTH) * inv_scale)
        return (log_weights.exp() * above).sum(dim=-4) * BIN_WIDTH

    @torch.no_grad()
    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """A component per pixel (Gumbel-max), a logistic draw from it, rounded to the nearest of the 256 levels."""
        log_weights, means, log_scales = self._split(params)
        gumbel = -torch.log(-torch.log(torch.rand_like(means).clamp_min(1e-20)))
        choice = (log_weights + gumbel).argmax(dim=-4, keepdim=True)
        mean, log_scale = means.gather(-4, choice).squeeze(-4), log_scales.gather(-4, choice).squeeze(-4)
        u = torch.rand_like(mean).clamp(1e-6, 1 - 1e-6)
        draw = mean + log_scale.exp() * (torch.log(u) - torch.log1p(-u))
        return (draw / BIN_WIDTH).round().clamp(0, LEVELS - 1) * BIN_WIDTH
