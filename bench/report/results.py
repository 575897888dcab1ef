"""RESULTS.md and its plots, read back from the Optuna study store.

Three steps, kept apart so each can be checked on its own: ``collect`` (its own module)
reads the store into plain per-data-set groups, the ``*_stats``/``anytime``/``importances`` functions
compute the figures, and the ``render_*``/``plot_*`` functions write them. Everything is
sorted and no "now" is printed, so the same store always gives the same markdown.
"""
from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, cast

import matplotlib
import matplotlib.style
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.core import schema, store
from bench.core.errors import RunError, UserError
from bench.report import across, render, warm_start_report
from bench.report.across import render_across
from bench.report.backends import render_backends
from bench.report.collect import collect
from bench.report.pareto import render_pareto
from bench.report.runs import DatasetStudies, Run, median
from bench.report.stats import mean_ranks, pairwise, shared_keys, spearman, summarize

if TYPE_CHECKING:
    pass

KIND_MEMORY = schema.KIND_MEMORY
KIND_SCALING = schema.KIND_SCALING
BACKEND_OPTUNA = schema.BACKEND_OPTUNA
BACKEND_KT = schema.BACKEND_KERAS_TUNER
RANDOM_SEARCHER = "random"          # KerasTuner RandomSearch: the reference searcher
DEFAULT_SEARCHER = "optuna"         # the Optuna-backed default: what the answer is about
MIN_IMPORTANCE_TRIALS = 5
BUDGET_SHARES = (25, 50, 100)      # percent of a run's budget: the statistics' rows
RANK_GRID = tuple(range(1, 101))   # percent of the budget: x of the mean-rank plot
MIN_TEST_SEEDS = 5                 # distinct seeds every searcher needs for tests on real runs
ALPHA = 0.05


# ----------------------------------------------------------------------------- compute
@dataclass(frozen=True)
class Point:
    """The anytime curve after one finished trial."""

    epochs: float      # cumulative epochs_trained, this trial included
    wall: float        # cumulative wall_seconds, this trial included
    best: float        # best COMPLETE val_loss so far; inf before the first one


def _attr(trial: FrozenTrial, key: str) -> float:
    value = trial.user_attrs.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _complete_value(trial: FrozenTrial) -> float | None:
    """A COMPLETE trial's val_loss: its first objective (``trial.value`` raises for a
    multi-objective trial); None for an infeasible one (a constraint > 0, Optuna's rule)."""
    if trial.state != TrialState.COMPLETE or not trial.values:
        return None
    if trial.system_attrs and any(c > 0 for c in trial.constraints.values()):
        return None
    value = trial.values[0]
    return float(value) if value is not None and math.isfinite(value) else None


def anytime(trials: Sequence[FrozenTrial]) -> list[Point]:
    """Best-so-far against cost; a PRUNED trial costs epochs but is not a result (design.md)."""
    points, epochs, wall, best = [], 0.0, 0.0, math.inf
    for t in trials:
        epochs += store.trial_epochs(t)
        wall += _attr(t, schema.T_WALL)
        value = _complete_value(t)
        if value is not None and value < best:
            best = value
        points.append(Point(epochs, wall, best))
    return points


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The first COMPLETE trial with the lowest val_loss."""
    done = [t for t in trials if _complete_value(t) is not None]
    return min(done, key=lambda t: cast(float, _complete_value(t))) if done else None


def reach(points: Sequence[Point], target: float) -> Point | None:
    """The first point whose best-so-far meets the target."""
    return next((p for p in points if p.best <= target), None)


@dataclass
class SearcherStats:
    """Per-searcher figures over seeds (spread = min..max over seeds)."""

    searcher: str
    backend: str
    seeds: list[Any]                     # one per run (study); several runs may share a seed
    best: list[float]                    # per run with a COMPLETE trial
    val_accuracy: list[float]            # of each seed's best trial, where recorded
    budget: list[float]
    used: list[float]                    # sum of epochs_trained per seed
    to_target_epochs: list[float]        # per seed; inf = not reached
    to_target_wall: list[float]
    complete: int = 0                    # sums over seeds
    pruned: int = 0
    failed: int = 0
    overhead: float | None = None        # median over pooled COMPLETE/PRUNED trials of wall - fit
    timing_note: str | None = None       # a run's clocks are not a measurement: no wall figures


def searcher_stats(runs: Sequence[Run], target: float | None) -> SearcherStats:
    """Summarise one searcher's seeds; ``target`` None when there is no RandomSearch run."""
    s = SearcherStats(runs[0].searcher, runs[0].backend, [r.seed for r in runs],
                      [], [], [], [], [], [])
    overheads = []
    for run in runs:
        bt = best_trial(run.trials)
        if bt is not None:
            s.best.append(cast(float, _complete_value(bt)))
            if isinstance(bt.user_attrs.get(schema.T_VAL_ACC), (int, float)):
                s.val_accuracy.append(float(bt.user_attrs[schema.T_VAL_ACC]))
        if run.budget_epochs is not None:
            s.budget.append(run.budget_epochs)
        s.used.append(float(run.used))
        if target is not None:
            hit = reach(anytime(run.trials), target)
            s.to_target_epochs.append(hit.epochs if hit else math.inf)
            s.to_target_wall.append(hit.wall if hit else math.inf)
        s.complete += sum(t.state == TrialState.COMPLETE for t in run.trials)
        s.pruned += sum(t.state == TrialState.PRUNED for t in run.trials)
        s.failed += sum(t.state == TrialState.FAIL for t in run.trials)
        overheads += [o for t in run.trials if (o := store.trial_overhead(t)) is not None]
    s.overhead = median(overheads)
    notes = sorted({r.timing_note for r in runs if r.timing_note})
    if notes:  # not a timing measurement: no wall seconds, no overhead
        s.timing_note, s.overhead, s.to_target_wall = "; ".join(notes), None, []
    return s


def importances(trials: Sequence[FrozenTrial]) -> tuple[dict[str, float] | None, str]:
    """fANOVA importances of the pooled COMPLETE trials, or why there are none.

    Only parameters every pooled trial has, with one distribution, are kept: fANOVA
    needs a fixed search space.
    """
    done = [t for t in trials if _complete_value(t) is not None]
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return None, (f"Not computed: {len(done)} COMPLETE trials, "
                      f"at least {MIN_IMPORTANCE_TRIALS} needed.")
    common = set.intersection(*(set(t.distributions) for t in done))
    names = sorted(n for n in common
                   if all(t.distributions[n] == done[0].distributions[n] for t in done))
    if not names:
        return None, "Not computed: the pooled trials share no hyperparameter."
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        study = optuna.create_study(direction=schema.DIRECTION)
    finally:
        optuna.logging.set_verbosity(verbosity)
    for t in done:
        study.add_trial(optuna.trial.create_trial(
            value=cast(float, _complete_value(t)), params={n: t.params[n] for n in names},
            distributions={n: t.distributions[n] for n in names}))
    try:
        result = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except Exception as exc:  # noqa: BLE001 - a degenerate pool (e.g. one value everywhere) is not fatal
        return None, f"Not computed: {type(exc).__name__}: {exc}"
    ranked = sorted(result.items(), key=lambda kv: (-round(kv[1], 6), kv[0]))
    return dict(ranked), (f"fANOVA (seed 0) over {len(done)} pooled COMPLETE trials "
                          f"of all searchers and seeds.")


# ----------------------------------------------------------------------------- over seeds
def best_within(run: Run, percents: Sequence[int]) -> np.ndarray:
    """Best COMPLETE val_loss among the trials whose cumulative epochs (completion order)
    fit in each share of the run's budget (its epochs used when it records no budget);
    inf where none has finished yet. Shares of each run's own budget keep runs with
    different budgets comparable."""
    budget = run.budget_epochs if run.budget_epochs else float(run.used)
    return _steps(anytime(run.trials), budget * np.asarray(percents, dtype=float) / 100)


def _run_keys(runs: Sequence[Run]) -> list[tuple[str, int]]:
    """Runs pair up across searchers by seed, and by their order where a seed has several."""
    seen: dict[str, int] = {}
    keys = []
    for run in runs:
        seed = render.json_text(run.seed)
        keys.append((seed, seen.get(seed, 0)))
        seen[seed] = keys[-1][1] + 1
    return keys


