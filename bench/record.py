"""``python -m bench record``: learning curves of configurations drawn uniformly from the
search space, for the replay benchmark's surrogate (``bench.surrogate``).

A record is an ordinary run of the Optuna-backed tuner with Optuna's RandomSampler (each
hyperparameter drawn uniformly over its own distribution: a log scale stays a log scale),
no pruning and no early stopping, so that every configuration trains the preset's full
``epochs_per_trial`` and its whole curve is known. It reuses everything a run has: trial
processes, crash isolation, resume (re-running the command continues it), one progress
line per configuration, TensorBoard. Every trial keeps its curve (``schema.T_CURVE``:
val_loss, val_accuracy, loss, accuracy and fit seconds per epoch), its parameter count and
its wall and fit seconds (wall - fit = the build and bookkeeping overhead).

``--repeats R`` then trains the first R recorded configurations once more each (same
values, another training seed: ``TrialTracker.training_seed`` derives it from the trial),
which measures how much a curve moves from one training seed to the next: the noise the
surrogate adds in replay. Repeats are enqueued trials (``schema.T_REPEAT_OF`` names the
original) that act as the run's remaining tickets; they are enqueued once.

Why not ordinary runs' trials: they also keep their curves, but a searcher's trials
crowd where it believes the optimum is and early stopping or pruning cuts their curves
short, so a surrogate fitted on them would be biased towards what that searcher liked.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from optuna.trial import TrialState

from bench import schema
from bench.errors import UserError
from bench.presets import get_preset
from bench.runner import RunConfig, format_summary

DEFAULT_REPEATS = 10


def record_study_name(dataset: str, preset: str, seed: int) -> str:
    return schema.study_name(dataset, f"record-{preset}", seed)


def record_config(args: argparse.Namespace, max_trials: int) -> RunConfig:
    preset = get_preset(args.preset)
    epochs = args.epochs_per_trial or preset.epochs_per_trial
    return RunConfig(
        searcher="optuna", sampler="random", pruner="none", seed=args.seed, preset=args.preset,
        dataset=args.dataset, image_size=args.image_size, data_seed=args.data_seed,
        storage=args.storage, study=args.study or record_study_name(args.dataset, args.preset, args.seed),
        logdir=args.logdir, epochs_per_trial=epochs, max_trials=max_trials,
        # Only max_trials ends a record; failed trials' epochs must not end it first.
        budget_epochs=2 * max_trials * epochs, patience=0, kind=schema.KIND_RECORD,
        verbose=args.verbose, trials_per_process=args.trials_per_process)


def run_record(args: argparse.Namespace) -> int:
    if args.configs < 2:
        raise UserError(f"--configs must be >= 2 (got {args.configs})")
    if not 0 <= args.repeats <= args.configs:
        raise UserError(f"--repeats must be 0..--configs ({args.configs}); got {args.repeats}")
    from bench.supervisor import run_supervised, trials_per_process

    # Repeats already in the study hold tickets too: more --configs on a finished record
    # must add that many new configurations, not fewer.
    cfg = record_config(args, args.configs + _repeats_present(args))
    per_process = trials_per_process(cfg)
    summary = run_supervised(cfg, per_process) if per_process else _in_process(cfg)
    if args.repeats:
        if _enqueue_repeats(cfg, args.configs, args.repeats) is None:
            print(f"record: fewer than {args.configs} configurations finished; "
                  "re-run the command to continue", flush=True)
            return 1
        cfg = replace(cfg, max_trials=args.configs + args.repeats,
                      budget_epochs=2 * (args.configs + args.repeats) * cfg.epochs_per_trial)
        summary = run_supervised(cfg, per_process) if per_process else _in_process(cfg)
    print(format_summary(summary))
    return 0


def _repeats_present(args: argparse.Namespace) -> int:
    import optuna

    from bench import store
    name = args.study or record_study_name(args.dataset, args.preset, args.seed)
    try:
        study = optuna.load_study(study_name=name, storage=store.open_storage(args.storage))
    except KeyError:
        return 0
    return sum(schema.T_REPEAT_OF in t.user_attrs and t.state != TrialState.FAIL
               for t in study.get_trials(deepcopy=False))


def _in_process(cfg: RunConfig):
    from bench.runner import run_search
    return run_search(cfg)


def _enqueue_repeats(cfg: RunConfig, configs: int, repeats: int) -> int | None:
    """Enqueue re-trainings of the first ``repeats`` COMPLETE original configurations that
    have none yet; None while fewer than ``configs`` originals finished."""
    import optuna

    from bench import store
    study = optuna.load_study(study_name=cfg.study, storage=store.open_storage(cfg.storage))
    trials = study.get_trials(deepcopy=False)
    originals = [t for t in trials if schema.T_REPEAT_OF not in t.user_attrs
                 and t.state.is_finished() and t.state != TrialState.FAIL]
    if len(originals) < configs:
        return None
    done = {t.user_attrs[schema.T_REPEAT_OF] for t in trials if schema.T_REPEAT_OF in t.user_attrs}
    chosen = [t for t in originals if t.state == TrialState.COMPLETE][:repeats]
    added = 0
    for t in chosen:
        if t.number not in done:
            study.enqueue_trial(dict(t.params), user_attrs={schema.T_REPEAT_OF: t.number},
                                skip_if_exists=False)
            added += 1
    return added


def add_cli(sub: argparse._SubParsersAction) -> None:
    from bench.cli import DEFAULT_STORAGE, _image_size, _non_negative
    from bench.presets import PRESETS
    p = sub.add_parser("record", help="learning curves of uniform configurations (for bench replay)")
    p.add_argument("--dataset", default="toon", help="toon | digits | PATH to class folders")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS))
    p.add_argument("--configs", type=int, required=True, help="configurations to train")
    p.add_argument("--repeats", type=_non_negative, default=DEFAULT_REPEATS,
                   help=f"re-train this many of them with another training seed (default {DEFAULT_REPEATS})")
    p.add_argument("--epochs-per-trial", type=int, help="default: the preset's")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--image-size", type=_image_size)
    p.add_argument("--data-seed", type=_non_negative, default=0)
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--study", help="default <dataset>-record-<preset>-s<seed>")
    p.add_argument("--logdir", default="runs")
    p.add_argument("--trials-per-process", type=_non_negative, metavar="N")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=lambda args: run_record(args))
