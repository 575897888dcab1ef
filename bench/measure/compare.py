"""``python -m bench compare``: every searcher x seed on one space, split and budget.

Runs are sequential (each in its own trial processes, see bench/run/supervisor.py), each resumable:
re-running the same compare skips what the store already holds. Afterwards each study's
best configuration is retrained on train+val and tested, next to the seed's baseline.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from typing import Any, cast

import optuna
from optuna.trial import TrialState

from bench.core import backends, schema, store
from bench.core.errors import UserError
from bench.core.measurement import command_line, record_measurement
from bench.run.runner import RunConfig, format_summary, run_search
from bench.run.supervisor import run_supervised, trials_per_process
from searchers.registry import get_searcher

BASELINE_MAX_EPOCHS = 60
MAX_FRONT_RETRAINS = 5  # per multi-objective run: its Pareto-optimal trials, best val_loss first


@dataclass(frozen=True)
class CompareSettings:
    """``bench compare``'s flags: every searcher x seed with the ``run`` flags of ``base``."""

    base: RunConfig            # the runs' configuration; searcher and seed set per run
    searchers: tuple[str, ...]
    seeds: tuple[int, ...]
    retrain: bool = True       # --no-retrain: False
    report: bool = False       # --report: write RESULTS.md afterwards
    argv: tuple[str, ...] = ()  # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CompareSettings":
        searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
        if not searchers:
            raise UserError("--searchers is empty")
        if len(set(searchers)) != len(searchers):
            twice = sorted({s for s in searchers if searchers.count(s) > 1})
            raise UserError(f"--searchers names {', '.join(twice)} twice: each searcher once")
        if args.seeds <= 0:
            raise UserError(f"--seeds must be > 0 (got {args.seeds})")
        return cls(base=RunConfig.from_args(args, searchers[0], args.seed), searchers=tuple(searchers),
                   seeds=tuple(range(args.seed, args.seed + args.seeds)),
                   retrain=not args.no_retrain, report=args.report, argv=tuple(args.argv))

    def config(self, searcher: str, seed: int) -> RunConfig:
        return replace(self.base, searcher=searcher, seed=seed)


def run_compare(settings: CompareSettings) -> int:
    searchers, seeds = list(settings.searchers), list(settings.seeds)
    if not searchers:
        raise UserError("--searchers is empty")
    if not seeds:
        raise UserError("--seeds must be > 0 (got 0)")
    for name in searchers:
        get_searcher(name)  # unknown names fail before any work starts
    started = time.monotonic()
    summaries = []
    for seed in seeds:  # seed-major: a cut-short compare still has every searcher
        for name in searchers:
            cfg = settings.config(name, seed)
            per_process = trials_per_process(cfg)
            summary = run_supervised(cfg, per_process) if per_process else run_search(cfg)
            print(format_summary(summary), flush=True)
            summaries.append(summary)
    cfg = settings.config(searchers[0], seeds[0]).resolved()
    if settings.retrain:
        _retrain_all(cfg, [s.study_name for s in summaries], seeds)
    storage = store.open_storage(cfg.storage)
    dataset = optuna.load_study(study_name=summaries[0].study_name, storage=storage).user_attrs[
        schema.STUDY_BENCH]["dataset"]
    # a multi-objective compare is its own record, beside the single-objective one
    # and one per Keras backend (TensorFlow's name as it always was)
    tag = "".join(f"-{t}" for t in (backends.name_tag(cfg.backend),
                                   schema.MULTI_OBJECTIVE_TAG if cfg.multi_objective else "") if t)
    record_measurement(storage, f"{dataset}-compare{tag}", schema.KIND_COMPARE, {
        "dataset": dataset, "keras_backend": cfg.backend,
        "wall_seconds": round(time.monotonic() - started, 1),
        "searchers": searchers, "seeds": seeds,
        "budget_epochs": cfg.budget_epochs, "epochs_per_trial": cfg.epochs_per_trial,
        "preset": cfg.preset, "image_size": list(cfg.image_size or ()),
    }, command=command_line(settings.argv))
    print(f"compare done in {time.monotonic() - started:.0f}s: "
          f"{len(summaries)} runs in {store.display_url(cfg.storage)}")
    if settings.report:
        from bench.report.results import write_report
        print(f"wrote {write_report(cfg.storage)}")
    return 0