BudgetTable = dict[str, dict[tuple[str, int], np.ndarray]]


def budget_table(runs: dict[str, list[Run]], percents: Sequence[int]) -> BudgetTable:
    """searcher -> run (seed key) -> best val_loss at each of ``percents`` of the budget."""
    return {s: dict(zip(_run_keys(rs), (best_within(r, percents) for r in rs)))
            for s, rs in runs.items()}


def _column(table: BudgetTable, i: int) -> dict[str, dict[Any, float]]:
    return {s: {k: float(v[i]) for k, v in per_run.items()} for s, per_run in table.items()}


def _mean_ranks(column: dict[str, dict[Any, float]]) -> dict[str, float] | None:
    try:
        return mean_ranks(column)
    except ValueError:  # the searchers share no seed
        return None


# ----------------------------------------------------------------------------- render
def _spread(values: Sequence[float], fmt=render.number) -> str:
    if not values:
        return render.DASH
    return f"{fmt(median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


SEARCH_HEADER = (
    "searcher", "backend", "seeds", "best val_loss", "val_accuracy of best",
    "budget epochs", "epochs used", "epochs to target", "wall s to target",
    "runs reaching target", "complete / pruned / failed", "overhead s/trial")


def _left_out(empty: dict[str, list[str]]) -> list[str]:
    names = sorted(name for group in empty.values() for name in group)
    if not names:
        return []
    return [f"Left out: {len(names)} stud{'y' if len(names) == 1 else 'ies'} with no finished "
            "trial (not counted as runs or seeds): " + ", ".join(f"`{n}`" for n in names) + ".",
            ""]


def render_search(stats: Sequence[SearcherStats], target: float | None,
                  random_runs: Sequence[Run],
                  empty: dict[str, list[str]] | None = None) -> list[str]:
    """The per-searcher table and the conventions needed to read it; ``empty`` lists the
    studies left out because no trial of theirs finished (not counted as seeds)."""
    if target is None:
        lines = ["Target quality: not defined (no RandomSearch `random` runs).", ""]
    else:
        lines = [f"Target quality = RandomSearch median best val_loss at full budget: "
                 f"**{render.number(target)}** "
                 f"(over {render.seeds_text([r.seed for r in random_runs])}).", ""]
    lines += ["Conventions: a run is one study (one searcher, one seed); `seeds` counts "
              "distinct seeds. Best val_loss over COMPLETE trials; figures are "
              "median [min–max] over runs; `budget epochs` and `epochs used` (epochs "
              "trained, counted as the run's own summary counts them) are medians over runs; "
              "epochs / wall seconds to target are medians over runs of the cumulative cost at "
              "the first trial whose best-so-far meets the target (a run that never does counts "
              "as not reached); trial counts are sums over runs; overhead = median over the "
              "COMPLETE and PRUNED trials of all runs of `wall_seconds - fit_seconds` (FAIL "
              "trials left out).", ""]
    rows = [(s.searcher, s.backend, render.seeds_text(s.seeds, unit=False), _spread(s.best),
             _spread(s.val_accuracy),
             render.count(median(s.budget)), render.count(median(s.used)),
             render.count(median(s.to_target_epochs)),
             render.number(median(s.to_target_wall), 1),
             f"{sum(math.isfinite(x) for x in s.to_target_epochs)}/{len(s.seeds)}"
             if target is not None else render.DASH,
             f"{s.complete} / {s.pruned} / {s.failed}", render.number(s.overhead, 3)) for s in stats]
    untimed = sorted({s.timing_note for s in stats if s.timing_note})
    timing = ([f"Wall seconds and overhead are left out (—) for runs whose clocks are not a "
               f"timing measurement: {'; '.join(untimed)}. Per-trial cost is measured by "
               f"`bench overhead`, run alone.", ""] if untimed else [])
    return (lines + render.table(SEARCH_HEADER, rows) + timing + _left_out(empty or {})
            + render_verdict(stats))


def _short_runs(s: SearcherStats) -> str:
    """Runs that stopped short of their budget (killed, interrupted, --timeout, --max-trials)
    are not results at this budget: said beside the figure that includes them."""
    short = [(u, b) for u, b in zip(s.used, s.budget) if u < b]
    if not short:
        return ""
    u, b = short[0]
    return (f" ({len(short)} of {len(s.used)} runs unfinished, e.g. {render.count(u)} of "
            f"{render.count(b)} epochs)")


def render_verdict(stats: Sequence[SearcherStats]) -> list[str]:
    """The short answer to "which searcher should I use": rankings read off the table."""
    ranked = sorted((s for s in stats if s.best), key=lambda s: (median(s.best), s.searcher))
    if not ranked:
        return []
    fastest = sorted((s for s in stats if s.to_target_epochs),
                     key=lambda s: (median(s.to_target_epochs), s.searcher))
    lines = ["**Verdict at this budget.** Lowest median best val_loss: " + ", ".join(
        f"{s.searcher} {render.number(median(s.best))}{_short_runs(s)}" for s in ranked) + "."]
    if fastest:
        lines.append("Fewest epochs to the target (median over seeds): " + ", ".join(
            f"{s.searcher} {render.count(median(s.to_target_epochs))}" for s in fastest) + ".")
    lines.append("The min–max spread over seeds overlaps between searchers wherever the "
                 "medians are close: with this many seeds such differences are not significant.")
    return [" ".join(lines), ""]


def render_retrain(group: DatasetStudies) -> list[str]:
    """Retrained best configurations next to the baseline; nothing when none was retrained."""
    models = [("baseline", group.baselines)] if group.baselines else []
    models += [(s, [(r.seed, r.retrain) for r in runs if r.retrain])
               for s, runs in group.runs.items()]
    models = [(m, seeds) for m, seeds in models if seeds]
    if not models:
        return []

    def med(seeds: list[tuple[Any, dict]], key: str) -> float | None:
        return median(float(r[key]) for _, r in seeds if isinstance(r.get(key), (int, float)))

    lines = ["### Retrained best configurations (test split)", ""]
    lines += render.table(("model", "seeds", "test accuracy", "test loss", "parameters"),
                    [(m, len(seeds), render.number(med(seeds, "test_accuracy")),
                      render.number(med(seeds, "test_loss")), render.count(med(seeds, "n_params")))
                     for m, seeds in models])
    lines += ["Medians over seeds. Per seed:", ""]
    rows = [(m, seed, render.number(r.get("test_accuracy")), render.number(r.get("test_loss")),
             render.count(r.get("n_params")), render.json_text(r.get("params", {})))
            for m, seeds in models for seed, r in seeds]
    return lines + render.table(("model", "seed", "test accuracy", "test loss", "parameters",
                           "hyperparameters"), rows)


def _target1(stats: dict[str, SearcherStats], target: float | None) -> tuple[str, str]:
    optuna_s = [s for s in stats.values() if s.backend == BACKEND_OPTUNA and s.best]
    kt = [s for s in stats.values() if s.backend == BACKEND_KT and s.best]
    if target is None or not optuna_s or not kt:
        return "NOT MEASURED", "needs RandomSearch runs and at least one Optuna-backed searcher"
    best = min(optuna_s, key=lambda s: (median(s.best), s.searcher))
    budget, epochs = median(best.budget), median(best.to_target_epochs)
    if budget is None:
        return "NOT MEASURED", f"`{best.searcher}` studies record no `budget_epochs`"
    kt_best = min(kt, key=lambda s: (median(s.best), s.searcher))
    fast = epochs is not None and epochs <= budget / 3
    # both have a best value (filtered above), so both medians exist
    good = cast(float, median(best.best)) <= cast(float, median(kt_best.best))
    budget_txt = f"{render.count(budget)} / 3 = {render.number(budget / 3, 1)}"
    return ("MET" if fast and good else "NOT MET",
            f"best Optuna searcher `{best.searcher}` (lowest median best val_loss) reaches "
            f"{render.number(target)} after {render.count(epochs)} epochs "
            f"(median over seeds; limit {budget_txt}: "
            f"{'ok' if fast else 'over'}); its median best val_loss {render.number(median(best.best))} vs "
            f"best KerasTuner searcher `{kt_best.searcher}` {render.number(median(kt_best.best))} "
            f"({'no worse' if good else 'worse'})")


