"""Accuracy against model size: the Pareto fronts and hypervolumes of multi-objective runs.

Issue 15. A multi-objective run is one study like any other (``<dataset>-<searcher>-s<seed>``)
with ``study.directions`` = [MINIMIZE, MINIMIZE] and metric names ``["val_loss", "params"]``
(``Study.set_metric_names``; the ``bench`` attr's ``objectives`` when they are missing).
A COMPLETE trial's ``values`` are [val_loss, number of parameters]; a PRUNED one may have
none. A trial larger than the run's ``max_params`` (``bench`` attr) is infeasible: Optuna's
constraint attribute holds ``n_params - max_params`` > 0 (either form Optuna reads,
``FrozenTrial.constraints``). The study user attr ``retrain_front`` lists the run's
retrained Pareto-optimal trials: ``{"trial", "params", "n_params", "val_loss",
"test_accuracy", "test_loss"}``.

Optuna decides what is on a front (``study.best_trials``' own function, infeasible trials
never) and computes the hypervolume (its own exact algorithm); both are private Optuna
functions, reached through ``searchers.seam`` (``pareto_front``, ``hypervolume``).

The hypervolume is measured on (val_loss, log10(parameters)), both minimised, from a
reference point fixed per data set (``reference_point``):

- val_loss: ln(number of classes), the cross-entropy of a model that predicts every class
  with equal probability. A configuration worse than that has learnt nothing and adds
  nothing to a hypervolume.
- parameters: the runs' size cap (``max_params``, the largest one if the runs differ): the
  largest model the user accepts, so a model at the cap adds no area and a larger one is
  infeasible anyway. Where some run has no cap: the largest model any of the data set's
  multi-objective runs trained (every searcher and seed), the largest the search space
  produced here.
- log10, not parameters themselves: size matters in ratios. A model ten times smaller gains
  one unit of width whether it has 500 or 50,000 parameters; on a linear axis the area
  would be decided by the few large models and a front of small ones would barely count.
  The unit is therefore val_loss x decades of parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib
import matplotlib.style
import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from bench.core import schema
from bench.report import render
from bench.report.runs import DatasetStudies, Run, median, seed_key
from searchers import seam

LOSS = schema.OBJECTIVE      # "val_loss": first objective
PARAMS = "params"            # second objective: the model's parameter count
OBJECTIVES = (LOSS, PARAMS)
DIRECTIONS = ("minimize", "minimize")


# ----------------------------------------------------------------------------- Optuna
def _optuna_front(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """Optuna's own Pareto front of ``trials``: the function behind ``study.best_trials``
    (COMPLETE trials only; with constraints, the feasible ones only; a trial without
    constraints is feasible, so this equals ``best_trials`` on one study). Input order kept."""
    return seam.pareto_front(list(trials), [StudyDirection[d.upper()] for d in directions])


def _optuna_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Optuna's exact hypervolume (``seam.hypervolume``, minimisation, every point at or
    below the reference point)."""
    return seam.hypervolume(points, reference)


# ----------------------------------------------------------------------------- compute
def feasible(trial: FrozenTrial) -> bool:
    """Optuna's rule: every constraint value <= 0 (none set: feasible)."""
    return all(c <= 0 for c in trial.constraints.values())


def supported(run: Run) -> bool:
    """A run this module reads: objectives (val_loss, params), both minimised."""
    return run.objectives == OBJECTIVES and run.directions == DIRECTIONS


@dataclass(frozen=True)
class FrontPoint:
    """One Pareto-optimal trial, with its retraining where the run retrained it."""

    searcher: str
    seed: Any
    trial: int
    val_loss: float
    n_params: int
    params: dict
    retrain: dict | None


def _point(run: Run, t: FrozenTrial) -> FrontPoint:
    retrained = next((r for r in run.retrain_front or [] if r.get("trial") == t.number), None)
    return FrontPoint(run.searcher, run.seed, t.number, float(t.values[0]), int(t.values[1]),
                      dict(t.params), retrained)


def front(runs: Sequence[Run]) -> list[FrontPoint]:
    """The Pareto front of the union of the runs' trials (one run: its own front, what
    ``study.best_trials`` returns), ordered by size, then val_loss."""
    owner = {id(t): run for run in runs for t in run.trials}
    chosen = _optuna_front([t for run in runs for t in run.trials], DIRECTIONS)
    points = [_point(owner[id(t)], t) for t in chosen]
    return sorted(points, key=lambda p: (p.n_params, p.val_loss, seed_key(p.seed), p.trial))


