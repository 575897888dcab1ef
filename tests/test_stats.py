"""bench.report.stats against scipy and against hand-checked cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from bench.report.stats import Verdict, holm, mean_ranks, pairwise, shared_keys, spearman, summarize

INF = math.inf


# ---------------------------------------------------------------- summarize
def _scipy_ci(values, statistic, seed=0, n_resamples=9999):
    ci = scipy.stats.bootstrap((np.asarray(values, dtype=float),), statistic, method="percentile",
                               n_resamples=n_resamples, vectorized=True,
                               random_state=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def _iqm(x, axis=-1):
    return scipy.stats.trim_mean(x, 0.25, axis=axis)


def test_summarize_matches_scipy_and_is_deterministic():
    values = list(np.random.default_rng(7).normal(0.5, 0.1, size=23))
    s = summarize(values)
    assert (s.n, s.n_inf, s.method, s.confidence) == (23, 0, "percentile", 0.95)
    assert s.median == pytest.approx(np.median(values))
    assert s.iqm == pytest.approx(scipy.stats.trim_mean(values, 0.25))
    assert s.median_ci == pytest.approx(_scipy_ci(values, np.median))
    assert s.iqm_ci == pytest.approx(_scipy_ci(values, _iqm))
    assert s.median_ci[0] <= s.median <= s.median_ci[1]
    assert s.iqm_ci[0] <= s.iqm <= s.iqm_ci[1]
    assert summarize(values) == s                       # same seed, same interval
    assert summarize(values, seed=1).iqm_ci != s.iqm_ci  # the seed is what fixes it
    narrow = summarize(values, confidence=0.5)
    assert s.median_ci[0] <= narrow.median_ci[0] <= narrow.median_ci[1] <= s.median_ci[1]


def test_summarize_single_value_and_equal_values():
    one = summarize([0.3])
    assert (one.n, one.median, one.iqm, one.median_ci, one.iqm_ci) == (1, 0.3, 0.3, None, None)
    same = summarize([0.25] * 6)
    assert same.median == 0.25 and same.median_ci == (0.25, 0.25)


def test_summarize_counts_inf_as_worst_not_as_missing():
    # [1, 2, 3, inf]: median (2 + 3) / 2; trim_mean cuts one value off each end -> mean(2, 3)
    s = summarize([3.0, INF, 1.0, 2.0])
    assert (s.n, s.n_inf, s.median, s.iqm) == (4, 1, 2.5, 2.5)
    # half or more without a result: the median is "not reached"; so is an IQM keeping an inf
    t = summarize([1.0, INF, INF, 2.0])
    assert t.median == INF and t.iqm == INF
    assert summarize([INF, INF, INF]).median_ci == (INF, INF)
    assert summarize([INF]).median_ci is None


def test_summarize_interval_with_inf_is_the_order_statistic_interval():
    """Percentile intervals of the median only depend on the order: inf behaves like any
    value above the rest, and an end that lands on it reads inf."""
    values = [0.41, 0.52, INF, 0.38, 0.47, 0.60, 0.44, INF, 0.50]
    s = summarize(values)
    big = [v if math.isfinite(v) else 99.0 for v in values]
    low, high = _scipy_ci(big, np.median)
    assert s.median == np.median(big) == 0.50
    assert s.median_ci[0] == pytest.approx(low)
    assert s.median_ci[1] == (INF if high > 0.60 else pytest.approx(high))
    assert s.iqm == pytest.approx(np.mean([0.44, 0.47, 0.50, 0.52, 0.60]))  # both infs trimmed
    ends = [summarize([0.1, 0.2, 0.3, INF, INF], seed=k).median_ci for k in range(5)]
    assert all(math.isfinite(lo) or lo == INF for lo, _ in ends)
    assert all(not math.isnan(x) for ci in ends for x in ci)


@pytest.mark.parametrize("bad", [[], [0.1, float("nan")], [0.2, -INF]])
def test_summarize_refuses_what_is_no_result(bad):
    with pytest.raises(ValueError):
        summarize(bad)


# ---------------------------------------------------------------- ranks
def test_mean_ranks_with_ties_over_shared_seeds():
    table = {
        "tpe":    {0: 0.1, 1: 0.5, 2: INF, 3: 0.0},
        "random": {0: 0.3, 1: 0.5, 2: INF},
        "bohb":   {0: 0.2, 1: 0.4, 2: 0.9},
    }
    # seed 0: tpe 1, bohb 2, random 3; seed 1: bohb 1, tpe/random tie 2.5;
    # seed 2: bohb 1, tpe/random (no result) 2.5; seed 3 is not shared
    ranks = mean_ranks(table)
    assert ranks == pytest.approx({"tpe": 6 / 3, "random": 8 / 3, "bohb": 4 / 3})
    assert shared_keys(table) == [0, 1, 2]
    by_scipy = scipy.stats.rankdata([[0.1, 0.3, 0.2], [0.5, 0.5, 0.4], [INF, INF, 0.9]], axis=1)
    assert list(ranks.values()) == pytest.approx(list(by_scipy.mean(axis=0)))
    assert sum(ranks.values()) == pytest.approx(6.0)   # 1 + 2 + 3 per seed


def test_mean_ranks_needs_a_shared_seed():
    with pytest.raises(ValueError, match="share no seed"):
        mean_ranks({"a": {0: 1.0}, "b": {1: 2.0}})


# ---------------------------------------------------------------- tests
def test_holm_on_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]                    # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []
    p = np.random.default_rng(3).random(8)
    adjusted = np.array(holm(p))
    assert np.all(adjusted >= p) and np.all(adjusted <= np.minimum(1, 8 * p) + 1e-12)


def test_mann_whitney_hand_case():
    """3 vs 3, no overlap: U = 0, exact p = 1 / C(6, 3) = 0.05; Holm over the two
    directions doubles it, so it is not significant at 0.05."""
    (v,) = pairwise({"tpe": [1.0, 2.0, 3.0], "random": [4.0, 5.0, 6.0]}, ["tpe"], ["random"])
    assert v.p == pytest.approx((0.05, 1.0))
    assert v.p_adjusted == pytest.approx((0.1, 1.0))
    assert v.winner is None and v.n == (3, 3)
    assert v.line() == ("no significant difference between tpe and random at 100% budget "
                        "(Holm-adjusted p = 0.1 that tpe is lower, 1 that random is)")


def test_pairwise_winner_line_and_family():
    values = {"tpe": [1, 2, 3, 4, 5], "random": [6, 7, 8, 9, 10], "hyperband": [1.5, 2.5, 3.5, 9, 11]}
    verdicts = pairwise(values, ["tpe"], ["random", "hyperband"], label="50% budget")
    raw = [p for v in verdicts for p in v.p]
    expected = [scipy.stats.mannwhitneyu(values[a], values[b], alternative="less").pvalue
                for a, b in (("tpe", "random"), ("random", "tpe"), ("tpe", "hyperband"),
                             ("hyperband", "tpe"))]
    assert raw == pytest.approx(expected)
    assert [p for v in verdicts for p in v.p_adjusted] == pytest.approx(holm(expected))
    first, second = verdicts
    assert first.p[0] == pytest.approx(1 / 252)               # 5 vs 5, U = 0
    assert first.winner == "tpe" and second.winner is None
    assert first.line() == ("tpe beats random at 50% budget (Mann-Whitney U one-sided, "
                            "Holm-adjusted p = 0.016, n = 5 vs 5)")


def test_pairwise_opponent_can_win():
    (v,) = pairwise({"tpe": [5, 6, 7, 8, 9, 10], "random": [1, 2, 3, 4, 4.5]}, ["tpe"], ["random"])
    assert v.winner == "random"
    assert v.line().startswith("random beats tpe at 100% budget (")
    assert v.line().endswith("n = 5 vs 6)")


def test_pairwise_inf_is_the_worst_rank():
    values = {"tpe": [0.1, 0.2, 0.3, 0.25, 0.15], "random": [INF, INF, 0.9, INF, 0.8]}
    (v,) = pairwise(values, ["tpe"], ["random"])
    big = [v if math.isfinite(v) else 99.0 for v in values["random"]]
    assert v.p[0] == pytest.approx(
        scipy.stats.mannwhitneyu(values["tpe"], big, alternative="less").pvalue)
    assert v.winner == "tpe" and v.p[0] < 0.01


def test_paired_wilcoxon_on_shared_seeds():
    a = {s: 0.2 + 0.01 * s for s in range(7)}                 # seed 6 only here
    b = {s: 0.3 + 0.02 * s for s in range(6)}
    (v,) = pairwise({"tpe": a, "random": b}, ["tpe"], ["random"], paired=True)
    x, y = [a[s] for s in range(6)], [b[s] for s in range(6)]
    assert v.p[0] == pytest.approx(scipy.stats.wilcoxon(x, y, alternative="less").pvalue)
    assert v.p[0] == pytest.approx(1 / 64)                    # all 6 differences negative
    assert v.winner == "tpe" and v.test == "Wilcoxon signed-rank" and v.n == (6, 6)
    # both without a result on a seed: a tie, not inf - inf
    (w,) = pairwise({"tpe": {0: INF, 1: 0.1}, "random": {0: INF, 1: 0.1}}, ["tpe"], ["random"],
                    paired=True)
    assert w.p == (1.0, 1.0) and w.winner is None
    with pytest.raises(TypeError):
        pairwise({"tpe": [1.0], "random": [2.0]}, ["tpe"], ["random"], paired=True)


def test_verdict_is_plain_data():
    v = Verdict("a", "b", (0.01, 0.9), (0.02, 1.0), "a", "Mann-Whitney U", (6, 6))
    assert v.line() == ("a beats b at 100% budget (Mann-Whitney U one-sided, Holm-adjusted "
                        "p = 0.02, n = 6 vs 6)")


# ---------------------------------------------------------------- agreement
def test_spearman_against_scipy_and_degenerate_cases():
    x, y = [0.3, 0.2, 0.5, 0.4], [0.31, 0.25, 0.45, 0.5]
    r = spearman(x, y)
    expected = scipy.stats.spearmanr(x, y)
    assert (r.n, r.rho, r.p) == (4, pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert spearman([1.0, 2.0], [2.0, 1.0]).rho == pytest.approx(-1.0)
    assert spearman([1.0, 2.0], [2.0, 1.0]).p is None          # scipy gives none for 2
    assert spearman([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]).rho is None
    assert spearman([1.0], [1.0]).rho is None