def _target2_measured(group: DatasetStudies) -> tuple[str, str] | None:
    """Target (2) from the ``bench overhead`` studies (searchers side by side, measured
    alone), the current code's rows only (``name@path`` rows are other checkouts), without
    the ``--artifacts`` runs (an optional store's cost, shown in its own table)."""
    verdicts = [(b.get("preset"), v) for _, b in group.extra.get(schema.KIND_OVERHEAD, [])
                if not b.get("artifacts")
                for v in b.get("verdicts", []) if isinstance(v, dict)
                and "@" not in str(v.get("text", "")).split(":")[0]]
    if not verdicts:
        return None
    ok = all(v.get("met") for _, v in verdicts)
    return ("MET" if ok else "NOT MET",
            "; ".join(f"preset `{p}`: {v.get('text')}" for p, v in verdicts)
            + " (`bench overhead`, see its tables)")


def _target2(stats: dict[str, SearcherStats], group: DatasetStudies | None = None) -> tuple[str, str]:
    measured = _target2_measured(group) if group is not None else None
    if measured is not None:
        return measured
    ref = stats.get(RANDOM_SEARCHER)
    optuna_s = [s for s in stats.values() if s.backend == BACKEND_OPTUNA and s.overhead is not None]
    if ref is None or ref.overhead is None or not optuna_s:
        return "NOT MEASURED", ("needs COMPLETE or PRUNED trials with wall and fit times of "
                                "RandomSearch and of an Optuna-backed searcher")
    ref_overhead = ref.overhead
    ok = all(s.overhead is not None and s.overhead <= ref_overhead / 2 for s in optuna_s)
    parts = ", ".join(f"`{s.searcher}` {render.number(s.overhead, 3)} s" for s in optuna_s)
    return ("MET" if ok else "NOT MET",
            f"median overhead per trial {parts} vs RandomSearch {render.number(ref.overhead, 3)} s "
            f"(limit {render.number(ref.overhead / 2, 3)} s, every Optuna-backed searcher must meet it)")


def _target3(group: DatasetStudies) -> tuple[str, str]:
    found = group.extra.get(schema.KIND_THROUGHPUT, [])
    if not found:
        return "NOT MEASURED", "no throughput study in the store"
    b = found[-1][1]
    bare, trial = b.get("bare_images_per_s"), b.get("trial_images_per_s")
    ratio = b.get("ratio", trial / bare if bare and trial is not None else None)
    if ratio is None:
        return "NOT MEASURED", "throughput study has no ratio"
    return ("MET" if ratio >= 0.95 else "NOT MET",
            f"{render.number(trial, 1)} images/s in a trial vs {render.number(bare, 1)} images/s bare "
            f"`model.fit`: ratio {render.number(ratio, 3)} (limit 0.950)")


def render_targets(stats: dict[str, SearcherStats], target: float | None,
                   group: DatasetStudies) -> list[str]:
    rows = [("(1) search efficiency: best Optuna searcher reaches the target within 1/3 of "
             "the budget epochs, and is no worse than any KerasTuner searcher at full budget",
             *_target1(stats, target)),
            ("(2) tuner overhead per trial <= 1/2 of RandomSearch's", *_target2(stats, group)),
            ("(3) training throughput inside a trial >= 95% of bare model.fit",
             *_target3(group))]
    return ["### Targets", ""] + render.table(("target", "status", "figures"), rows)


# ----------------------------------------------------------------------------- statistics
def _interval(ci: tuple[float, float] | None) -> str:
    return f"[{render.number(ci[0])}–{render.number(ci[1])}]" if ci else "[no interval: 1 run]"


def _distinct_seeds(runs: Sequence[Run]) -> int:
    return len({render.json_text(r.seed) for r in runs})


def render_statistics(runs: dict[str, list[Run]], png: Path, out_dir: Path,
                      title: str) -> list[str]:
    """Median and IQM with bootstrap intervals at 25/50/100% of the budget, mean ranks over
    the budget (plotted to ``png``), and one-sided tests of each Optuna-backed searcher
    against each KerasTuner one: what "better" means with spread over seeds."""
    percents = sorted(set(BUDGET_SHARES) | set(RANK_GRID))
    table = budget_table(runs, percents)
    ranks = {p: _mean_ranks(_column(table, i)) for i, p in enumerate(percents)}
    shared = len(shared_keys(_column(table, 0)))
    lines = [
        "Best val_loss of each run within 25%, 50% and 100% of its budget (`budget_epochs`): "
        "the best COMPLETE trial among those whose cumulative `epochs_trained`, in completion "
        "order, fit in that share. A run with none yet counts as inf (worse than any value, "
        "shown as \"not reached\") and stays in the sample; `no result yet` counts them. "
        "Median and interquartile mean (IQM: `scipy.stats.trim_mean`, 25% cut off each end) "
        "over runs, each with a 95% percentile-bootstrap interval (`scipy.stats.bootstrap`, "
        "9999 resamples, seed 0). Mean rank: each seed ranks the searchers (1 = lowest "
        f"val_loss, ties averaged), averaged over the {shared} seeds all searchers share.", ""]
    rows = []
    for p in BUDGET_SHARES:
        i = percents.index(p)
        for searcher, per_run in table.items():
            summary = summarize([float(v[i]) for v in per_run.values()])
            rank = (ranks[p] or {}).get(searcher)
            rows.append((f"{p}%", searcher, runs[searcher][0].backend,
                         render.seeds_text([r.seed for r in runs[searcher]], unit=False),
                         summary.n_inf, f"{render.number(summary.median)} {_interval(summary.median_ci)}",
                         f"{render.number(summary.iqm)} {_interval(summary.iqm_ci)}", render.number(rank, 2)))
    lines += render.table(("budget", "searcher", "backend", "seeds", "no result yet",
                     "median best val_loss [95% CI]", "IQM [95% CI]", "mean rank"), rows)
    if any(ranks.values()):
        plot_ranks(ranks, png, title)
        lines += [f"![{title}]({render.link(png, out_dir)})", "",
                  "Mean rank over the shared seeds at each percent of the budget (1 = lowest "
                  "val_loss, at the top).", ""]
    else:
        lines += ["No mean ranks: the searchers share no seed.", ""]
    return lines + render_to_target(runs) + render_tests(table, percents, runs)


def replay_target(runs: dict[str, list[Run]]) -> float | None:
    """RandomSearch's median best val_loss at 100% of the budget: the quality to reach."""
    random_runs = runs.get(RANDOM_SEARCHER)
    if not random_runs:
        return None
    return float(np.median([best_within(r, [100])[0] for r in random_runs]))


def epochs_to_target(runs: Sequence[Run], target: float) -> float:
    """Median over runs of the epochs spent when the best-so-far first met ``target``
    (inf for a run that never did; ``searcher_stats`` finds each run's)."""
    return float(np.median(searcher_stats(runs, target).to_target_epochs))


def render_to_target(runs: dict[str, list[Run]]) -> list[str]:
    """How many epochs each searcher needs for RandomSearch's full-budget quality."""
    target = replay_target(runs)
    if target is None or not math.isfinite(target):
        return []
    rows = []
    for searcher, rs in runs.items():
        spent = searcher_stats(rs, target).to_target_epochs
        med = float(np.median(spent))
        budget = median(r.budget_epochs for r in rs if r.budget_epochs)
        share = f"{100 * med / budget:.0f}%" if budget and math.isfinite(med) else render.DASH
        rows.append((searcher, render.seeds_text([r.seed for r in rs], unit=False),
                     f"{sum(math.isfinite(x) for x in spent)}/{len(rs)}",
                     render.count(med) if math.isfinite(med) else "not reached", share))
    return [f"**Epochs to RandomSearch's quality.** Target: RandomSearch's median best "
            f"val_loss at 100% of the budget, {render.number(target)}. Median over runs of the "
            f"cumulative epochs at the first trial whose best-so-far meets it (a run that "
            f"never does counts as not reached).", ""] + render.table(
        ("searcher", "seeds", "runs reaching it", "median epochs to it", "share of the budget"),
        rows)