@dataclass(frozen=True)
class Reference:
    """The hypervolume's reference point, and where each coordinate comes from."""

    val_loss: float
    n_params: float
    val_loss_from: str
    n_params_from: str

    def point(self) -> np.ndarray:
        return np.array([self.val_loss, math.log10(self.n_params)])

    def text(self) -> str:
        return (f"val_loss = {render.number(self.val_loss)} ({self.val_loss_from}), parameters = "
                f"{render.count(self.n_params)} ({self.n_params_from})")


def _complete(runs: Iterable[Run]) -> list[FrozenTrial]:
    return [t for r in runs for t in r.trials if t.state == TrialState.COMPLETE and t.values]


def reference_point(runs: Sequence[Run]) -> Reference | None:
    """The data set's reference point (module docstring); None without a COMPLETE trial."""
    done = _complete(runs)
    if not done:
        return None
    classes = [int(k) for r in runs if isinstance(k := (r.bench.get("dataset_info") or {})
                                                   .get("num_classes"), int) and k > 1]
    if classes:
        k = max(classes)
        loss, loss_from = math.log(k), f"ln {k} classes: a chance-level model"
    else:
        loss, loss_from = (max(float(t.values[0]) for t in done),
                           "the worst val_loss trained: the number of classes is not recorded")
    caps = [c for r in runs if isinstance(c := r.bench.get("max_params"), int) and c > 0]
    if len(caps) == len(runs):
        size = float(max(caps))
        size_from = ("the runs' size cap `max_params`" if len(set(caps)) == 1
                     else "the largest of the runs' size caps `max_params`")
    else:
        size = float(max(max(float(t.values[1]) for t in done), 1.0))
        size_from = "the largest model these runs trained: no size cap on every run"
    return Reference(loss, size, loss_from, size_from)


def hypervolume(points: Iterable[tuple[float, float]], ref: Reference) -> float:
    """Hypervolume of (val_loss, parameters) points on (val_loss, log10 parameters) from the
    reference point; points beyond it in either coordinate add nothing (Optuna refuses them)."""
    xy = np.array([[loss, math.log10(max(float(n), 1.0))] for loss, n in points],
                  dtype=float).reshape(-1, 2)
    top = ref.point()
    return _optuna_hypervolume(xy[np.all(xy <= top, axis=1)], top)


def run_hypervolume(run: Run, ref: Reference) -> float:
    return hypervolume(((p.val_loss, p.n_params) for p in front([run])), ref)


@dataclass
class SearcherVolume:
    """Hypervolume of each run of one searcher (its own front), in seed order."""

    searcher: str
    backend: str
    seeds: list[Any]
    volumes: list[float]
    front_sizes: list[int]
    feasible: int = 0       # COMPLETE trials, sums over runs
    infeasible: int = 0
    pruned: int = 0

    def spread(self) -> tuple[float, float, float, float, float]:
        return spread(self.volumes)


