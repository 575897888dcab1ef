"""``python -m bench replay``: every searcher's own decisions, against recorded curves.

Real runs on 2 cores give a handful of seeds per searcher; a comparison needs tens. As in
syne-tune's simulator backend, training is replaced by the learning-curve surrogate fitted
on a ``bench record`` study (``bench.replay.surrogate``) and everything else runs as in a real
run, so 5 searchers x 100 seeds take minutes:

* decisions: the searcher's own oracle, built by its own ``Tuner`` class from the registry
  (KerasTuner's RandomSearch / Hyperband / BayesianOptimization oracles; for the
  Optuna-backed searchers ``OptunaOracle`` over a study with the searcher's own sampler and
  pruner), driven through KerasTuner's oracle API exactly as ``BaseTuner.search`` and
  ``Tuner.run_trial`` drive it: ``create_trial``, per-epoch ``OptunaOracle.report`` (what
  ``OptunaSearch.on_epoch_end`` calls), ``update_trial`` with the best epoch of the fit's
  history (``tuner_utils.convert_to_metrics_dict``), ``end_trial``;
* the budget of real runs (``bench.run.budget.Budget``, the same object): the run stops
  starting trials once its epochs are spent, the trial that spends them stops after that
  epoch (``budget_cut``), pruned trials count the epochs they ran, a Hyperband continuation trains epochs
  ``tuner/initial_epoch..tuner/epochs`` and counts only those, from the parent's best epoch
  (KerasTuner loads the parent's best checkpoint);
* Keras's ``EarlyStopping(monitor="val_loss", patience=P)`` rule (reset at every fit).

A simulated clock (the surrogate's epoch seconds plus the record's median per-trial
overhead) times every trial. Each replayed run is stored as a study of kind ``replay`` with
the trial attrs of a real run, so the dashboard reads it like any other, and as one compact
row of the command's summary study (``replay-summary``: per trial its epochs, simulated
seconds, value and state): what ``bench report`` reads, 1,000 runs in a megabyte, so a
committed store can hold a whole replay benchmark (``--compact`` stores only the rows).
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import shlex
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.core import schema, store
from bench.core.errors import UserError
from bench.run.budget import Budget
from searchers import seam

# Replayed trials get completion times on this simulated calendar (the report orders by it).
CLOCK_ORIGIN = datetime.datetime(2000, 1, 1)


@dataclass(frozen=True)
class ReplaySettings:
    """``bench replay``: which searchers, how many seeds, on which record and budget."""

    searchers: str = "random,hyperband,bayesian,tpe,bohb"
    seeds: int = 100
    seed: int = 0
    dataset: str = "toon"
    preset: str = "standard"
    budget_epochs: int | None = None
    epochs_per_trial: int | None = None
    patience: int | None = None
    record: str | None = None
    model: str | None = None
    storage: str = schema.DEFAULT_STORAGE
    jobs: int = 1
    replace: bool = False
    warm_start_random: int | None = None
    compact: bool = False
    argv: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ReplaySettings":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if f.name != "argv"},
                   argv=tuple(getattr(args, "argv", ())))


@dataclass(frozen=True)
class ReplaySpec:
    """One replayed run."""

    searcher: str
    seed: int
    budget_epochs: int
    epochs_per_trial: int
    patience: int
    dataset: str
    preset: str
    sampler: str | None = None      # Optuna-backed searchers: as --sampler / --pruner
    pruner: str | None = None
    warm_start: int = 0             # a history of this many random configurations first


@dataclass
class ReplayedTrial:
    """What a replayed trial leaves: enough to write it as a real run's trial."""

    number: int
    state: str                       # "COMPLETE" | "PRUNED"
    value: float | None
    params: dict[str, Any]
    distributions: dict[str, Any]
    intermediate: dict[int, float]
    attrs: dict[str, Any]
    started: float                   # simulated seconds since the run began
    finished: float