def render_tests(table: BudgetTable, percents: Sequence[int],
                 runs: dict[str, list[Run]]) -> list[str]:
    """Verdict lines: each Optuna-backed searcher against each KerasTuner searcher."""
    challengers = [s for s, rs in runs.items() if rs[0].backend == BACKEND_OPTUNA]
    opponents = [s for s, rs in runs.items() if rs[0].backend == BACKEND_KT]
    if not challengers or not opponents:
        return ["No tests: they need an Optuna-backed and a KerasTuner searcher.", ""]
    lines = [f"**Tests.** One-sided Mann-Whitney U (`scipy.stats.mannwhitneyu`) in both "
             f"directions for each Optuna-backed searcher against each KerasTuner searcher, on "
             f"the best val_loss per run; p-values Holm-Bonferroni adjusted over all tests at "
             f"the same share of the budget; significant at adjusted p < {ALPHA}.", ""]
    for p in BUDGET_SHARES:
        column = _column(table, percents.index(p))
        verdicts = pairwise({s: list(v.values()) for s, v in column.items()},
                                  challengers, opponents, alpha=ALPHA, label=f"{p}% budget")
        lines += [f"- {v.line()}" for v in verdicts]
    return lines + [""]


def render_real_statistics(dataset: str, runs: dict[str, list[Run]], out_dir: Path,
                           plots_dir: Path) -> list[str]:
    """The statistics section for the real runs, once every searcher has enough seeds."""
    lines = ["### Statistics over seeds", ""]
    enough = {s: rs for s, rs in runs.items() if _distinct_seeds(rs) >= MIN_TEST_SEEDS}
    few = sorted(set(runs) - set(enough))
    if few:
        lines += [f"Left out of the statistics (fewer than {MIN_TEST_SEEDS} seeds): "
                  + ", ".join(f"`{s}` ({_distinct_seeds(runs[s])})" for s in few) + ".", ""]
    if len(enough) < 2:
        return lines + [f"Too few seeds for a test: at least two searchers need "
                        f"{MIN_TEST_SEEDS} seeds or more.", ""]
    return lines + render_statistics(enough, plots_dir / f"{render.slug(dataset)}_ranks.png", out_dir,
                                     f"{dataset}: mean rank over the budget")


def _value(x: Any) -> str:
    """A surrogate figure as recorded: numbers to 4 significant digits."""
    if x is None:
        return render.DASH
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x) if isinstance(x, (str, int)) else render.json_text(x)


def render_surrogate(surrogate: Any) -> list[str]:
    """The surrogate's fidelity figures, whichever keys the replay recorded."""
    if not isinstance(surrogate, dict) or not surrogate:
        return ["No surrogate fidelity figures recorded.", ""]
    lines = ["Surrogate fidelity, as the replay measured it:", ""]
    rho = surrogate.get("spearman_best")
    if isinstance(rho, (int, float)) and rho < schema.SURROGATE_MIN_SPEARMAN:
        lines += [f"**Weak surrogate:** its held-out Spearman of best val_loss is {rho:.2f}, below "
                  f"{schema.SURROGATE_MIN_SPEARMAN}: the replay's verdicts on this data set are "
                  "weak evidence, not a finding.", ""]
    scalars = sorted((k, v) for k, v in surrogate.items() if not isinstance(v, dict))
    if scalars:
        lines += render.table(("measure", "value"), [(k, _value(v)) for k, v in scalars])
    for key, sub in sorted((k, v) for k, v in surrogate.items() if isinstance(v, dict)):
        if sub and all(isinstance(x, dict) for x in sub.values()):
            columns = sorted({c for x in sub.values() for c in x})
            rows = [(name, *(_value(x.get(c)) for c in columns)) for name, x in sorted(sub.items())]
            lines += [f"`{key}`:", ""] + render.table((key, *columns), rows)
        else:
            lines += [f"`{key}`:", ""] + render.table(("measure", "value"),
                                                [(k, _value(v)) for k, v in sorted(sub.items())])
    return lines


def render_replay_summary(found: tuple[str, dict] | None) -> list[str]:
    """How the replay was produced (its summary study) and how faithful its surrogate is."""
    if found is None:
        return ["No replay summary study for this preset.", ""]
    name, b = found
    commands = [c for c in b.get("commands", []) if isinstance(c, dict)]
    if len(commands) > 1:  # several replay commands filled this summary: each one's figures
        lines = [f"Study `{name}`, filled by {len(commands)} replay commands:", ""]
        for c in commands:
            lines += _command(c) + [
                f"- {c.get('replayed_runs')} runs in {render.number(c.get('wall_seconds'), 1)} s; "
                f"searchers: {render.json_text(c.get('searchers'))}; "
                f"seeds: {render.seed_list(c.get('seeds'))}", ""]
        return lines + [f"- machine: {render.json_text(b.get('machine'))}",
                        f"- learning curves recorded in study `{b.get('record_study', render.DASH)}`",
                        ""] + render_surrogate(b.get("surrogate"))
    return [f"Study `{name}`:", ""] + _command(b) + [
        f"- wall time of the whole replay: {render.number(b.get('wall_seconds'), 1)} s",
        f"- machine: {render.json_text(b.get('machine'))}",
        f"- searchers: {render.json_text(b.get('searchers'))}; "
        f"seeds: {render.seed_list(b.get('seeds'))}; learning "
        f"curves recorded in study `{b.get('record_study', render.DASH)}`", ""] + render_surrogate(
        b.get("surrogate"))


def render_replay_vs_real(real: dict[str, list[Run]], replay: dict[str, list[Run]],
                          preset: str) -> list[str]:
    """Does the replay reproduce the real runs of the same preset? Per searcher, and in the
    order of the searchers (Spearman over their medians)."""
    real = {s: kept for s, rs in real.items() if (kept := [r for r in rs if r.preset == preset])}
    if not real:
        return []
    lines = [f"#### Replay vs real runs (preset `{preset}`)", "",
             "Best val_loss within 100% of the budget, as above; the replay range is its 5th "
             "to 95th percentile over runs (inverted CDF: values of actual runs); `inside` "
             "counts the real runs within it.", ""]
    rows, medians = [], {}
    for s in sorted(set(real) | set(replay)):
        real_best = [float(best_within(r, [100])[0]) for r in real.get(s, [])]
        replay_best = [float(best_within(r, [100])[0]) for r in replay.get(s, [])]
        span, inside = render.DASH, render.DASH
        if replay_best:
            lo, hi = (float(q) for q in np.quantile(replay_best, [0.05, 0.95],
                                                    method="inverted_cdf"))
            span = f"{render.number(lo)}–{render.number(hi)}"
            if real_best:
                inside = f"{sum(lo <= x <= hi for x in real_best)}/{len(real_best)}"
        if real_best and replay_best:
            medians[s] = (float(np.median(real_best)), float(np.median(replay_best)))
        rows.append((s, len(real_best), render.number(median(real_best)), len(replay_best),
                     render.number(median(replay_best)), span, inside))
    lines += render.table(("searcher", "real runs", "real median best", "replay runs",
                     "replay median best", "replay 5–95%", "inside"), rows)
    return lines + [_agreement(medians), ""]


def _agreement(medians: dict[str, tuple[float, float]]) -> str:
    """One sentence: do real runs and replay order the searchers alike?"""
    result = spearman([m[0] for m in medians.values()], [m[1] for m in medians.values()])
    if result.rho is None:
        return (f"No rank correlation: {result.n} searcher(s) in both, or one side's medians "
                "all equal.")
    text = (f"Spearman rank correlation between the searchers' real and replay medians "
            f"(`scipy.stats.spearmanr`, {result.n} searchers): rho = {result.rho:.2f}"
            + (f", p = {result.p:.2g}" if result.p is not None else ", no p-value for 2") + ". ")
    if result.rho > 0.999:
        text += "The replay orders the searchers exactly as the real runs do"
    elif result.rho >= 0.5:
        text += "The replay broadly agrees with the real runs on the order of the searchers"
    else:
        text += "The replay does not reproduce the real runs' order of the searchers"
    if result.p is None or result.p >= ALPHA:
        text += f" (with {result.n} searchers this is no significant evidence either way)"
    return text + "."


