"""Across data sets: how the searchers compare over every (data set, seed) block, the way
CARP-S and HPOBench judge optimizers.

Per run, the normalised regret ``(best - best known) / (RandomSearch's median - best
known)`` of its best val_loss at the full budget (0: the best any run found on that data
set; 1: RandomSearch's median run), so data sets of different loss scales weigh alike. Per
block, the searchers' ranks at the full budget and averaged over the budget. Then the
Friedman test over the blocks and Nemenyi's post-hoc test (scikit-posthocs) with its
critical-difference diagram. Blocks pair runs of the same seed on the same data set; only
searchers that ran on every data set with the same seeds take part.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bench.report import render
from bench.report.runs import Run

PERCENTS = (10, 25, 50, 75, 100)   # the budget shares a mean rank over the budget reads
ALPHA = 0.05
REFERENCE = "random"              # the regret's scale: RandomSearch's median run


@dataclass
class Across:
    """The comparison over (data set, seed) blocks."""

    searchers: list[str]
    datasets: list[str]
    blocks: int
    regret: dict[str, float]          # searcher -> median normalised regret over the blocks
    final_rank: dict[str, float]      # searcher -> mean rank at the full budget
    budget_rank: dict[str, float]     # searcher -> mean rank over PERCENTS of the budget
    friedman_p: float
    nemenyi: Any                      # pandas DataFrame of pairwise p-values


def compare(runs_by_dataset: Mapping[str, Mapping[str, Sequence[Run]]],
            best_within: Callable[[Run, Sequence[int]], np.ndarray]) -> Across | None:
    """The blocks of the searchers common to every data set (None: fewer than 3 searchers
    or 2 blocks, or no RandomSearch to scale the regret by)."""
    import scikit_posthocs as sp
    from scipy import stats

    datasets = sorted(runs_by_dataset)
    common = set.intersection(*(set(r) for r in runs_by_dataset.values())) if datasets else set()
    searchers = sorted(common)
    if REFERENCE not in searchers or len(searchers) < 3:
        return None
    curves: list[np.ndarray] = []   # per block: searchers x percents
    regrets: list[np.ndarray] = []  # per block: searchers
    for dataset in datasets:
        per = {s: {render.json_text(r.seed): best_within(r, PERCENTS) for r in runs_by_dataset[dataset][s]}
               for s in searchers}
        seeds = sorted(set.intersection(*(set(v) for v in per.values())))
        if not seeds:
            continue
        finals = np.array([[per[s][k][-1] for s in searchers] for k in seeds])
        finite = finals[np.isfinite(finals)]
        if not finite.size:
            continue
        best_known = float(finite.min())
        random_median = float(np.median(finals[:, searchers.index(REFERENCE)]))
        scale = random_median - best_known
        for i, k in enumerate(seeds):
            curves.append(np.array([per[s][k] for s in searchers]))
            regrets.append((finals[i] - best_known) / scale if scale > 0 else np.zeros(len(searchers)))
    if len(curves) < 2:
        return None
    finals_by_block = np.array([c[:, -1] for c in curves])             # blocks x searchers
    ranks_final = np.apply_along_axis(stats.rankdata, 1, finals_by_block)
    ranks_budget = np.mean([np.apply_along_axis(stats.rankdata, 1, np.array([c[:, j] for c in curves]))
                            for j in range(len(PERCENTS))], axis=0)
    friedman = stats.friedmanchisquare(*finals_by_block.T)
    nemenyi = sp.posthoc_nemenyi_friedman(finals_by_block)
    nemenyi.index = nemenyi.columns = searchers
    regret = np.array(regrets)
    return Across(searchers=searchers, datasets=datasets, blocks=len(curves),
                  regret={s: float(np.median(regret[:, i])) for i, s in enumerate(searchers)},
                  final_rank={s: float(ranks_final[:, i].mean()) for i, s in enumerate(searchers)},
                  budget_rank={s: float(ranks_budget[:, i].mean()) for i, s in enumerate(searchers)},
                  friedman_p=float(friedman.pvalue), nemenyi=nemenyi)


def plot_critical_difference(result: Across, path: Path, title: str) -> None:
    """Nemenyi's critical-difference diagram (scikit-posthocs draws it): searchers joined
    by a bar do not differ significantly."""
    import matplotlib.style
    import scikit_posthocs as sp

    with matplotlib.style.context("default"):
        fig = render.figure(7.0, 2.4)
        ax = fig.add_subplot()
        sp.critical_difference_diagram(result.final_rank, result.nemenyi, ax=ax, alpha=ALPHA)
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        render.save(fig, path)


def render_across(label: str, result: Across | None, png: Path, out_dir: Path) -> list[str]:
    """A table, the Friedman and Nemenyi results in words, and the diagram."""
    if result is None:
        return [f"**Across data sets, {label}:** too few searchers in common (at least 3, "
                "RandomSearch among them, on every data set with shared seeds) for a test.", ""]
    order = sorted(result.searchers, key=lambda s: result.final_rank[s])
    lines = [f"**Across data sets, {label}:** {result.blocks} (data set, seed) blocks over "
             f"{', '.join(f'`{d}`' for d in result.datasets)}; lower is better in every column.", ""]
    lines += render.table(
        ("searcher", "median normalised regret", "mean rank at the full budget",
         f"mean rank over the budget ({', '.join(f'{p}%' for p in PERCENTS)})"),
        [(f"`{s}`", render.number(result.regret[s], 3), render.number(result.final_rank[s], 2),
          render.number(result.budget_rank[s], 2)) for s in order])
    differ = [f"`{a}` and `{b}` (p = {result.nemenyi.loc[a, b]:.2g})"
              for i, a in enumerate(order) for b in order[i + 1:]
              if result.nemenyi.loc[a, b] < ALPHA]
    if result.friedman_p >= ALPHA:
        lines += [f"Friedman test: p = {result.friedman_p:.2g}: no significant difference "
                  "between the searchers' ranks.", ""]
    else:
        lines += [f"Friedman test: p = {result.friedman_p:.2g}; Nemenyi's post-hoc test at "
                  f"alpha {ALPHA}: " + ("; ".join(differ) + " differ significantly" if differ
                                        else "no pair differs significantly") + ".", ""]
    plot_critical_difference(result, png, f"critical difference (Nemenyi, alpha {ALPHA}), {label}")
    lines += [f"![critical-difference diagram, {label}]({render.link(png, out_dir)})", ""]
    return lines
