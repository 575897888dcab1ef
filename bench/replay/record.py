"""``python -m bench record``: learning curves of configurations drawn uniformly from the
search space, for the replay benchmark's surrogate (``bench.replay.surrogate``).

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
import logging
from dataclasses import dataclass, replace
from typing import cast

from optuna.trial import TrialState

from bench.core import schema
from bench.core.errors import UserError
from bench.run.presets import get_preset
from bench.run.runner import RunConfig, format_summary

DEFAULT_REPEATS = 10

log = logging.getLogger(__name__)


def record_study_name(dataset: str, preset: str, seed: int) -> str:
    return schema.study_name(dataset, f"record-{preset}", seed)


@dataclass(frozen=True)
class RecordSettings:
    """``bench record``'s flags."""

    configs: int
    repeats: int = DEFAULT_REPEATS
    dataset: str = "toon"
    preset: str = "standard"
    epochs_per_trial: int | None = None  # None: the preset's
    seed: int = 0
    image_size: tuple[int, int] | None = None
    data_seed: int = 0
    storage: str = schema.DEFAULT_STORAGE
    study: str | None = None             # None: <dataset>-record-<preset>-s<seed>
    logdir: str = "runs"
    trials_per_process: int | None = None
    verbose: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RecordSettings":
        return cls(configs=args.configs, repeats=args.repeats, dataset=args.dataset,
                   preset=args.preset, epochs_per_trial=args.epochs_per_trial, seed=args.seed,
                   image_size=args.image_size, data_seed=args.data_seed, storage=args.storage,
                   study=args.study, logdir=args.logdir,
                   trials_per_process=args.trials_per_process, verbose=args.verbose)

    @property
    def study_name(self) -> str:
        return self.study or record_study_name(self.dataset, self.preset, self.seed)


def record_config(settings: RecordSettings, max_trials: int) -> RunConfig:
    preset = get_preset(settings.preset)
    epochs = settings.epochs_per_trial or preset.epochs_per_trial
    return RunConfig(
        searcher="optuna", sampler="random", pruner="none", seed=settings.seed,
        preset=settings.preset, dataset=settings.dataset, image_size=settings.image_size,
        data_seed=settings.data_seed, storage=settings.storage, study=settings.study_name,
        logdir=settings.logdir, epochs_per_trial=epochs, max_trials=max_trials,
        # Only max_trials ends a record; failed trials' epochs must not end it first.
        budget_epochs=2 * max_trials * epochs, patience=0, kind=schema.KIND_RECORD,
        verbose=settings.verbose, trials_per_process=settings.trials_per_process)


def run_record(settings: RecordSettings) -> int:
    if settings.configs < schema.SURROGATE_MIN_CONFIGS:  # what replay's surrogate needs
        raise UserError(f"--configs must be >= {schema.SURROGATE_MIN_CONFIGS} (got {settings.configs})")
    if not 0 <= settings.repeats <= settings.configs:
        raise UserError(f"--repeats must be 0..--configs ({settings.configs}); "
                        f"got {settings.repeats}")
    from bench.run.supervisor import run_supervised, trials_per_process

    # Repeats already in the study hold tickets too: more --configs on a finished record
    # must add that many new configurations, not fewer.
    cfg = record_config(settings, settings.configs + _repeats_present(settings))
    per_process = trials_per_process(cfg)
    summary = run_supervised(cfg, per_process) if per_process else _in_process(cfg)
    if settings.repeats:
        if _enqueue_repeats(cfg, settings.configs, settings.repeats) is None:
            log.warning("record: fewer than %d configurations finished; "
                        "re-run the command to continue", settings.configs)
            return 1
        total = settings.configs + settings.repeats
        cfg = replace(cfg, max_trials=total,
                      budget_epochs=2 * total * cast(int, cfg.epochs_per_trial))
        summary = run_supervised(cfg, per_process) if per_process else _in_process(cfg)
    print(format_summary(summary))
    return 0


def _repeats_present(settings: RecordSettings) -> int:
    import optuna

    from bench.core import store
    try:
        study = optuna.load_study(study_name=settings.study_name,
                                  storage=store.open_storage(settings.storage))
    except KeyError:
        return 0
    return sum(schema.T_REPEAT_OF in t.user_attrs and t.state != TrialState.FAIL
               for t in study.get_trials(deepcopy=False))


def _in_process(cfg: RunConfig):
    from bench.run.runner import run_search
    return run_search(cfg)


def _enqueue_repeats(cfg: RunConfig, configs: int, repeats: int) -> int | None:
    """Enqueue re-trainings of the first ``repeats`` COMPLETE original configurations that
    have none yet; None while fewer than ``configs`` originals finished."""
    import optuna

    from bench.core import store
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