def render_replays(dataset: str, group: DatasetStudies, out_dir: Path,
                   plots_dir: Path) -> list[str]:
    """One section per replayed preset; replays never enter the real runs' tables."""
    summaries = {str(b.get("preset")): (name, b)
                 for name, b in group.extra.get(schema.KIND_REPLAY_SUMMARY, [])}
    lines: list[str] = []
    for preset in sorted(set(group.replays) | set(summaries) | set(group.replay_empty)):
        runs = group.replays.get(preset, {})
        lines += [f"### Replay, preset `{preset}`", "",
                  "Searches replayed on a surrogate of recorded learning curves (`bench "
                  "replay`): simulated runs, kept apart from the real runs above.", ""]
        lines += render_replay_summary(summaries.get(preset))
        lines += _left_out({preset: group.replay_empty.get(preset, [])})
        if not runs:
            lines += ["No replay studies with a finished trial for this preset.", ""]
            continue
        lines += [f"#### Statistics over replayed seeds (preset `{preset}`)", ""]
        png = plots_dir / f"{render.slug(dataset)}_replay_{render.slug(preset)}_ranks.png"
        lines += render_statistics(runs, png, out_dir,
                                   f"{dataset}, replay {preset}: mean rank over the budget")
        lines += render_replay_vs_real(group.runs, runs, preset)
    return lines


def _command(bench: dict) -> list[str]:
    return ["```", render.machine_free(str(bench.get("command", "(not recorded)"))), "```", ""]


def render_provenance(group: DatasetStudies) -> list[str]:
    """How the figures were produced: the compare run, throughput, memory and scaling runs."""
    lines: list[str] = []
    for name, b in group.extra.get(schema.KIND_COMPARE, []):
        versions = b.get("versions") or {}
        lines += [f"Study `{name}`:", ""] + _command(b) + [
            f"- wall time of the whole compare: {render.number(b.get('wall_seconds'), 1)} s",
            f"- machine: {render.json_text(b.get('machine'))}",
            "- versions: " + (", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
                               if isinstance(versions, dict) else render.json_text(versions)),
            f"- searchers: {render.json_text(b.get('searchers'))}; "
            f"seeds: {render.json_text(b.get('seeds'))}; "
            f"budget epochs: {render.json_text(b.get('budget_epochs'))}; "
            f"preset: {render.json_text(b.get('preset'))}",
            ""]
    for name, b in group.extra.get(schema.KIND_THROUGHPUT, []):
        lines += [f"Throughput study `{name}` (batch size {b.get('batch_size', render.DASH)}):", ""]
        lines += _command(b)
    if not lines:
        lines = ["No compare study for this data set in the store.", ""]
    lines = ["### How this was produced", ""] + lines
    lines += render_overhead(group) + render_memory(group) + render_backends(group)
    for name, b in group.extra.get(KIND_SCALING, []):
        workers = b.get("workers")
        lines += ["### Scaling", "", f"Study `{name}`:", ""]
        if isinstance(workers, dict):
            lines += render.table(("workers", "trials per hour"),
                            [(k, render.number(v, 1)) for k, v in sorted(workers.items(),
                                                               key=lambda kv: float(kv[0]))])
        else:
            lines += [f"- workers: {render.json_text(workers)}; trials per hour: "
                      f"{render.json_text(b.get('trials_per_hour'))}", ""]
        lines += [f"- ratio: {render.number(b.get('ratio'), 3)}", ""] + _command(b)
    return lines


# ----------------------------------------------------------------------------- plots
def _steps(points: Sequence[Point], grid: np.ndarray) -> np.ndarray:
    """A seed's step curve on the common grid; inf before its first result."""
    if not points:
        return np.full(grid.shape, np.inf)
    xs = np.array([p.epochs for p in points])
    ys = np.array([p.best for p in points] + [np.inf])  # index -1 = before the first trial
    return ys[np.searchsorted(xs, grid, side="right") - 1]


def plot_anytime(runs: dict[str, list[Run]], target: float | None, path: Path,
                 title: str) -> None:
    """Median best-so-far val_loss per searcher with a min..max band over seeds."""
    curves = {s: [anytime(r.trials) for r in rs] for s, rs in runs.items()}
    budgets = {r.budget_epochs for rs in runs.values() for r in rs if r.budget_epochs}
    # the grid runs to the budget so a seed that stopped early stays flat up to it
    grid = np.array(sorted({0.0, *budgets} | {p.epochs for cs in curves.values()
                                             for c in cs for p in c}))
    with matplotlib.style.context("default"):
        fig = render.figure()
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for i, (searcher, cs) in enumerate(curves.items()):
            ys = np.array([_steps(c, grid) for c in cs])
            med, lo, hi = (np.where(np.isinf(a), np.nan, a) for a in
                           (np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)))
            ax.step(grid, med, where="post", color=colors(i % 10),
                    label=f"{searcher} ({render.seeds_text([r.seed for r in runs[searcher]])})")
            ax.plot(grid[-1:], med[-1:], "o", color=colors(i % 10))  # the last step has no width
            ax.fill_between(grid, lo, hi, step="post", color=colors(i % 10), alpha=0.2,
                            linewidth=0)
        if target is not None:
            ax.axhline(target, color="black", linestyle="--", linewidth=1,
                       label="target (RandomSearch median)")
        if len(budgets) == 1:
            ax.axvline(next(iter(budgets)) / 3, color="grey", linestyle=":", linewidth=1,
                       label="1/3 of budget")
        ax.set_xlabel("cumulative epochs")
        ax.set_ylabel(f"best {schema.OBJECTIVE} so far")
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        render.save(fig, path)


