"""What the report reads: the store's benchmark studies grouped by data set (``collect``),
each search or replay study as a ``Run`` with its finished trials in completion order."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.core import schema, store
from bench.core.errors import UserError
from bench.report import render
from bench.report.runs import DatasetStudies, Run, seed_key

if TYPE_CHECKING:
    from searchers.seam import FrozenStudy

BACKEND_OPTUNA = schema.BACKEND_OPTUNA
BACKEND_KT = schema.BACKEND_KERAS_TUNER
STUDY_RETRAIN_FRONT = schema.STUDY_RETRAIN_FRONT  # multi-objective runs: their retrained front
_METRIC_NAMES = "study:metric_names"   # where Study.set_metric_names keeps the objectives' names
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _backend(bench: dict) -> str:
    """The searcher's library; inferred from its name when the study predates the key."""
    if bench.get("backend"):
        return str(bench["backend"])
    name = str(bench.get("searcher", ""))
    return BACKEND_OPTUNA if name in ("tpe", "bohb") or name.startswith("optuna") else BACKEND_KT


def _ordered(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Finished trials in the order they finished (design.md), trial number breaks ties."""
    done = [t for t in trials if t.state in _FINISHED]
    return sorted(done, key=lambda t: (t.datetime_complete is None,
                                       t.datetime_complete or datetime.min, t.number))


def _objectives(summary: FrozenStudy, bench: dict) -> tuple[str, ...]:
    """The study's objective names: Optuna's metric names, else the ``bench`` attr's
    ``objectives``, else val_loss for a single-objective study."""
    n = len(summary.directions)
    for names in (summary.system_attrs.get(_METRIC_NAMES), bench.get("objectives")):
        if isinstance(names, list) and len(names) == n:
            return tuple(str(x) for x in names)
    return (schema.OBJECTIVE,) if n == 1 else tuple(f"objective {i}" for i in range(n))


def _load_run(rdb: optuna.storages.BaseStorage, name: str, bench: dict,
              retrain: Any, summary: FrozenStudy | None = None) -> Run | None:
    """One search (or replay) study as a Run; None when no trial of it finished. A
    multi-objective study's searcher is named with its objectives, e.g. ``tpe [val_loss,
    params]``: its runs optimise something else than the single-objective runs of that
    searcher and never pool with them."""
    # the storage directly, not load_study: no sampler to build per study (500 replays)
    everything = rdb.get_all_trials(rdb.get_study_id_from_name(name), deepcopy=False)
    trials = _ordered(everything)
    if not trials:  # e.g. a run that died before its first trial ended: not a seed
        return None
    budget = bench.get("budget_epochs")
    run = Run(name=name, searcher=str(bench.get("searcher", "?")), seed=bench.get("seed"),
              backend=_backend(bench),
              budget_epochs=float(budget) if budget is not None else None, trials=trials,
              retrain=retrain if isinstance(retrain, dict) else None,
              used=store.epochs_used(everything),
              preset=str(bench["preset"]) if bench.get("preset") is not None else None,
              timing_note=str(bench[schema.B_TIMING_NOTE]) if bench.get(schema.B_TIMING_NOTE) else None)
    if summary is not None and len(summary.directions) > 1:
        front = summary.user_attrs.get(STUDY_RETRAIN_FRONT)
        run.objectives = _objectives(summary, bench)
        run.directions = tuple(d.name.lower() for d in summary.directions)
        run.bench = bench
        run.retrain_front = [r for r in front if isinstance(r, dict)] if isinstance(front, list) else None
        run.searcher = f"{run.searcher} [{', '.join(run.objectives)}]"
    return run


def _compact_trial(number: int, row: Sequence[Any]) -> FrozenTrial:
    """A replayed trial from its summary row: what the statistics read (epochs, seconds,
    value, state), on the replay's simulated calendar."""
    epochs, wall, value, state = row
    return FrozenTrial(
        number=number, state=TrialState.COMPLETE if state == "C" else TrialState.PRUNED,
        value=value if state == "C" else None, datetime_start=None,
        datetime_complete=None, params={}, distributions={},
        user_attrs={schema.T_EPOCHS: epochs, schema.T_WALL: wall}, system_attrs={},
        intermediate_values={}, trial_id=number)


