"""Statistics over seeds: location with confidence intervals, ranks and one-sided tests.

Plain numbers in, plain numbers out; scipy does the statistics. The values are best
val_loss per run (lower is better); ``inf`` means "no result yet" (no COMPLETE trial within
the budget looked at) and counts as worse than any value, never as a missing run: dropping
such runs would flatter the searchers that often have nothing yet.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.stats

CI_METHOD = "percentile"   # scipy.stats.bootstrap method used for every interval
IQM_TRIM = 0.25            # interquartile mean: trim_mean cutting 25% off each end
TEST_UNPAIRED = "Mann-Whitney U"
TEST_PAIRED = "Wilcoxon signed-rank"


# ----------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Summary:
    """Location of one searcher's values with percentile-bootstrap confidence intervals.

    ``n`` counts every value, ``n_inf`` those without a result (inf). The median and the
    IQM are inf when too many values are: the median when half of them or more, the IQM
    when more than the trimmed quarter. Intervals are None for a single value.
    """

    n: int
    n_inf: int
    median: float
    median_ci: tuple[float, float] | None
    iqm: float
    iqm_ci: tuple[float, float] | None
    confidence: float
    method: str = CI_METHOD


def _iqm(x: Any, axis: int = -1) -> Any:
    return scipy.stats.trim_mean(x, IQM_TRIM, axis=axis)


def _median(x: Any, axis: int = -1) -> Any:
    return np.median(x, axis=axis)


def _finite_stand_in(values: np.ndarray) -> tuple[np.ndarray, Callable[[float], float]]:
    """Replace inf by a large finite value, and a decoder mapping results back to inf.

    scipy's bootstrap interpolates quantiles, and inf - inf there gives nan. A stand-in far
    above every finite value keeps each order statistic where it was, and makes every mean
    that includes it land far above the largest finite value; so a result above that value
    (beyond rounding) can only come from an inf, and is decoded as inf.
    """
    finite = values[np.isfinite(values)]
    top, spread = float(finite.max()), float(np.ptp(finite))
    stand_in = top + 10.0 * len(values) * (spread + 1.0)
    tolerance = 1e-9 * (abs(top) + spread + 1.0)
    encoded = np.where(np.isinf(values), stand_in, values)
    return encoded, lambda x: math.inf if x > top + tolerance else float(x)


def summarize(values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 9999,
              seed: int = 0) -> Summary:
    """Median and interquartile mean with percentile-bootstrap intervals (deterministic:
    the resampling generator is seeded). The percentile method is used rather than BCa:
    it is invariant under monotone transforms (what lets ``inf`` be handled exactly, see
    ``_finite_stand_in``) and does not break down on the ties best values often have.

    Raises ValueError for no values or NaN; +inf is "no result yet", -inf is refused.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("summarize needs a non-empty sequence of numbers")
    if np.isnan(x).any() or (x == -np.inf).any():
        raise ValueError("summarize: NaN or -inf among the values")
    n_inf = int(np.isinf(x).sum())
    if n_inf == x.size:
        ci = None if x.size == 1 else (math.inf, math.inf)
        return Summary(x.size, n_inf, math.inf, ci, math.inf, ci, confidence)
    encoded, decode = _finite_stand_in(x)
    med, iqm = decode(_median(encoded)), decode(_iqm(encoded))
    if x.size == 1:
        return Summary(1, n_inf, med, None, iqm, None, confidence)
    return Summary(x.size, n_inf, med, _ci(encoded, _median, decode, confidence, n_resamples, seed),
                   iqm, _ci(encoded, _iqm, decode, confidence, n_resamples, seed), confidence)


