"""Diagonal Gaussians: the reparameterisation trick, the closed-form KL to N(0, I), log-densities."""

import math

import torch

LOGVAR_MIN = -20.0
LOGVAR_MAX = 10.0
LOG_2PI = math.log(2 * math.pi)


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    """Keep log-variances where exp() neither underflows to 0 nor overflows (sigma in [4.5e-5, 148])."""
    return logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I), so gradients flow to mu and logvar.

    With ``n_samples`` the result has a leading sample dimension: (n_samples, *mu.shape).
    ``eps`` may be given (fixed evaluation noise); otherwise it is drawn.
    """
    std = torch.exp(0.5 * logvar)
    if eps is None:
        shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
    return mu + std * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per latent dimension, in nats.

    0.5 * (mu^2 + sigma^2 - 1 - log sigma^2); sum over the last axis for the per-example KL.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def diagonal_gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis, in nats."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def diagonal_gaussian_mixture_log_probs(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log N(z; m_k, diag(exp(s_k))) for every component k: z (..., D), means and logvars (K, D) -> (..., K).

    Expanded as -0.5 (D log 2 pi + sum s_k + z^2 . p_k - 2 z . (m_k p_k) + m_k^2 . p_k) with p_k = exp(-s_k):
    two matrix products instead of a (..., K, D) tensor, which is what makes a 500-component VampPrior cheap
    enough for k = 5000 importance samples. In float64, because the three terms can be large and nearly cancel
    (a component with variance 1e-8 has p_k = 1e8). Apple's MPS has no float64: there the direct
    (..., K, D) form is used, exact in float32 and only slower.
    """
    if z.device.type == "mps":
        return diagonal_gaussian_log_prob(z.unsqueeze(-2), means, logvars)
    z64, means64, logvars64 = z.double(), means.double(), logvars.double()
    precision = torch.exp(-logvars64)
    constant = z.shape[-1] * LOG_2PI + logvars64.sum(-1) + (means64.pow(2) * precision).sum(-1)  # (K,)
    quadratic = z64.pow(2) @ precision.T - 2 * z64 @ (means64 * precision).T + constant
    return (-0.5 * quadratic).to(z.dtype)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last axis, in nats."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


class PerExampleNoise:
    """Fixed N(0, I) noise for example i of a split, whatever the batch or the DDP rank it lands in.

    Rows are drawn in chunks of ``chunk`` examples, each chunk from its own seed, and cached, so the
    noise of example i never depends on how many examples there are or who asks first.
    """

    def __init__(self, dim: int, seed: int, chunk: int = 1024) -> None:
        self.dim, self.seed, self.chunk = dim, seed, chunk
        self._chunks: dict[int, torch.Tensor] = {}

    def _rows(self, chunk_id: int) -> torch.Tensor:
        if chunk_id not in self._chunks:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + chunk_id)
            self._chunks[chunk_id] = torch.randn(self.chunk, self.dim, generator=generator)
        return self._chunks[chunk_id]

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        index = index.cpu()
        chunk_ids = index // self.chunk
        rows = torch.empty(len(index), self.dim)
        for chunk_id in chunk_ids.unique().tolist():
            mask = chunk_ids == chunk_id
            rows[mask] = self._rows(chunk_id)[index[mask] % self.chunk]
        return rows