def _retrain_all(cfg: RunConfig, study_names: list[str], seeds: list[int]) -> None:
    """Best configuration of each study, and the baseline per seed, on the test split."""
    from bench.run.retrain import epochs_to_best, retrain
    from bench.run.runner import load_run_data

    storage = store.open_storage(cfg.storage)
    data = load_run_data(cfg)  # the very data the searches saw
    batch_size = cast(int, cfg.batch_size)  # set by resolved()
    for name in study_names:
        study = optuna.load_study(study_name=name, storage=storage)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if not done:
            continue
        if len(study.directions) > 1:
            _retrain_front(study, name, data, cfg)
            continue
        best = min(done, key=lambda t: cast(float, t.value))  # COMPLETE: a value
        old = study.user_attrs.get(schema.STUDY_RETRAIN)
        if old and old.get("trial") == best.number:
            continue
        seed = study.user_attrs[schema.STUDY_BENCH]["seed"]
        per_trial = cast(int, cfg.epochs_per_trial)  # set by resolved()
        result = retrain(data, best.params, epochs_to_best(best, per_trial), seed, batch_size)
        study.set_user_attr(schema.STUDY_RETRAIN, {**result, "trial": best.number,
                                                   "val_loss": best.value})
        print(f"retrained {name} trial #{best.number}: test accuracy "
              f"{result['test_accuracy']:.4f}, loss {result['test_loss']:.4f}, "
              f"{result['n_params']} params", flush=True)
    _retrain_baselines(storage, data, seeds, batch_size, cfg.backend)


def _retrain_front(study: optuna.Study, name: str, data: Any, cfg: RunConfig) -> None:
    """A multi-objective run: each of its Pareto-optimal trials (``study.best_trials``:
    feasible ones only), at most ``MAX_FRONT_RETRAINS`` by the first objective, retrained
    and tested as ``retrain_front``; ``retrain`` is the row of the best first objective
    (what the single-objective views read). Rows already there are kept (resume)."""
    from bench.run.retrain import epochs_to_best, retrain

    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    front = sorted(study.best_trials, key=lambda t: (sign * t.values[0], t.number))
    front = front[:MAX_FRONT_RETRAINS]
    old = {r.get("trial"): r for r in study.user_attrs.get(schema.STUDY_RETRAIN_FRONT) or []
           if isinstance(r, dict)}
    seed = study.user_attrs[schema.STUDY_BENCH]["seed"]
    per_trial, batch_size = cast(int, cfg.epochs_per_trial), cast(int, cfg.batch_size)
    rows = []
    for t in front:
        row = old.get(t.number)
        if row is None:
            result = retrain(data, t.params, epochs_to_best(t, per_trial), seed, batch_size)
            row = {**result, "trial": t.number, "val_loss": t.values[0]}
            print(f"retrained {name} trial #{t.number} (Pareto-optimal): test accuracy "
                  f"{result['test_accuracy']:.4f}, loss {result['test_loss']:.4f}, "
                  f"{result['n_params']} params", flush=True)
        rows.append(row)
    if [r.get("trial") for r in rows] != list(old):
        study.set_user_attr(schema.STUDY_RETRAIN_FRONT, rows)
    if rows and (study.user_attrs.get(schema.STUDY_RETRAIN) or {}).get("trial") != rows[0]["trial"]:
        study.set_user_attr(schema.STUDY_RETRAIN, rows[0])


def _retrain_baselines(storage: optuna.storages.BaseStorage, data: Any, seeds: list[int],
                       batch_size: int, backend: str = backends.DEFAULT) -> None:
    from bench.run.retrain import baseline_epochs, retrain

    for seed in seeds:
        on = backends.name_tag(backend)
        name = f"{data.name}-baseline{'-' + on if on else ''}-s{seed}"
        study = store.create_study(storage, name)
        old = study.user_attrs.get(schema.STUDY_BENCH, {})
        if schema.STUDY_RETRAIN in study.user_attrs and old.get("fingerprint") == data.fingerprint:
            continue
        # The seed trained its baseline to convergence (early stopping), so it gets a
        # generous cap here, not the per-trial cap of the search.
        epochs, val_loss = baseline_epochs(data, BASELINE_MAX_EPOCHS, seed, batch_size)
        result = retrain(data, None, epochs, seed, batch_size)
        study.set_user_attr(schema.STUDY_BENCH, {"kind": schema.KIND_BASELINE, "dataset": data.name,
                                                 "seed": seed, "val_loss": val_loss,
                                                 "fingerprint": data.fingerprint,
                                                 "keras_backend": backend})
        study.set_user_attr(schema.STUDY_RETRAIN, result)
        print(f"baseline s{seed}: test accuracy {result['test_accuracy']:.4f}, "
              f"loss {result['test_loss']:.4f}, {result['n_params']} params", flush=True)