def _compact_runs(name: str, bench: dict, attrs: dict[str, Any]) -> list[Run]:
    """The replayed runs a replay-summary study holds as rows (``bench.replay.simulation.compact_run``)."""
    runs = []
    for key, row in sorted(attrs.items()):
        if not key.startswith(schema.REPLAY_RUN_PREFIX) or not isinstance(row, dict):
            continue
        trials = [_compact_trial(i, t) for i, t in enumerate(row.get("trials") or [])]
        if not trials:
            continue
        runs.append(Run(name=f"{name}:{row['searcher']}:s{row['seed']}",
                        searcher=str(row["searcher"]), seed=row["seed"],
                        backend=str(row.get("backend", BACKEND_KT)),
                        budget_epochs=float(row["budget_epochs"]), trials=trials, retrain=None,
                        used=int(row.get("used", 0)), preset=str(bench.get("preset"))))
    return runs


def group_name(bench: dict) -> str:
    """The report's section of a study: its data set, and its Keras backend where that is
    not TensorFlow (``toon on jax``), so backends are never pooled or compared as seeds."""
    dataset = str(bench.get("dataset", "unknown"))
    backend = bench.get("keras_backend") or "tensorflow"
    return dataset if backend == "tensorflow" else f"{dataset} on {backend}"


def collect(storage: str) -> dict[str, DatasetStudies]:
    """Group the store's benchmark studies by data set (studies without ``bench`` are skipped)."""
    # Only reads: a write-protected store is fine, a missing one is an error (not a new file).
    rdb = store.open_storage(storage, must_exist=True, read_only=True)
    data: dict[str, DatasetStudies] = {}
    # get_all_studies, not get_all_study_summaries: the summaries read every trial of every
    # study (to count them), and the runs' trials would then be read a second time
    studies = sorted(rdb.get_all_studies(), key=lambda s: s.study_name)
    # Replayed runs come from their summary's rows; a replay study of its own is read only
    # where no row holds it (a store written before the rows existed).
    compact: set[tuple[str, str, str, str]] = set()
    for summary in studies:
        bench = summary.user_attrs.get(schema.STUDY_BENCH)
        if isinstance(bench, dict) and bench.get("kind") == schema.KIND_REPLAY_SUMMARY:
            dataset, preset = str(bench.get("dataset", "unknown")), str(bench.get("preset"))
            group = data.setdefault(dataset, DatasetStudies())
            for row in _compact_runs(summary.study_name, bench, summary.user_attrs):
                group.replays.setdefault(preset, {}).setdefault(row.searcher, []).append(row)
                compact.add((dataset, preset, row.searcher, render.json_text(row.seed)))
    for summary in studies:
        bench = summary.user_attrs.get(schema.STUDY_BENCH)
        if not isinstance(bench, dict) or "kind" not in bench:
            continue
        group = data.setdefault(group_name(bench), DatasetStudies())
        kind = bench["kind"]
        retrain = summary.user_attrs.get(schema.STUDY_RETRAIN)
        if kind == schema.KIND_REPLAY and (
                str(bench.get("dataset", "unknown")), str(bench.get("preset")),
                str(bench.get("searcher", "?")), render.json_text(bench.get("seed"))) in compact:
            continue
        if kind in (schema.KIND_SEARCH, schema.KIND_REPLAY):
            run = _load_run(rdb, summary.study_name, bench, retrain, summary)
            searcher = run.searcher if run is not None else str(bench.get("searcher", "?"))
            preset = str(bench.get("preset"))
            if kind == schema.KIND_REPLAY:
                if run is None:
                    group.replay_empty.setdefault(preset, []).append(summary.study_name)
                else:
                    group.replays.setdefault(preset, {}).setdefault(searcher, []).append(run)
            elif run is None:
                group.empty.setdefault(searcher, []).append(summary.study_name)
            else:
                group.runs.setdefault(searcher, []).append(run)
        elif kind == schema.KIND_BASELINE:
            if isinstance(retrain, dict):
                group.baselines.append((bench.get("seed"), retrain))
            if isinstance(bench.get("val_loss"), (int, float)):
                group.baseline_val_loss[render.json_text(bench.get("seed"))] = float(bench["val_loss"])
        else:
            group.extra.setdefault(kind, []).append((summary.study_name, bench))
    if not data:
        raise UserError(f"no benchmark studies in {store.display_url(storage)}")
    for group in data.values():
        group.runs = _by_seed(group.runs)
        group.replays = {p: _by_seed(runs) for p, runs in sorted(group.replays.items())}
        group.baselines.sort(key=lambda b: seed_key(b[0]))
    return data


def _by_seed(runs: dict[str, list[Run]]) -> dict[str, list[Run]]:
    return {s: sorted(r, key=lambda run: seed_key(run.seed)) for s, r in sorted(runs.items())}