@dataclass
class ReplayedRun:
    spec: ReplaySpec
    label: str
    backend: str
    trials: list[ReplayedTrial] = field(default_factory=list)
    epochs_used: int = 0
    seconds: float = 0.0             # real seconds the replay took
    history_best: float | None = None  # warm start: the history's best value

    @property
    def best(self) -> float | None:
        values = [t.value for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        return min(values) if values else None


def _declare_space(hp: Any) -> None:
    """The replay's hypermodel: declares the space as ``build_model`` does (same order, so
    the oracle's space is the real run's), builds nothing."""
    from models.space import SEARCH_SPACE
    for p in SEARCH_SPACE:
        p.declare(hp)


def replay_run(spec: ReplaySpec, surrogate: Any, workdir: Path) -> ReplayedRun:
    """Replay one search: the searcher decides, the surrogate trains."""
    import optuna
    from keras_tuner.engine.trial import TrialStatus

    from searchers.base import SearchSettings
    from searchers.registry import get_searcher
    from searchers.seam import active_params

    started_at = time.perf_counter()
    searcher = get_searcher(spec.searcher)
    settings = SearchSettings(seed=spec.seed, epochs_per_trial=spec.epochs_per_trial,
                              sampler=spec.sampler, pruner=spec.pruner,
                              budget_epochs=spec.budget_epochs)
    label = searcher.label(settings)
    study = None
    if searcher.records_live:  # as bench.core.store.open_study makes it, in memory
        sampler, pruner = searcher.study_components(settings)
        # Named as the real run's study: Optuna's HyperbandPruner assigns brackets by a hash
        # of the study name and trial number (a random in-memory name: random brackets).
        study = optuna.create_study(direction=schema.DIRECTION, sampler=sampler, pruner=pruner,
                                    study_name=schema.study_name(spec.dataset, label, spec.seed))
        settings = replace(settings, study=study)
    kwargs = searcher.tuner_kwargs(settings)
    warm_history = None
    if spec.warm_start:  # OptunaSearch(warm_start=...): the library's own path
        warm_history = random_history(spec, surrogate)
        kwargs["warm_start"] = warm_history
        label = f"{label}+warm{spec.warm_start}"
    tuner = searcher.tuner_class()(
        hypermodel=_declare_space, objective=schema.OBJECTIVE, directory=str(workdir),
        project_name=f"{label}-s{spec.seed}", overwrite=True, **kwargs)
    oracle = tuner.oracle
    searcher.configure_oracle(oracle, settings)
    oracle.verbose = 0  # what search(verbose=0) sets: no "Search: Running Trial" lines
    run = ReplayedRun(spec, label, searcher.proposed_by)
    if warm_history is not None:
        run.history_best = warm_history.best_value
    best_trained: dict[str, int] = {}  # KerasTuner trial id -> epochs trained at its best epoch
    clock = 0.0
    pending: dict[str, Any] = {}
    if study is not None:
        oracle.before_tell = lambda kt_id, live: [live.set_user_attr(k, v) for k, v in pending.items()]
    budget = Budget(spec.budget_epochs)  # the real runs' rules (bench.run.budget)
    while not budget.spent(run.epochs_used):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        if trial.status == TrialStatus.IDLE:
            continue
        values = dict(trial.hyperparameters.values)
        end = int(values.get("tuner/epochs", spec.epochs_per_trial))
        start = int(values.get("tuner/initial_epoch", 0))
        parent = values.get("tuner/trial_id")
        base = best_trained.get(str(parent), start) if parent is not None else 0
        curve = surrogate.curve(values, spec.seed)
        history: list[tuple[int, float, float]] = []  # (epoch, val_loss, val_accuracy)
        wait, es_best = 0, None
        budget_cut = False
        for k, epoch in enumerate(range(start, end)):
            index = min(base + k, len(curve.val_loss) - 1)
            value, acc = float(curve.val_loss[index]), float(curve.val_accuracy[index])
            history.append((epoch + 1, value, acc))
            run.epochs_used += 1
            stop = False
            # OptunaSearch.on_epoch_end: the Optuna-backed oracle reports to its pruner
            if study is not None and oracle.report(trial.trial_id, value, step=epoch + 1,
                                                   final=epoch + 1 == end):
                stop = True
            if spec.patience:  # keras.callbacks.EarlyStopping
                wait += 1
                if es_best is None or value < es_best:
                    es_best, wait = value, 0
                elif wait >= spec.patience and epoch > 0:
                    stop = True
            if budget.spent(run.epochs_used):
                budget_cut, stop = budget.cut_short(epoch, end), True
            if stop:
                break
        best_k = min(range(len(history)), key=lambda i: (history[i][1], i))
        best_trained[trial.trial_id] = base + best_k + 1
        oracle.update_trial(trial.trial_id, {schema.OBJECTIVE: history[best_k][1],
                                             "val_accuracy": history[best_k][2]}, step=best_k)
        fit = len(history) * float(curve.seconds[0])
        wall = fit + surrogate.overhead
        attrs: dict[str, Any] = {
            schema.T_SEARCHER: label, schema.T_SEED: spec.seed, schema.T_DATASET: spec.dataset,
            schema.T_EPOCHS: len(history), schema.T_WALL: round(wall, 4),
            schema.T_FIT: round(fit, 4), schema.T_PARAMS: curve.n_params,
            schema.T_KT_ID: trial.trial_id, schema.T_VAL_ACC: round(history[best_k][2], 6),
        }
        if budget_cut:
            attrs[schema.T_BUDGET_CUT] = True
        attrs.update({k: v for k, v in values.items() if k.startswith("tuner/")})
        pending.clear()
        pending.update(attrs)
        live = oracle.optuna_trial(trial.trial_id) if study is not None else None
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
        ended = oracle.trials[trial.trial_id]
        state = "PRUNED" if ended.status == TrialStatus.STOPPED else "COMPLETE"
        result: float | None = float(ended.score) if state == "COMPLETE" else None
        if live is not None:  # as the study holds it (Optuna gives a PRUNED trial its last value)
            frozen = study.trials[live.number]  # type: ignore[union-attr]
            params, dists, result = dict(frozen.params), dict(frozen.distributions), frozen.value
        else:
            params, dists = active_params(ended.hyperparameters)
        run.trials.append(ReplayedTrial(
            number=len(run.trials), state=state, value=result,
            params=params, distributions=dists,
            intermediate={e: v for e, v, _ in history}, attrs=attrs,
            started=clock, finished=clock + wall))
        clock += wall
    shutil.rmtree(workdir / f"{label}-s{spec.seed}", ignore_errors=True)
    run.seconds = time.perf_counter() - started_at
    return run


# A warm start's history draws its configurations and its training noise apart from the
# run's own seed stream (the same history for the warm run of a seed, whatever searcher).
_HISTORY_SEED_OFFSET = 104_729


def random_history(spec: ReplaySpec, surrogate: Any) -> Any:
    """``spec.warm_start`` configurations drawn uniformly (Optuna's RandomSampler over the
    space, as seam maps it), each trained a full trial on the surrogate: an in-memory study
    of COMPLETE trials with their best val_loss, what an earlier random search leaves."""
    import keras_tuner
    import optuna

    from searchers.seam import suggest
    seed = spec.seed + _HISTORY_SEED_OFFSET
    study = optuna.create_study(direction=schema.DIRECTION,
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    study.set_metric_names([schema.OBJECTIVE])
    space = keras_tuner.HyperParameters()
    _declare_space(space)
    for _ in range(spec.warm_start):
        trial = study.ask()
        hps = keras_tuner.HyperParameters()
        for hp in space.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = suggest(trial, hp)
        curve = surrogate.curve(dict(hps.values), seed)
        study.tell(trial, float(min(curve.val_loss[:spec.epochs_per_trial])))
    return study


def frozen_trials(run: ReplayedRun) -> list[Any]:
    """The replayed trials as Optuna trials of a real run (simulated start/end times)."""
    from optuna.trial import FrozenTrial, TrialState
    found = []
    for t in run.trials:
        found.append(FrozenTrial(
            number=t.number, state=TrialState[t.state], value=t.value,
            datetime_start=CLOCK_ORIGIN + datetime.timedelta(seconds=t.started),
            datetime_complete=CLOCK_ORIGIN + datetime.timedelta(seconds=t.finished),
            params=t.params, distributions=t.distributions, user_attrs=t.attrs,
            system_attrs={}, intermediate_values=t.intermediate, trial_id=t.number))
    return found


# ----------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(storage: str, record: str, model: str) -> None:
    """Each pool process fits the same surrogate (deterministic) and imports TF once.

    One OpenMP thread per process: the pool has a process per core, and with OpenMP's
    default (a thread per core, spinning while idle) two processes predicting tiny curves
    with a gradient-boosting model ran 500x slower (5 ms per tree instead of 10 us). The
    variable is read when OpenMP loads (scikit-learn, below); threadpoolctl then limits any
    OpenMP or BLAS already loaded."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import warnings
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _WORKER["surrogate"] = load_surrogate(storage, record, model=model, evaluate=False)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    _WORKER["tmp"] = Path(tempfile.mkdtemp(prefix="bench-replay-"))


def _work(spec: ReplaySpec) -> ReplayedRun:
    return replay_run(spec, _WORKER["surrogate"], _WORKER["tmp"])


def _record_study(storage: str, record: str, *, read_only: bool = True) -> Any:
    import optuna
    rdb = store.open_storage(storage, must_exist=True, read_only=read_only)
    try:
        study = optuna.load_study(study_name=record, storage=rdb)
    except KeyError:
        raise UserError(f"no record study {record!r} in {store.display_url(storage)}: "
                        "run python -m bench record first (or pass --record NAME)") from None
    bench = study.user_attrs.get(schema.STUDY_BENCH) or {}
    if bench.get("kind") != schema.KIND_RECORD:
        raise UserError(f"study {record!r} is not a bench record (kind {bench.get('kind')!r})")
    return study


def load_surrogate(storage: str, record: str, *, model: str | None = None,
                   evaluate: bool = True) -> Any:
    """The record's surrogate. Its held-out evaluation (minutes on 2 cores) is kept in the
    record study (``surrogate_fidelity``) for the trials it was made on, and reused."""
    from bench.replay import surrogate
    from models.space import space_config
    study = _record_study(storage, record)
    bench = study.user_attrs[schema.STUDY_BENCH]
    if bench.get("space") != space_config():
        raise UserError(f"record {record!r} was made on another search space than this code's")
    trials = study.get_trials(deepcopy=False)
    key = f"{len(trials)}:{','.join(surrogate.CANDIDATES)}"
    known = study.user_attrs.get(schema.STUDY_SURROGATE)
    if evaluate and isinstance(known, dict) and known.get("key") == key:
        fitted = surrogate.fit(trials, bench["space"], model=model or known["model"], evaluate=False)
        scores = known.get("candidates", {}).get(fitted.model_name, {})
        fitted.fidelity.update({k: v for k, v in known.items() if k != "key"},
                               model=fitted.model_name, noise={**known.get("noise", {}),
                                                               **fitted.fidelity["noise"]},
                               spearman_best=scores.get("spearman"),
                               per_epoch_rmse_log=scores.get("rmse_log"),
                               per_epoch_mae=scores.get("mae"))
        return fitted
    fitted = surrogate.fit(trials, bench["space"], model=model, evaluate=evaluate)
    if evaluate and model is None:
        try:
            _record_study(storage, record, read_only=False).set_user_attr(
                schema.STUDY_SURROGATE, {**fitted.fidelity, "key": key})
        except Exception:  # noqa: BLE001 - a read-only store: evaluated again next time
            pass
    return fitted


# ----------------------------------------------------------------------------- command
def replay_study_name(dataset: str, preset: str, searcher: str, seed: int) -> str:
    return schema.study_name(dataset, f"replay-{preset}-{searcher}", seed)


def summary_study_name(dataset: str, preset: str) -> str:
    return schema.study_name(dataset, f"replay-{preset}", 0)[: -len("-s0")]


def compact_key(searcher: str, seed: int) -> str:
    """The summary study's user attr that holds one replayed run."""
    return f"{schema.REPLAY_RUN_PREFIX}{searcher}:s{seed}"


def compact_run(run: ReplayedRun, budget: int, key: str) -> dict[str, Any]:
    """One replayed run as the report needs it: per trial, in completion order, its epochs,
    simulated seconds, value (None unless COMPLETE) and state ("C"omplete / "P"runed)."""
    return {
        "searcher": run.label, "backend": run.backend, "seed": run.spec.seed,
        "budget_epochs": budget, "used": run.epochs_used, "surrogate_key": key,
        "trials": [[int(t.attrs[schema.T_EPOCHS]), float(t.attrs[schema.T_WALL]),
                    None if t.state != "COMPLETE" or t.value is None else float(t.value),
                    t.state[0]] for t in run.trials],
    }


def run_replay(args: ReplaySettings) -> int:
    from bench.core.measurement import command_line
    from bench.core.provenance import machine, versions
    from bench.replay.record import record_study_name
    from bench.run.presets import get_preset
    from searchers.base import SearchSettings
    from searchers.registry import get_searcher

    if args.warm_start_random is not None:
        return run_warm_start(args)
    searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
    choices = {entry: _parse_searcher(entry) for entry in searchers}
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1 (got {args.seeds})")
    preset = get_preset(args.preset)
    record = args.record or record_study_name(args.dataset, args.preset, 0)
    budget = args.budget_epochs or preset.budget_epochs
    if budget <= 0:
        raise UserError(f"--budget-epochs must be > 0 (got {budget})")
    command = command_line(args.argv)
    wall_started = time.monotonic()
    surrogate = load_surrogate(args.storage, record, model=args.model)
    fid = surrogate.fidelity
    print(f"[replay] surrogate {fid['model']} on {fid['configs']} recorded configurations "
          f"({fid['repeats']} repeats): held-out Spearman of best val_loss "
          f"{fid.get('spearman_best', float('nan')):.3f}, "
          f"{surrogate.epochs} epochs per curve", flush=True)
    _say_if_weak(fid)
    epochs = min(args.epochs_per_trial or preset.epochs_per_trial, surrogate.epochs)
    patience = preset.patience if args.patience is None else args.patience
    rdb = store.open_storage(args.storage)
    import optuna
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(rdb)}
    summary = store.create_study(rdb, summary_study_name(args.dataset, args.preset))
    if schema.STUDY_BENCH not in summary.user_attrs:  # its rows show in a report at once
        summary.set_user_attr(schema.STUDY_BENCH, {
            "kind": schema.KIND_REPLAY_SUMMARY, "dataset": args.dataset, "preset": args.preset,
            "record_study": record, "surrogate": fid})
    rows = {k: v for k, v in summary.user_attrs.items() if k.startswith(schema.REPLAY_RUN_PREFIX)}
    key = _key(fid, budget, patience, epochs)
    specs, names = [], {}
    # a run's old study goes only once its replacement is replayed (an interrupted --replace
    # keeps every run it did not replace, and the summary's rows still match the studies)
    replaced: set[str] = set()
    for name, sampler, pruner in choices.values():
        for seed in range(args.seed, args.seed + args.seeds):
            spec = ReplaySpec(name, seed, budget, epochs, patience, args.dataset, args.preset,
                              sampler=sampler, pruner=pruner)
            label = get_searcher(name).label(SearchSettings(seed=seed, epochs_per_trial=epochs,
                                                            sampler=sampler, pruner=pruner))
            study = replay_study_name(args.dataset, args.preset, label, seed)
            names[spec] = study
            old = existing.get(study)
            old_bench = (old.user_attrs.get(schema.STUDY_BENCH) or {}) if old is not None else {}
            row = rows.get(compact_key(label, seed))
            stored = row if row is not None else old_bench if old_bench.get("replay_done") else None
            complete = row is not None and (args.compact or old_bench.get("replay_done"))
            if stored is not None and not args.replace:
                if stored.get("surrogate_key") != key:
                    raise UserError(f"replay study {study!r} was made with another record, budget "
                                    "or early stopping; pass --replace to replay it again")
                if complete:
                    continue
            if old is not None and (args.replace or not args.compact):
                replaced.add(study)
            specs.append(spec)
    print(f"[replay] {len(specs)} runs to replay ({len(searchers) * args.seeds - len(specs)} "
          f"already stored), budget {budget} epochs, {epochs} per trial, patience {patience}, "
          f"{args.jobs} process(es)", flush=True)
    done_runs: list[ReplayedRun] = []
    if specs:
        jobs = max(1, min(args.jobs, len(specs)))
        # spawn, not fork: this process has fitted scikit-learn models, and a forked child
        # of a process whose OpenMP threads ran (gradient boosting) hangs in its first fit.
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                 initargs=(args.storage, record, fid["model"]),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            first_done: float | None = None  # ETA from the first result: not the set-up
            for i, run in enumerate(pool.map(_work, specs, chunksize=1), 1):
                if names[run.spec] in replaced:
                    optuna.delete_study(study_name=names[run.spec], storage=rdb)
                if not args.compact:
                    _store_run(rdb, names[run.spec], run, record, fid, budget, patience, epochs)
                summary.set_user_attr(compact_key(run.label, run.spec.seed),
                                      compact_run(run, budget, key))
                done_runs.append(run)
                now = time.monotonic()
                first_done = first_done or now
                rate = (now - first_done) / (i - 1) if i > 1 else run.seconds / jobs
                best = f"{run.best:.4f}" if run.best is not None else "-"
                pruned = sum(t.state == "PRUNED" for t in run.trials)
                print(f"[replay {run.label} s{run.spec.seed}] best val_loss {best} | "
                      f"{len(run.trials)} trials ({pruned} pruned) | {run.epochs_used}/{budget} ep | "
                      f"simulated {run.trials[-1].finished / 60 if run.trials else 0:.1f} min | "
                      f"{run.seconds:.1f}s | {i}/{len(specs)} ETA "
                      f"{rate * (len(specs) - i):.0f}s", flush=True)
    wall = time.monotonic() - wall_started
    _store_summary(summary, args, command, searchers, record, fid, wall, budget, epochs,
                   patience, machine(), versions(), len(done_runs))
    print(f"[replay] {len(done_runs)} runs in {wall:.0f} s; report: python -m bench report "
          f"--storage {shlex.quote(store.display_url(args.storage))}", flush=True)
    return 0


def _say_if_weak(fid: dict[str, Any]) -> None:
    """One line when the surrogate ranks configurations too loosely to trust a verdict."""
    rho = fid.get("spearman_best")
    if isinstance(rho, (int, float)) and rho < schema.SURROGATE_MIN_SPEARMAN:
        print(f"[replay] warning: the surrogate's held-out Spearman {rho:.2f} is below "
              f"{schema.SURROGATE_MIN_SPEARMAN}: this replay's verdicts are weak evidence "
              "(record more configurations: bench record --configs N)", flush=True)


def warm_start_study_name(dataset: str, preset: str, history: int) -> str:
    return f"{summary_study_name(dataset, preset)}-warm{history}"


def run_warm_start(args: ReplaySettings) -> int:
    """``--warm-start-random N``: per seed and Optuna-backed searcher, a cold run and a run
    warm-started from N random configurations (``OptunaSearch(warm_start=...)``), the same
    budget for the new trials; one measurement study holds both bests per seed."""
    from bench.core.measurement import command_line, record_measurement
    from bench.replay.record import record_study_name
    from bench.run.presets import get_preset
    from searchers.registry import get_searcher

    n = args.warm_start_random or 0  # set: run_replay calls this only then
    if n < 1:
        raise UserError(f"--warm-start-random must be >= 1 (got {n})")
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1 (got {args.seeds})")
    searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
    choices = [_parse_searcher(entry) for entry in searchers]
    for name, _, _ in choices:
        if not get_searcher(name).records_live:
            raise UserError(f"--warm-start-random: {name!r} is KerasTuner's own searcher, which "
                            "cannot learn from earlier trials; give Optuna-backed ones")
    preset = get_preset(args.preset)
    record = args.record or record_study_name(args.dataset, args.preset, 0)
    budget = args.budget_epochs or preset.budget_epochs
    if budget <= 0:
        raise UserError(f"--budget-epochs must be > 0 (got {budget})")
    started = time.monotonic()
    surrogate = load_surrogate(args.storage, record, model=args.model)
    fid = surrogate.fidelity
    _say_if_weak(fid)
    epochs = min(args.epochs_per_trial or preset.epochs_per_trial, surrogate.epochs)
    patience = preset.patience if args.patience is None else args.patience
    specs = [ReplaySpec(name, seed, budget, epochs, patience, args.dataset, args.preset,
                        sampler=sampler, pruner=pruner, warm_start=warm)
             for name, sampler, pruner in choices
             for seed in range(args.seed, args.seed + args.seeds) for warm in (0, n)]
    print(f"[replay] warm start from {n} random configurations against a cold start: "
          f"{len(specs)} runs, budget {budget} epochs for the new trials, {epochs} per trial",
          flush=True)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    jobs = max(1, min(args.jobs, len(specs)))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(args.storage, record, fid["model"]),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, run in enumerate(pool.map(_work, specs, chunksize=1), 1):
            cold = run.label.split("+warm")[0]
            row = rows.setdefault((cold, run.spec.seed), {"searcher": cold, "seed": run.spec.seed})
            side = "warm" if run.spec.warm_start else "cold"
            row[f"{side}_best"] = run.best
            row[f"{side}_used"] = run.epochs_used
            if run.history_best is not None:
                row["history_best"] = run.history_best
            if i % 20 == 0 or i == len(specs):
                print(f"[replay] {i}/{len(specs)} runs", flush=True)
    wall = time.monotonic() - started
    name = warm_start_study_name(args.dataset, args.preset, n)
    record_measurement(store.open_storage(args.storage), name, schema.KIND_WARM_START, {
        "dataset": args.dataset, "preset": args.preset, "history": n, "budget_epochs": budget,
        "epochs_per_trial": epochs, "patience": patience, "record_study": record,
        "surrogate": {k: fid.get(k) for k in ("model", "configs", "repeats", "spearman_best")},
        "seeds": list(range(args.seed, args.seed + args.seeds)), "wall_seconds": round(wall, 1),
        "jobs": args.jobs, "rows": sorted(rows.values(), key=lambda r: (r["searcher"], r["seed"])),
    }, command=command_line(args.argv))
    print(f"[replay] recorded in {store.display_url(args.storage)} (study {name!r}) in "
          f"{wall:.0f} s", flush=True)
    return 0


def _parse_searcher(entry: str) -> tuple[str, str | None, str | None]:
    """``NAME`` or ``optuna:SAMPLER:PRUNER`` (an Optuna-backed searcher with other parts,
    as ``bench run --searcher optuna --sampler S --pruner P``); unknown names fail here."""
    from searchers.base import SearchSettings
    from searchers.registry import get_searcher
    name, *parts = entry.split(":")
    searcher = get_searcher(name)
    if len(parts) > 2 or (parts and searcher.backend != "optuna"):
        raise UserError(f"--searchers: {entry!r}: only an Optuna-backed searcher takes "
                        ":SAMPLER[:PRUNER]")
    sampler = parts[0] or None if parts else None
    pruner = parts[1] or None if len(parts) > 1 else None
    searcher.study_components(SearchSettings(seed=0, epochs_per_trial=1, sampler=sampler,
                                             pruner=pruner))  # unknown parts fail here
    return name, sampler, pruner


def _key(fid: dict[str, Any], budget: int, patience: int, epochs: int) -> str:
    return f"{fid['model']}:{fid['configs']}:{fid['repeats']}:{budget}:{patience}:{epochs}"


def _store_run(rdb: Any, name: str, run: ReplayedRun, record: str, fid: dict[str, Any],
               budget: int, patience: int, epochs: int) -> None:
    from models.space import space_config
    from searchers.registry import get_searcher
    study = store.create_study(rdb, name, load_if_exists=False)
    seam.add_trials_at_once(rdb, name, frozen_trials(run))
    spec = run.spec
    study.set_user_attr(schema.STUDY_BENCH, {
        "kind": schema.KIND_REPLAY, "searcher": run.label, "backend": run.backend,
        "seed": spec.seed, "dataset": spec.dataset, "preset": spec.preset,
        "budget_epochs": budget, "epochs_per_trial": epochs, "patience": patience,
        "objective": schema.OBJECTIVE, "direction": schema.DIRECTION, "space": space_config(),
        "record_study": record, "surrogate_model": fid["model"],
        "summary": get_searcher(spec.searcher).summary,
        "replay_seconds": round(run.seconds, 3),
        "surrogate_key": _key(fid, budget, patience, epochs), "replay_done": True,
    })


def _store_summary(study: Any, args: ReplaySettings, command: str, searchers: list[str],
                   record: str, fid: dict[str, Any], wall: float, budget: int, epochs: int,
                   patience: int, machine: str, versions: dict[str, str], replayed: int) -> None:
    """The replay commands' provenance (``commands``: every command that replayed runs into
    this summary, in order; the top-level keys are the last one's); the rows stay."""
    seeds = list(range(args.seed, args.seed + args.seeds))
    old = study.user_attrs.get(schema.STUDY_BENCH) or {}
    commands = [c for c in old.get("commands", []) if isinstance(c, dict)]
    if not commands and old.get("replayed_runs"):  # a summary written before this list
        commands = [{k: old.get(k) for k in ("command", "wall_seconds", "replayed_runs",
                                             "searchers", "seeds")}]
    if replayed:
        commands.append({"command": command, "wall_seconds": round(wall, 1),
                         "replayed_runs": replayed, "searchers": searchers, "seeds": seeds})
    study.set_user_attr(schema.STUDY_BENCH, {
        "kind": schema.KIND_REPLAY_SUMMARY, "dataset": args.dataset, "preset": args.preset,
        "commands": commands,
        "command": command, "wall_seconds": round(wall, 1), "replayed_runs": replayed,
        "machine": machine, "versions": versions, "searchers": searchers,
        "seeds": seeds, "jobs": args.jobs,
        "budget_epochs": budget, "epochs_per_trial": epochs, "patience": patience,
        "record_study": record, "surrogate": fid,
    })
