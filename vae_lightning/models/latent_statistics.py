"""What the test pass says about the latent code: active units and the KL per dimension (Burda et al., 2016).

Sums over examples, kept on the device and reduced exactly across DDP ranks once, at the end of the pass.
"""

from collections.abc import Callable

import torch

ACTIVE_UNIT_THRESHOLD = 1e-2  # Burda et al. (2016): A_u = Cov_x(E_q[z_u]) > 1e-2


class LatentStatistics:
    """Accumulates E_q[z] (mu) and, when the prior has one, the closed-form KL per dimension over a test pass."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def _add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0) + value

    def update(self, mu: torch.Tensor, kl_per_dim: torch.Tensor | None) -> None:
        """One batch: posterior means (B, D) and the KL per dimension (B, D), or None."""
        if kl_per_dim is not None:
            self._add("kl_per_dim", kl_per_dim.sum(0))
        self._add("mu", mu.sum(0))
        self._add("mu_sq", mu.pow(2).sum(0))
        self._add("count", torch.tensor(float(mu.shape[0]), device=mu.device))

    def summary(self, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> tuple[dict[str, list[float]], float]:
        """(details: ``mu_variance_per_dim`` and ``kl_per_dim`` as lists, the number of active units), with the
        sums reduced across ranks by ``reduce_sum``."""
        sums = {name: reduce_sum(value) for name, value in self.sums.items()}
        count = sums["count"]
        mu_mean = sums["mu"] / count
        variances = (sums["mu_sq"] / count - mu_mean.pow(2)).tolist()
        details = {"mu_variance_per_dim": variances, "active_per_dim": [v > ACTIVE_UNIT_THRESHOLD for v in variances]}
        if "kl_per_dim" in sums:  # priors with a closed-form KL
            details["kl_per_dim"] = (sums["kl_per_dim"] / count).tolist()
        return details, float(sum(details["active_per_dim"]))