def _ci(x: np.ndarray, statistic: Callable[..., Any], decode: Callable[[float], float],
        confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    with warnings.catch_warnings():  # all values equal: a zero-width interval is the answer
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        result = scipy.stats.bootstrap((x,), statistic, confidence_level=confidence,
                                       n_resamples=n_resamples, method=CI_METHOD,
                                       vectorized=True,
                                       # random_state, not rng (scipy >= 1.15 only): the
                                       # project allows scipy 1.11
                                       random_state=np.random.default_rng(seed))
    ci = result.confidence_interval
    return decode(float(ci.low)), decode(float(ci.high))


# ----------------------------------------------------------------------------- ranks
def shared_keys(table: Mapping[str, Mapping[Any, float]]) -> list[Any]:
    """The seeds every searcher has, in the first searcher's order."""
    if not table:
        return []
    common = set.intersection(*(set(v) for v in table.values()))
    return [k for k in next(iter(table.values())) if k in common]


def mean_ranks(table: Mapping[str, Mapping[Any, float]]) -> dict[str, float]:
    """Mean rank of each searcher over the seeds all of them share (rank 1 = lowest
    val_loss; ties, e.g. two searchers without a result yet, share the average rank).

    Ranking per seed first makes searchers comparable even where seeds differ in how
    hard they are. Raises ValueError when the searchers share no seed.
    """
    seeds = shared_keys(table)
    if not seeds:
        raise ValueError("mean_ranks: the searchers share no seed")
    names = list(table)
    matrix = np.array([[table[s][k] for s in names] for k in seeds], dtype=float)
    ranks = scipy.stats.rankdata(matrix, axis=1, nan_policy="raise")
    return dict(zip(names, (float(r) for r in ranks.mean(axis=0))))


# ----------------------------------------------------------------------------- tests
def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (Holm 1979, "A simple sequentially rejective
    multiple test procedure"); scipy has no Holm (false_discovery_control is BH/BY, which
    controls the false discovery rate, not the family-wise error these verdicts claim).

    Sorted ascending, the i-th (0-based) of m is multiplied by m - i, made monotone with a
    running maximum and capped at 1; valid under any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return [float(a) for a in adjusted]


def _p(value: float) -> str:
    return f"{value:.2g}"


@dataclass(frozen=True)
class Verdict:
    """One pair, tested one-sided in both directions: ``p[0]`` for "a has lower val_loss",
    ``p[1]`` for "b has lower val_loss"; adjusted over the whole family of ``pairwise``."""

    a: str
    b: str
    p: tuple[float, float]
    p_adjusted: tuple[float, float]
    winner: str | None
    test: str
    n: tuple[int, int]          # values per side (paired: seeds both have, twice)
    label: str = "100% budget"
    alpha: float = 0.05

    def line(self) -> str:
        """One sentence for the report."""
        if self.winner is None:
            return (f"no significant difference between {self.a} and {self.b} at {self.label} "
                    f"(Holm-adjusted p = {_p(self.p_adjusted[0])} that {self.a} is lower, "
                    f"{_p(self.p_adjusted[1])} that {self.b} is)")
        first = self.winner == self.a
        loser = self.b if first else self.a
        p = self.p_adjusted[0 if first else 1]
        n = self.n if first else self.n[::-1]
        return (f"{self.winner} beats {loser} at {self.label} ({self.test} one-sided, "
                f"Holm-adjusted p = {_p(p)}, n = {n[0]} vs {n[1]})")


def _one_sided(x: Sequence[float], y: Sequence[float], paired: bool) -> float:
    """p for "x lower than y"; ties and inf are handled by ranks."""
    if not paired:
        return float(scipy.stats.mannwhitneyu(x, y, alternative="less").pvalue)
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    both_inf = np.isinf(a) & np.isinf(b)   # neither has a result: a tie, not inf - inf = nan
    diff = np.where(both_inf, 0.0, a - np.where(both_inf, 0.0, b))
    if not diff.any():
        return 1.0
    with warnings.catch_warnings():  # zero differences: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(scipy.stats.wilcoxon(diff, alternative="less").pvalue)
    return p if math.isfinite(p) else 1.0


def _as_list(v: Sequence[float] | Mapping[Any, float]) -> list[float]:
    return list(v.values()) if isinstance(v, Mapping) else list(v)


def _sides(values: Mapping[str, Sequence[float] | Mapping[Any, float]], a: str, b: str,
           paired: bool) -> tuple[list[float], list[float]]:
    va, vb = values[a], values[b]
    if not paired:
        return _as_list(va), _as_list(vb)
    if not (isinstance(va, Mapping) and isinstance(vb, Mapping)):
        raise TypeError("pairwise(paired=True) needs {seed: value} mappings")
    seeds = shared_keys({a: va, b: vb})
    return [va[k] for k in seeds], [vb[k] for k in seeds]


def pairwise(values: Mapping[str, Sequence[float] | Mapping[Any, float]],
             challengers: Sequence[str], opponents: Sequence[str], *, alpha: float = 0.05,
             label: str = "100% budget", paired: bool = False) -> list[Verdict]:
    """Test each challenger against each opponent, one-sided both ways, Holm over all.

    Unpaired (default): Mann-Whitney U on the two searchers' values (runs as independent
    samples). ``paired=True``: Wilcoxon signed-rank on the seeds both have ({seed: value}
    mappings needed), worth it when a seed fixes something both runs share. A pair with
    fewer than one value per side (or fewer than two seeds paired) gets p = 1.
    """
    pairs = [(a, b) for a in challengers for b in opponents if a != b]
    raw: list[float] = []
    sizes = []
    for a, b in pairs:
        x, y = _sides(values, a, b, paired)
        enough = min(len(x), len(y)) >= (2 if paired else 1)
        raw += [_one_sided(x, y, paired), _one_sided(y, x, paired)] if enough else [1.0, 1.0]
        sizes.append((len(x), len(y)))
    adjusted = holm(raw)
    verdicts = []
    for i, ((a, b), n) in enumerate(zip(pairs, sizes)):
        p, q = (raw[2 * i], raw[2 * i + 1]), (adjusted[2 * i], adjusted[2 * i + 1])
        winner = a if q[0] < alpha else b if q[1] < alpha else None
        verdicts.append(Verdict(a, b, p, q, winner, TEST_PAIRED if paired else TEST_UNPAIRED,
                                n, label, alpha))
    return verdicts


# ----------------------------------------------------------------------------- agreement
@dataclass(frozen=True)
class Agreement:
    """Spearman rank correlation between two sets of per-searcher figures."""

    n: int
    rho: float | None      # None below 2 searchers or with a constant side
    p: float | None        # None below 3 searchers (scipy gives none for 2)


def spearman(x: Sequence[float], y: Sequence[float]) -> Agreement:
    """Do two orderings of the same searchers agree? (scipy.stats.spearmanr)"""
    if len(x) != len(y):
        raise ValueError("spearman: the two sides differ in length")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return Agreement(len(x), None, None)
    result = scipy.stats.spearmanr(x, y)
    rho, p = float(result.statistic), float(result.pvalue)
    return Agreement(len(x), rho, p if math.isfinite(p) else None)
