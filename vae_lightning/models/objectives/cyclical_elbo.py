"""The ELBO with a cyclical KL weight (Fu et al., 2019)."""

import math
from typing import ClassVar

from vae_lightning.errors import ConfigError
from vae_lightning.models.objectives.base import TrainingContext
from vae_lightning.models.objectives.elbo import ELBO
from vae_lightning.rules import Count, Fraction, NonNegative, checked


@checked
class CyclicalKLELBO(ELBO):
    """The ELBO with the KL weight annealed in cycles (Fu et al., 2019, "Cyclical Annealing Schedule"): the run's
    T steps are split into ``cycles`` periods of T / M steps; in each the weight rises linearly from 0 to
    ``beta`` over the first ``ratio`` of the period and then stays at ``beta``:
    w_t = beta * min(1, tau_t / R), tau_t = ((t - 1) mod ceil(T / M)) / (T / M), t = 1, 2, ... T.
    Needs a bounded run (``trainer.max_epochs`` or ``trainer.max_steps``)."""

    needs_bounded_run: ClassVar[bool] = True

    def __init__(self, cycles: Count = 4, ratio: Fraction = 0.5, beta: NonNegative = 1.0, free_bits: NonNegative = 0.0):
        super().__init__(beta=beta, free_bits=free_bits)
        self.cycles, self.ratio = cycles, ratio

    def kl_weight(self, context: TrainingContext) -> float:
        if context.total_steps < 1:
            raise ConfigError("model/objective=cyclical_elbo needs a bounded run; set trainer.max_epochs or trainer.max_steps")
        period = context.total_steps / self.cycles
        tau = (context.step % math.ceil(period)) / period
        return self.beta * min(1.0, tau / self.ratio)