def plot_ranks(ranks: dict[int, dict[str, float] | None], path: Path, title: str) -> None:
    """Mean rank per searcher against the share of the budget spent."""
    xs = [p for p, r in ranks.items() if r]
    searchers = list(next(r for r in ranks.values() if r))
    with matplotlib.style.context("default"):
        fig = render.figure()
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for i, searcher in enumerate(searchers):
            ax.plot([x / 100 for x in xs], [cast(dict, ranks[x])[searcher] for x in xs],
                    color=colors(i % 10), label=searcher)
        ax.set_xlim(0, 1)
        ax.set_ylim(len(searchers) + 0.1, 0.9)   # rank 1 (lowest val_loss) at the top
        ax.set_xlabel("share of the budget (epochs)")
        ax.set_ylabel("mean rank over seeds")
        ax.set_title(title)
        ax.legend(loc="best", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        render.save(fig, path)


def plot_importances(values: dict[str, float], path: Path, title: str) -> None:
    names = list(values)[::-1]
    with matplotlib.style.context("default"):
        fig = render.figure(7.0, 0.35 * len(names) + 1.5)
        ax = fig.add_subplot()
        ax.barh(names, [values[n] for n in names], color="tab:blue")
        ax.set_xlabel("importance (fANOVA, normalised)")
        ax.set_title(title)
        fig.tight_layout()
        render.save(fig, path)


# ----------------------------------------------------------------------------- entry
def render_calibration(group: DatasetStudies) -> list[str]:
    """How hard the data set is for the space: baseline vs random configurations."""
    lines: list[str] = []
    for name, b in group.extra.get(schema.KIND_CALIBRATION, []):
        lines += ["### Difficulty (calibration)", "", f"Study `{name}`:", "",
                  str(b.get("markdown", "")), ""] + _command(b)
    return lines


_OVERHEAD_ROWS = (("build", "build+compile"), ("clear", "clear_session (without its gc)"),
                  ("gc", "garbage collection"), ("ckpt", "checkpointing"),
                  ("kt_files", "KerasTuner JSON files"), ("store_w", "store writes and reads"),
                  ("tb", "TensorBoard writes"), ("sampler", "sampler / oracle"),
                  ("fit_edges", "model.fit outside its epochs"), ("other", "other"))


def render_overhead(group: DatasetStudies) -> list[str]:
    """Per-trial overhead side by side (``bench overhead``), with its breakdown."""
    lines: list[str] = []
    for name, b in group.extra.get(schema.KIND_OVERHEAD, []):
        # NAME@PATH rows measured another checkout alongside: history, kept in the store
        results = [r for r in b.get("results", []) if isinstance(r, dict)
                   and "@" not in str(r.get("searcher"))]
        if not results:
            continue
        lines += [f"### Per-trial overhead, preset `{b.get('preset')}` (study `{name}`)", "",
                  f"Median of wall - fit per trial (COMPLETE and PRUNED trials), and where the "
                  f"mean goes, in seconds per trial; budget {render.json_text(b.get('budget_epochs'))} "
                  f"epochs per searcher, seed {render.json_text(b.get('seed'))}"
                  + (f"; {b['rounds']} rounds (every searcher once per round, in the order "
                     "of the columns; trials pooled)" if (b.get("rounds") or 1) > 1 else "")
                  + ".", ""]
        header = ["per trial"] + [str(r.get("searcher")) for r in results]
        rows: list[list[Any]] = [["trials", *(r.get("trials") for r in results)],
                                 ["median overhead (wall - fit)",
                                  *(render.number(r.get("median_overhead_s"), 3) for r in results)],
                                 ["mean overhead",
                                  *(render.number(r.get("mean_overhead_s"), 3) for r in results)]]
        if any(r.get("round_medians_s") for r in results):
            rows.append(["median, round by round", *(" / ".join(
                render.number(v, 3) for v in r.get("round_medians_s") or []) for r in results)])
        for key, label in _OVERHEAD_ROWS:
            values = []
            for r in results:
                comp = r.get("components_s") or {}
                v = comp.get(key)
                if key == "store_w" and v is not None:
                    v += comp.get("store_r") or 0.0
                values.append(render.number(v, 3))
            rows.append([f"  {label}", *values])
        rows.append(["after the wall clock (not in the figure)",
                     *(render.number(sum((r.get("after_wall_s") or {}).values()), 3) for r in results)])
        if b.get("artifacts"):  # --artifacts: uploads run after the trial's result is told
            rows.append(["  of which artifact store (checkpoint uploads)", *(render.number(
                (r.get("after_wall_s") or {}).get("artifacts"), 3) for r in results)])
        rows.append(["SQL commits per trial",
                     *(render.number(sum((r.get("sql_commits") or {}).values()), 1) for r in results)])
        lines += render.table(header, rows)
        lines += [f"- {v.get('text')}" for v in b.get("verdicts", []) if isinstance(v, dict)
                  and "@" not in str(v.get("text", "")).split(":")[0]]
        lines += ["", f"- machine: {render.json_text(b.get('machine'))}", ""] + _command(b)
    return lines


def render_memory(group: DatasetStudies) -> list[str]:
    """Resident memory over many trials per searcher (``bench memory``) and disk per trial."""
    lines: list[str] = []
    for name, b in group.extra.get(KIND_MEMORY, []):
        rows = b.get("searchers")
        per = b.get("trials_per_process")
        if isinstance(rows, dict):
            how = (f"a fresh trial process every {per} trials" if per
                   else "every trial in one process")
            lines += [f"### Memory and disk: {how} (study `{name}`)", ""]
            lines += render.table(
                ("searcher", "trials", "processes", "RSS at trial 20 MiB", "RSS at last trial MiB",
                 "growth MiB (mean of last 20 - first 20)", "peak RSS of trial processes MiB",
                 "launcher peak MiB", "disk MiB / 100 trials", "checkpoints MiB / 100 trials",
                 "new trial process s"),
                [(s, r.get("trials"), r.get("processes"), render.number(r.get("rss_at_window_mb"), 0),
                  render.number(r.get("rss_at_last_mb"), 0), render.number(r.get("growth_mb"), 0),
                  render.number(r.get("peak_trial_process_mb"), 0),
                  render.number(r.get("peak_launcher_mb"), 0),
                  render.number(r.get("disk_mb_per_100_trials"), 1),
                  render.number(r.get("checkpoint_mb_per_100_trials"), 1),
                  render.number(r.get("replacement_seconds"), 1))
                 for s, r in sorted(rows.items())])
        else:
            lines += [f"### Memory: {b.get('loop', 'search')} (study `{name}`)", "",
                      f"{render.json_text(b.get('trials'))} models in one process: mean RSS of the first "
                      f"{render.number(b.get('first_window_mean_mb'), 0)} MiB, of the last "
                      f"{render.number(b.get('last_window_mean_mb'), 0)} MiB, growth "
                      f"{render.number(b.get('growth_mb'), 0)} MiB, "
                      f"peak {render.number(b.get('peak_rss_mb'), 0)} MiB.", ""]
        lines += [f"- machine: {render.json_text(b.get('machine'))}", ""]
        commands: dict[str, list[str]] = {}  # rows re-measured later carry their own
        for s, r in sorted((rows or {}).items()):
            if isinstance(r, dict) and r.get("command"):
                commands.setdefault(str(r["command"]), []).append(s)
        if len(commands) > 1:
            for command, names in commands.items():
                lines += [f"{', '.join(names)}:", "", "```", render.machine_free(command), "```", ""]
        else:
            lines += _command(b)
    return lines


def plot_memory(group: DatasetStudies, path: Path, title: str) -> bool:
    """RSS of the process that ran each trial, per searcher and trials-per-process."""
    def per_process(b: dict[str, Any]) -> str:
        return f"{b['trials_per_process']} per process" if b.get("trials_per_process") else "1 process"

    curves = [(f"{s} ({per_process(b)})", r.get("rss_mb") or [])
              for _, b in group.extra.get(KIND_MEMORY, []) if isinstance(b.get("searchers"), dict)
              for s, r in sorted(b["searchers"].items())]
    if not curves:
        return False
    with matplotlib.style.context("default"):
        fig = render.figure()
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for i, (label, rss) in enumerate(curves):
            ax.plot(range(1, len(rss) + 1), rss, color=colors(i % 10), linewidth=1, label=label)
        ax.set_xlabel("trial")
        ax.set_ylabel("RSS of the process that ran it (MiB)")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        render.save(fig, path)
    return True


def render_dataset(dataset: str, group: DatasetStudies, out_dir: Path,
                   plots_dir: Path) -> list[str]:
    """The markdown section of one data set; writes its plots as a side effect."""
    lines = [f"## Data set `{dataset}`", ""] + render_calibration(group)
    random_runs = group.runs.get(RANDOM_SEARCHER, [])
    target = median(_complete_value(bt) for r in random_runs if (bt := best_trial(r.trials)))
    stats = {s: searcher_stats(rs, target) for s, rs in group.runs.items()}
    if stats:
        anytime_png = plots_dir / f"{render.slug(dataset)}_anytime.png"
        plot_anytime(group.runs, target, anytime_png, f"{dataset}: anytime performance")
        lines += ["### Search", ""] + render_search(list(stats.values()), target,
                                                     random_runs, group.empty)
        lines += [f"![anytime performance on {dataset}]({render.link(anytime_png, out_dir)})", "",
                  "Best-so-far val_loss against cumulative epochs: median over runs, band "
                  "min–max over runs, each run's step curve evaluated on the union of all "
                  "runs' epoch counts.", ""]
        lines += render_real_statistics(dataset, group.runs, out_dir, plots_dir)
    else:
        lines += ["No search studies with a finished trial for this data set.", ""]
        lines += _left_out(group.empty)
    lines += render_retrain(group)
    if any(len(r.objectives) > 1 for rs in group.runs.values() for r in rs):
        lines += render_pareto(dataset, group, out_dir, plots_dir)
    if stats:
        lines += ["### Hyperparameter importances", ""]
        pooled = [t for rs in group.runs.values() for r in rs for t in r.trials]
        values, note = importances(pooled)
        lines += [note, ""]
        if values:
            png = plots_dir / f"{render.slug(dataset)}_importance.png"
            plot_importances(values, png, f"{dataset}: hyperparameter importance")
            lines += render.table(("hyperparameter", "importance"),
                            [(k, render.number(v, 3)) for k, v in values.items()])
            lines += [f"![hyperparameter importances on {dataset}]({render.link(png, out_dir)})", ""]
    lines += render_targets(stats, target, group)
    lines += render_replays(dataset, group, out_dir, plots_dir)
    lines += warm_start_report.render_warm_start(warm_start_report.records(group.extra))
    lines += render_provenance(group)
    memory_png = plots_dir / f"{render.slug(dataset)}_memory.png"
    if plot_memory(group, memory_png, f"{dataset}: resident memory per trial"):
        lines += [f"![resident memory per trial on {dataset}]({render.link(memory_png, out_dir)})", ""]
    return lines


def _verdicts_at_full_budget(runs: dict[str, list[Run]]) -> list[Any]:
    """The statistics section's tests at 100% of the budget (same family, same Holm)."""
    challengers = [s for s, rs in runs.items() if rs[0].backend == BACKEND_OPTUNA]
    opponents = [s for s, rs in runs.items() if rs[0].backend == BACKEND_KT]
    column = {s: [float(best_within(r, [100])[0]) for r in rs] for s, rs in runs.items()}
    return pairwise(column, challengers, opponents, alpha=ALPHA, label="100% budget")


def answer_for(dataset: str, group: DatasetStudies) -> list[str]:
    """A few lines per data set: which searcher, how sure (verdicts), what it costs."""
    lines: list[str] = []
    for preset, runs in group.replays.items():
        if not runs:
            continue
        best = {s: float(np.median([best_within(r, [100])[0] for r in rs]))
                for s, rs in runs.items()}
        winner = min(best, key=lambda s: (best[s], s))
        kt = {s: v for s, v in best.items() if runs[s][0].backend == BACKEND_KT}
        budget = median(r.budget_epochs for rs in runs.values() for r in rs if r.budget_epochs)
        seeds = sorted({_distinct_seeds(rs) for rs in runs.values()})
        per = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
        lines += [f"**`{dataset}`**, replay of preset `{preset}` ({render.count(budget)}-epoch budget, "
                  f"{per} seeds per searcher):", ""]
        text = (f"- Lowest median best val_loss at 100% of the budget: `{winner}` "
                f"({runs[winner][0].backend}) {render.number(best[winner])}")
        if kt:
            top_kt = min(kt, key=lambda s: (kt[s], s))
            text += f"; best KerasTuner searcher `{top_kt}` {render.number(kt[top_kt])}"
        lines.append(text + ".")
        focus = DEFAULT_SEARCHER if DEFAULT_SEARCHER in runs else winner
        if runs[focus][0].backend == BACKEND_OPTUNA:
            mine = [v for v in _verdicts_at_full_budget(runs) if focus in (v.a, v.b)]
            role = " (the default Optuna-backed searcher)" if focus == DEFAULT_SEARCHER else ""
            lines += [f"- `{focus}`{role} against each KerasTuner searcher:"]
            lines += [f"  - {v.line()}" for v in mine]
        target = replay_target(runs)
        if target is not None and math.isfinite(target) and budget:
            spent = epochs_to_target(runs[focus], target)
            third = render.count(budget / 3)
            verdict = (f"within a third of the budget ({third} epochs): target met" if spent <= budget / 3
                       else f"not within a third of the budget ({third} epochs): target not met")
            reached = (f"reaches RandomSearch's median full-budget quality ({render.number(target)}) after "
                       f"{render.count(spent)} epochs (median over seeds)" if math.isfinite(spent) else
                       f"does not reach RandomSearch's median full-budget quality ({render.number(target)}) "
                       f"in most runs")
            lines.append(f"- `{focus}` {reached}; {verdict}.")
        lines.append("")
    if group.runs:
        lines += _answer_real(dataset, group.runs, group)
    return lines


def _answer_real(dataset: str, runs: dict[str, list[Run]], group: DatasetStudies) -> list[str]:
    """The real runs' part of the answer: medians, and the retrained models against the
    baseline. Single-objective runs only: a multi-objective run searched for another
    thing (its section answers for it)."""
    runs = {s: rs for s, rs in runs.items() if all(len(r.objectives) == 1 for r in rs)}
    stats = {s: searcher_stats(rs, None) for s, rs in runs.items()}
    best = {s: m for s, st in stats.items() if (m := median(st.best)) is not None}
    if not best:
        return []
    optuna_backed = {s: v for s, v in best.items() if runs[s][0].backend == BACKEND_OPTUNA}
    kt = {s: v for s, v in best.items() if runs[s][0].backend == BACKEND_KT}
    if DEFAULT_SEARCHER in best:
        focus = DEFAULT_SEARCHER
    elif optuna_backed:
        focus = min(optuna_backed, key=lambda s: (optuna_backed[s], s))
    else:
        return [f"**`{dataset}`, real runs:** no Optuna-backed searcher yet.", ""]
    seeds = _distinct_seeds(runs[focus])
    text = (f"**`{dataset}`, real runs:** `{focus}` median best val_loss {render.number(best[focus])} over "
            f"{seeds} seed(s)")
    if kt:
        top = min(kt, key=lambda s: (kt[s], s))
        worse = "no worse than" if best[focus] <= kt[top] else "worse than"
        text += (f", {worse} the best KerasTuner searcher `{top}` {render.number(kt[top])} over "
                 f"{_distinct_seeds(runs[top])} seed(s)")
    lines = [text + "."]
    mine = [r.retrain for r in runs[focus] if r.retrain]
    if mine and group.baselines:
        acc = median(float(r["test_accuracy"]) for r in mine if "test_accuracy" in r)
        base = median(float(b["test_accuracy"]) for _, b in group.baselines
                      if "test_accuracy" in b)
        lines.append(f"Its retrained best models: median test accuracy {render.number(acc)} against the "
                     f"baseline's {render.number(base)} ({len(mine)} and {len(group.baselines)} seeds).")
    measured = _target2_measured(group)
    if measured is not None:
        lines.append(f"Cost per trial, measured side by side: {measured[1]}.")
        return [" ".join(lines), ""]
    overhead = stats[focus].overhead
    ref = stats.get(RANDOM_SEARCHER)
    if overhead is not None and ref is not None and ref.overhead is not None:
        ref_overhead = ref.overhead
        lines.append(f"Cost: median overhead per trial (wall - fit) {render.number(overhead, 3)} s against "
                     f"RandomSearch's {render.number(ref_overhead, 3)} s, from these runs' own clocks "
                     f"(no `bench overhead` study for this data set: not a side-by-side "
                     f"timing).")
    return [" ".join(lines), ""]


# ----------------------------------------------------------------------------- at a glance
GLANCE_HEADER = ("data set", "recommended searcher", "against the other library's best",
                 "epochs to RandomSearch's quality", "overhead per trial", "memory")


def _glance_preset(group: DatasetStudies) -> str | None:
    """The replay preset the glance reads: ``standard`` where it was replayed."""
    presets = [p for p, runs in group.replays.items() if runs]
    return "standard" if "standard" in presets else (sorted(presets)[0] if presets else None)


def _glance_verdict(verdicts: list[Any], mine: str, other: str, weak: float | None) -> str:
    """The test of ``mine`` against ``other`` at the full budget, in words."""
    pair = [v for v in verdicts if {v.a, v.b} == {mine, other}]
    if not pair:
        return f"no verdict: `{mine}` and `{other}` were not tested against each other"
    v = pair[0]
    seeds = f"{min(v.n)} seeds each" if v.n[0] == v.n[1] else f"{v.n[0]} and {v.n[1]} seeds"
    if v.winner is None:
        text = f"no significant difference from `{other}` ({seeds}, p = {min(v.p_adjusted):.2g})"
    else:
        word = "better than" if v.winner == mine else "worse than"
        p = v.p_adjusted[0 if v.winner == v.a else 1]
        text = f"{word} `{other}` (p = {p:.2g}, {seeds})"
    if weak is not None:
        text += f"; weak evidence: the replay's surrogate ranks configurations at Spearman {weak:.2f} (< 0.8)"
    return text


def _weak_surrogate(group: DatasetStudies, preset: str) -> float | None:
    for _, b in group.extra.get(schema.KIND_REPLAY_SUMMARY, []):
        rho = (b.get("surrogate") or {}).get("spearman_best") if str(b.get("preset")) == preset else None
        if isinstance(rho, (int, float)) and rho < schema.SURROGATE_MIN_SPEARMAN:
            return float(rho)
    return None


def _glance_overhead(group: DatasetStudies, searcher: str) -> str:
    """The searcher's median overhead per trial from ``bench overhead`` (measured alone,
    side by side with RandomSearch), the standard preset's where it was measured."""
    found = []
    for _, b in group.extra.get(schema.KIND_OVERHEAD, []):
        rows = {str(r.get("searcher")): r for r in b.get("results", []) if isinstance(r, dict)}
        if b.get("artifacts") or searcher not in rows:
            continue
        found.append((b.get("preset") != "standard", str(b.get("preset")), rows))
    if not found:
        return "not measured"
    _, preset, rows = min(found, key=lambda f: (f[0], f[1]))
    mine = rows[searcher].get("median_overhead_s")
    ref = rows.get(RANDOM_SEARCHER, {}).get("median_overhead_s")
    if not isinstance(mine, (int, float)):
        return "not measured"
    ratio = f", {mine / ref:.2f}x RandomSearch's" if isinstance(ref, (int, float)) and ref else ""
    return f"{render.number(mine, 3)} s{ratio} (preset `{preset}`)"


def _glance_memory(group: DatasetStudies, searcher: str) -> str:
    """Peak resident memory of a trial process and growth over the measured trials."""
    for _, b in group.extra.get(KIND_MEMORY, []):
        rows = b.get("searchers")
        row = rows.get(searcher) if isinstance(rows, dict) else None
        if isinstance(row, dict) and row.get("peak_trial_process_mb") is not None:
            return (f"{render.number(row.get('peak_trial_process_mb'), 0)} MiB peak, "
                    f"{render.number(row.get('growth_mb'), 0)} MiB growth over "
                    f"{render.json_text(row.get('trials'))} trials")
    return "not measured"


def glance_row(dataset: str, group: DatasetStudies) -> tuple[str, ...]:
    """One data set's answer in a row: the recommended searcher (the default ``optuna``
    unless a searcher is significantly better than it in the replay at the full budget),
    its test against the other library's best (lowest median), its epochs to RandomSearch's
    median full-budget quality, its cost per trial and its memory."""
    preset = _glance_preset(group)
    if preset is None:
        return (f"`{dataset}`", "no verdict: no replay (too few seeds for a test)", "", "", "", "")
    runs = group.replays[preset]
    best = {s: float(np.median([best_within(r, [100])[0] for r in rs])) for s, rs in runs.items()}
    mine = DEFAULT_SEARCHER if DEFAULT_SEARCHER in best else min(best, key=lambda s: (best[s], s))
    # the default stands unless another searcher is significantly better than it
    verdicts = _verdicts_at_full_budget(runs)
    beaten_by = [v.winner for v in verdicts if mine in (v.a, v.b) and v.winner not in (None, mine)]
    if beaten_by:
        mine = min(beaten_by, key=lambda s: (best[s], s))
    others = {s: v for s, v in best.items() if runs[s][0].backend != runs[mine][0].backend}
    verdict = (_glance_verdict(verdicts, mine, min(others, key=lambda s: (others[s], s)),
                               _weak_surrogate(group, preset))
               if others else "no verdict: only one library was replayed")
    budget = median(r.budget_epochs for rs in runs.values() for r in rs if r.budget_epochs)
    target = replay_target(runs)
    if target is None or not math.isfinite(target) or not budget:
        epochs = "no RandomSearch replay"
    else:
        spent = epochs_to_target(runs[mine], target)
        epochs = (f"{render.count(spent)} of {render.count(budget)}" if math.isfinite(spent)
                  else f"not within {render.count(budget)} (most seeds)")
    library = "Optuna-backed" if runs[mine][0].backend == BACKEND_OPTUNA else "on KerasTuner's engine"
    return (f"`{dataset}`", f"`{mine}` ({library})", verdict, epochs,
            _glance_overhead(group, mine), _glance_memory(group, mine))


def render_glance(data: dict[str, DatasetStudies]) -> list[str]:
    """The answer in one table (README's "Which searcher should I use?" quotes it)."""
    rows = [glance_row(d, data[d]) for d in sorted(data)]
    return render.table(GLANCE_HEADER, rows)


def render_across_datasets(data: dict[str, DatasetStudies], plots: Path, out_dir: Path) -> list[str]:
    """The searchers over every (data set, seed) block: the replays at each data set's
    glance preset, then the real runs (TensorFlow's sections: another backend's runs are
    the same searches timed differently, not more blocks)."""
    groups = {d: g for d, g in data.items() if " on " not in d}
    replays = {d: g.replays[p] for d, g in groups.items() if (p := _glance_preset(g))}
    real = {d: g.runs for d, g in groups.items() if g.runs}
    if len(replays) < 2 and len(real) < 2:
        return []
    lines = ["### Across data sets", ""]
    if len(replays) >= 2:
        lines += render_across("replay", across.compare(replays, best_within),
                               plots / "across_replay_cd.png", out_dir)
        weak = {d: rho for d, g in groups.items()
                if (p := _glance_preset(g)) and (rho := _weak_surrogate(g, p)) is not None}
        if weak:
            lines += ["Weak evidence: the replay's surrogate ranks configurations at Spearman "
                      + ", ".join(f"{rho:.2f} on `{d}`" for d, rho in sorted(weak.items()))
                      + " (< 0.8); the real runs below check it.", ""]
    if len(real) >= 2:
        lines += render_across("real runs", across.compare(real, best_within),
                               plots / "across_real_cd.png", out_dir)
    return lines


def render_answer(data: dict[str, DatasetStudies], notes: str | None,
                  plots: Path | None = None, out_dir: Path | None = None) -> list[str]:
    lines = ["## Answer", "",
             "Which searcher finds the best model for the least compute, per data set: the "
             "replay benchmark (many seeds, simulated training) names it and tests it against "
             "the other library's best searcher at the full budget; cost and memory are "
             "measured alone, side by side. Every figure is read from the store below.", ""]
    lines += render_glance(data)
    lines += ["The same, in more words (real runs check the replay):", ""]
    for dataset in sorted(data):
        lines += answer_for(dataset, data[dataset])
    if plots is not None and out_dir is not None:
        lines += render_across_datasets(data, plots, out_dir)
    if notes:
        lines += [notes.rstrip("\n"), ""]
    return lines


def notes_path(storage: str) -> Path | None:
    """An SQLite store's notes: ``<store>.notes.md`` beside it (prose the store cannot hold:
    how the figures were made, what they mean), included after the answer."""
    if not storage.startswith("sqlite:///"):
        return None
    db = Path(storage[len("sqlite:///"):])
    return db.with_suffix(".notes.md")


def write_report(storage: str, out: str | Path = "RESULTS.md",
                 plots_dir: str | Path = "results") -> Path:
    """Write RESULTS.md (and PNG plots under ``plots_dir``) for every data set in the store.

    Raises UserError when the store holds no benchmark study.
    """
    data = collect(storage)
    out, plots = Path(out), Path(plots_dir)
    _check_targets(out, plots)
    own = storage[len("sqlite:///"):] if storage.startswith("sqlite:///") else ""
    token = render.project_files.set((own,) if own and not own.startswith("/") else ())
    try:
        with render.staged() as figures:
            text = _render(storage, data, out, plots)
            written: list[Path] = []
            target = out
            try:  # every figure, then RESULTS.md: each whole (a full disk leaves no half file)
                for target, content in [*figures.items(), (out, text.encode("utf-8"))]:
                    render.write_whole(target, content)
                    written.append(target)
            except OSError as exc:
                message = (f"cannot write {target}: {exc.strerror or exc}"
                           + (f" ({len(written)} plot(s) already replaced; RESULTS.md not written)"
                              if written else "; nothing was written"))
                if exc.errno == errno.ENOSPC:
                    raise RunError(message) from None
                raise UserError(message) from None
    finally:
        render.project_files.reset(token)
    return out


def _check_targets(out: Path, plots: Path) -> None:
    """--out must be a file that can be written, --plots-dir a folder: said before anything
    renders or is written."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; pass the file to write (e.g. {out / 'RESULTS.md'})")
    if plots.exists() and not plots.is_dir():
        raise UserError(f"--plots-dir {plots} is a file, not a folder")
    for folder, flag in ((out.absolute().parent, "--out"), (plots.absolute(), "--plots-dir")):
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(f"{flag}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{flag}: {existing} is not writable")
        if existing == folder:  # a probe: access() says yes to root on a read-only mount
            probe = folder / f".bench-report-probe-{os.getpid()}"
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise UserError(f"{flag}: cannot write in {folder}: {exc.strerror or exc}") from None


def _render(storage: str, data: dict[str, DatasetStudies], out: Path, plots: Path) -> str:
    lines = ["# Results", "",
             f"Read from the study store `{store.display_url(storage)}`; "
             f"data sets: {', '.join(f'`{d}`' for d in sorted(data))}.", ""]
    notes = notes_path(storage)
    lines += render_answer(data, notes.read_text(encoding="utf-8")
                           if notes is not None and notes.is_file() else None, plots, out.parent)
    for dataset in sorted(data):
        lines += render_dataset(dataset, data[dataset], out.parent, plots)
    return "\n".join(lines).rstrip("\n") + "\n"
