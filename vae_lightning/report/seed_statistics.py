"""What repeated seeds say: per-configuration mean, spread and 95% interval, and whether two neighbours in a
ranking can be told apart (a paired t-interval over the seeds they share). No torch: the sweep report imports it.
"""

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t


def t_quantile(degrees_of_freedom: int) -> float:
    """The two-sided 95% quantile of Student's t."""
    return float(student_t.ppf(0.975, degrees_of_freedom))


@dataclass(frozen=True)
class Summary:
    """One configuration's values of a metric over its seeds."""

    n: int
    mean: float
    sd: float  # sample standard deviation (0 for one seed)
    half_width: float  # of the 95% t-interval of the mean (inf for one seed: nothing is known of the spread)

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - self.half_width, self.mean + self.half_width


def summarise(values: list[float]) -> Summary:
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = statistics.fmean(values)
    if n == 1:
        return Summary(1, mean, 0.0, math.inf)
    sd = statistics.stdev(values)
    return Summary(n, mean, sd, t_quantile(n - 1) * sd / math.sqrt(n))


@dataclass(frozen=True)
class Comparison:
    """``better`` against ``worse`` (lower is better) over the seeds both ran."""

    shared_seeds: int
    difference: float  # mean of worse - better over the shared seeds
    half_width: float  # of its 95% t-interval (inf with fewer than two shared seeds)

    @property
    def distinguishable(self) -> bool:
        """The interval of the paired difference excludes 0."""
        return self.shared_seeds >= 2 and self.difference - self.half_width > 0

    def describe(self) -> str:
        if self.shared_seeds < 2:
            return "not tested (fewer than 2 shared seeds)"
        verdict = "better" if self.distinguishable else "tied: not distinguishable"
        return f"{verdict} (paired difference {self.difference:.3g} ± {self.half_width:.2g}, {self.shared_seeds} seeds)"


def compare(better: dict[int, float], worse: dict[int, float]) -> Comparison:
    """Paired comparison of two configurations' values keyed by seed."""
    shared = sorted(better.keys() & worse.keys())
    differences = [worse[seed] - better[seed] for seed in shared]
    if len(differences) < 2:
        return Comparison(len(differences), statistics.fmean(differences) if differences else math.nan, math.inf)
    sd = statistics.stdev(differences)
    return Comparison(len(shared), statistics.fmean(differences), t_quantile(len(shared) - 1) * sd / math.sqrt(len(shared)))