def spread(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """median, 25th and 75th percentile (numpy's linear interpolation), min, max."""
    v = np.asarray(values, dtype=float)
    q25, q50, q75 = (float(q) for q in np.percentile(v, [25, 50, 75]))
    return q50, q25, q75, float(v.min()), float(v.max())


def searcher_volume(runs: Sequence[Run], ref: Reference) -> SearcherVolume:
    done = _complete(runs)
    return SearcherVolume(
        runs[0].searcher, runs[0].backend, [r.seed for r in runs],
        [run_hypervolume(r, ref) for r in runs], [len(front([r])) for r in runs],
        feasible=sum(feasible(t) for t in done), infeasible=sum(not feasible(t) for t in done),
        pruned=sum(t.state == TrialState.PRUNED for r in runs for t in r.trials))


def baseline_points(group: DatasetStudies) -> list[tuple[Any, float | None, int]]:
    """(seed, val_loss or None, parameters) of each baseline that records its size."""
    return [(seed, group.baseline_val_loss.get(render.json_text(seed)), int(r["n_params"]))
            for seed, r in group.baselines if isinstance(r.get("n_params"), (int, float))]


# ----------------------------------------------------------------------------- render
def multi_runs(group: DatasetStudies) -> dict[str, list[Run]]:
    return {s: rs for s, rs in group.runs.items() if len(rs[0].objectives) > 1}


def render_pareto(dataset: str, group: DatasetStudies, out_dir: Path, plots_dir: Path) -> list[str]:
    """The multi-objective section: fronts plotted, hypervolume per searcher, the
    Pareto-optimal configurations with their test accuracy, and smaller-and-as-accurate."""
    every = multi_runs(group)
    runs = {s: rs for s, rs in every.items() if all(supported(r) for r in rs)}
    lines = ["### Accuracy against model size (multi-objective runs)", "",
             f"Runs that minimise ({LOSS}, {PARAMS}): validation loss and the model's parameter "
             "count. A trial larger than its run's `max_params` is infeasible (its Optuna "
             "constraint `n_params - max_params` > 0): never on a front, never in a "
             "hypervolume. Fronts are Optuna's (`study.best_trials`: non-dominated feasible "
             "COMPLETE trials); PRUNED trials have no values. These runs also appear in the "
             "single-objective sections above under the same names, read by their val_loss "
             "(an infeasible trial costs its epochs there but is no result).",
             ""]
    left = sorted(set(every) - set(runs))
    if left:
        lines += ["Left out (objectives or directions other than "
                  f"{list(OBJECTIVES)} minimised): " + ", ".join(f"`{s}`" for s in left) + ".", ""]
    ref = reference_point([r for rs in runs.values() for r in rs])
    if ref is None:
        return lines + ["No COMPLETE trial in these runs yet.", ""]
    volumes = [searcher_volume(rs, ref) for rs in runs.values()]
    png = plots_dir / f"{render.slug(dataset)}_pareto.png"
    plot_fronts(runs, baseline_points(group), ref, png, f"{dataset}: accuracy against size")
    lines += [f"![fronts on {dataset}]({render.link(png, out_dir)})", "",
              "Each searcher's front is the Pareto front of the union of its seeds' trials "
              "(line and large markers); small dots are every feasible COMPLETE trial; black "
              "stars are the baseline of each seed (its early-stopping val_loss and its "
              "parameters); dashed lines are the hypervolume's reference point.", ""]
    lines += render_volumes(volumes, group, ref)
    lines += render_front(runs)
    lines += render_smaller(runs, group)
    return lines


def render_volumes(volumes: Sequence[SearcherVolume], group: DatasetStudies,
                   ref: Reference) -> list[str]:
    lines = ["#### Hypervolume per searcher", "",
             f"Reference point: {ref.text()}. Hypervolume of each run's own front on "
             "(val_loss, log10 parameters), both minimised, in val_loss x decades of "
             "parameters (Optuna's `compute_hypervolume`); higher is better. Median, "
             "interquartile range (25th–75th percentile) and min–max over runs.", ""]
    rows = []
    for v in sorted(volumes, key=lambda v: (-v.spread()[0], v.searcher)):
        med, q25, q75, lo, hi = v.spread()
        rows.append((v.searcher, v.backend, render.seeds_text(v.seeds, unit=False), render.number(med),
                     f"{render.number(q25)}–{render.number(q75)}", f"{render.number(lo)}–{render.number(hi)}",
                     render.count(median(v.front_sizes)),
                     f"{v.feasible} / {v.infeasible} / {v.pruned}"))
    base = [hypervolume([(loss, n)], ref) for _, loss, n in baseline_points(group) if loss is not None]
    if base:
        med, q25, q75, lo, hi = spread(base)
        rows.append(("baseline (one point per seed)", render.DASH, str(len(base)), render.number(med),
                     f"{render.number(q25)}–{render.number(q75)}",
                     f"{render.number(lo)}–{render.number(hi)}", "1", render.DASH))
    return lines + render.table(("searcher", "backend", "seeds", "hypervolume median", "IQR", "min–max",
                           "front size (median)", "COMPLETE feasible / infeasible / PRUNED"),
                          rows)


def _retrained(r: dict | None, key: str) -> str:
    value = (r or {}).get(key)
    return render.number(float(value)) if isinstance(value, (int, float)) else render.DASH


def render_front(runs: dict[str, list[Run]]) -> list[str]:
    """The Pareto-optimal configurations of each searcher (union over its seeds)."""
    rows = [(p.searcher, render.json_text(p.seed), p.trial, render.number(p.val_loss), p.n_params,
             _retrained(p.retrain, "test_accuracy"), _retrained(p.retrain, "test_loss"),
             render.json_text(p.params))
            for rs in runs.values() for p in front(rs)]
    return ["#### Pareto-optimal configurations", "",
            "Each searcher's front over the union of its seeds, smallest model first; test "
            f"accuracy and loss after retraining on train+val (the run's `retrain_front`; "
            f"{render.DASH} where that trial was not retrained).", ""] + render.table(
        ("searcher", "seed", "trial", "val_loss", "parameters", "test accuracy", "test loss",
         "hyperparameters"), rows)


def _candidates(runs: dict[str, list[Run]]) -> list[tuple[str, Any, dict]]:
    """Every retrained Pareto-optimal model of every run: (searcher, seed, retrain_front row)."""
    return [(r.searcher, r.seed, row) for rs in runs.values() for r in rs
            for row in r.retrain_front or []
            if isinstance(row.get("n_params"), (int, float))
            and isinstance(row.get("test_accuracy"), (int, float))]


def _references(group: DatasetStudies) -> list[tuple[str, dict]]:
    """The models to beat: each baseline, and each single-objective run's retrained best."""
    refs = [(f"baseline s{render.json_text(seed)}", r) for seed, r in group.baselines]
    refs += [(f"{r.searcher} s{render.json_text(r.seed)} (tuned on val_loss)", r.retrain)
             for rs in group.runs.values() for r in rs if len(r.objectives) == 1 and r.retrain]
    return [(name, r) for name, r in refs if isinstance(r.get("n_params"), (int, float))
            and isinstance(r.get("test_accuracy"), (int, float))]


def render_smaller(runs: dict[str, list[Run]], group: DatasetStudies) -> list[str]:
    """Is any retrained Pareto-optimal model smaller than a reference model and at least as
    accurate on the test split? The smallest such model per reference."""
    found = _candidates(runs)
    refs = _references(group)
    lines = ["#### Smaller and at least as accurate?", ""]
    if not found:
        return lines + ["No retrained Pareto-optimal model yet (no `retrain_front` in these "
                        "runs).", ""]
    if not refs:
        return lines + [f"{len(found)} retrained Pareto-optimal models, but no reference model "
                        "(baseline or retrained single-objective best) to compare them with.", ""]
    rows, beaten = [], 0
    for name, ref in refs:
        better = [c for c in found if c[2]["n_params"] < ref["n_params"]
                  and c[2]["test_accuracy"] >= ref["test_accuracy"]]
        best = min(better, key=lambda c: (c[2]["n_params"], -c[2]["test_accuracy"], c[0],
                                          seed_key(c[1]), c[2].get("trial", -1)), default=None)
        beaten += best is not None
        rows.append((name, render.count(ref["n_params"]), render.number(float(ref["test_accuracy"])),
                     f"{best[0]} s{render.json_text(best[1])} trial {best[2].get('trial')}"
                     if best else "none",
                     render.count(best[2]["n_params"]) if best else render.DASH,
                     render.number(float(best[2]["test_accuracy"])) if best else render.DASH))
    lines += [f"{beaten} of {len(refs)} reference models have a retrained Pareto-optimal model "
              f"that is smaller and at least as accurate on the test split (among "
              f"{len(found)} retrained Pareto-optimal models of every searcher and seed). "
              "Reference models: each baseline and each single-objective run's retrained best "
              "configuration; per reference, the smallest such model.", ""]
    return lines + render.table(("reference model", "parameters", "test accuracy",
                           "smallest smaller model at least as accurate", "its parameters",
                           "its test accuracy"), rows)


def plot_fronts(runs: dict[str, list[Run]], baselines: Sequence[tuple[Any, float | None, int]],
                ref: Reference, path: Path, title: str) -> None:
    """val_loss against parameters (log axis): each searcher's union front as a staircase."""
    with matplotlib.style.context("default"):
        fig = render.figure()
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for i, (searcher, rs) in enumerate(runs.items()):
            color = colors(i % 10)
            ok = [t for t in _complete(rs) if feasible(t)]
            ax.scatter([t.values[1] for t in ok], [t.values[0] for t in ok], s=8, color=color,
                       alpha=0.25, linewidth=0)
            pts = front(rs)
            label = f"{searcher} ({render.seeds_text([r.seed for r in rs])})"
            if not pts:  # no feasible COMPLETE trial: named in the legend all the same
                ax.plot([], [], color=color, marker="o", label=label)
                continue
            xs, ys = [float(p.n_params) for p in pts], [p.val_loss for p in pts]
            # the staircase that bounds what the front dominates, out to the reference size
            ax.step(xs + [max(ref.n_params, xs[-1])], ys + [ys[-1]], where="post", color=color,
                    marker="o", markevery=list(range(len(xs))), label=label)
        drawn = [(loss, n) for _, loss, n in baselines if loss is not None]
        if drawn:
            ax.scatter([n for _, n in drawn], [loss for loss, _ in drawn], marker="*", s=120,
                       color="black", zorder=5, label="baseline")
        for _, loss, n in baselines:
            if loss is None:
                ax.axvline(n, color="black", linestyle=":", linewidth=1)
        ax.axhline(ref.val_loss, color="grey", linestyle="--", linewidth=1)
        ax.axvline(ref.n_params, color="grey", linestyle="--", linewidth=1,
                   label="reference point")
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(LOSS)
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        render.save(fig, path)
