"""Warm start: the finished trials of an earlier search become a new study's history.

``OptunaSearch(..., warm_start=PATH_OR_STUDY)`` takes a KerasTuner project directory (any
project ``bench import-kt`` reads: ``searchers.kt_project_reader``) or an ``optuna.Study``.
Its COMPLETE trials are added to the new study once, before the first new trial, as
COMPLETE trials with their values and with distributions from this search's own space
(``searchers.seam``), so the sampler proposes from them at once (TPE's start-up trials
count them). They are not new trials: ``max_trials`` tickets and the benchmark's epoch
budget leave them out (``is_history``).

Spaces that differ: a trial with a value outside the new space is left out; a trial that
lacks some of the new space's hyperparameters is kept, as Optuna keeps any trial whose
parameters are a subset of the space (TPE models each parameter from the trials that have
it); hyperparameters the new space does not have are dropped. One line counts them. A
history that shares no hyperparameter with the new space, or whose objective or direction
differs from this search's, is a ``ConfigError``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchers import seam
from searchers.errors import ConfigError

WARM_START_ATTR = "warm_start"            # user attr of a history trial: where it came from
WARM_START_CHECKPOINT = "warm_start_checkpoint"  # its weights file in the source project
STUDY_WARM_STARTS = "warm_starts"          # study user attr: the sources added, once each
_EPOCHS = "epochs_trained"                 # 0: the budget of the new search leaves them out
log = logging.getLogger(__name__)


def is_history(trial: FrozenTrial) -> bool:
    """Whether a study trial came from a warm start (not trained by this search)."""
    return WARM_START_ATTR in trial.user_attrs


@dataclass
class History:
    """The finished trials of an earlier search, as found."""

    source: str                      # for messages and the trials' attr
    objective: str | None            # its metric name, where known
    direction: str | None            # "minimize" / "maximize", where known
    trials: list[FrozenTrial] = field(default_factory=list)   # COMPLETE, with a value


def load_history(warm_start: Any) -> History:
    """A KerasTuner project directory or an Optuna study as a ``History``."""
    if isinstance(warm_start, optuna.Study):
        if len(warm_start.directions) != 1:
            raise ConfigError(f"warm_start: study {warm_start.study_name!r} has several "
                              "objectives; warm start takes a single-objective history")
        names = warm_start.metric_names
        return History(source=f"study {warm_start.study_name!r}",
                       objective=names[0] if names else None,
                       direction=warm_start.direction.name.lower(),
                       trials=[t for t in warm_start.get_trials(deepcopy=False,
                                                                states=(TrialState.COMPLETE,))
                               if not is_history(t)])
    if isinstance(warm_start, (str, os.PathLike)):
        return _kt_project(Path(warm_start).expanduser().resolve())
    raise ConfigError("warm_start must be a KerasTuner project directory or an optuna.Study; "
                      f"got {type(warm_start).__name__}")


def _kt_project(path: Path) -> History:
    from searchers import kt_project_reader as reader
    project = reader.read_project(path)
    objective = reader.infer_objective(project.trials)
    retry_queue = {str(i) for i in (project.oracle or {}).get("retry_queue") or []}
    plans, skipped = [], []
    for t in project.trials:
        try:
            plans.append(reader.plan_trial(t, objective, retry_queue, project.oracle_space))
        except reader.Skip as exc:
            skipped.append((t.file, str(exc)))
    trials = []
    for plan, frozen in reader.build_trials(plans, {}, skipped):
        if frozen.state != TrialState.COMPLETE:
            continue
        weights = path / f"trial_{plan.trial.trial_id}" / "checkpoint.weights.h5"
        if weights.is_file():
            frozen.user_attrs[WARM_START_CHECKPOINT] = str(weights)
        trials.append(frozen)
    return History(source=f"KerasTuner project {path}", objective=objective.name,
                   direction=objective.direction if objective.name else None, trials=trials)


def add_history(study: optuna.Study, history: History, space: Any, objective_name: str) -> str | None:
    """Add ``history``'s trials to ``study`` (once per source), mapped onto ``space`` (a
    KerasTuner ``HyperParameters``); returns the one-line note, None if it was added before."""
    done = study.user_attrs.get(STUDY_WARM_STARTS) or []
    if any(d.get("source") == history.source for d in done if isinstance(d, dict)):
        return None
    direction = study.direction.name.lower()
    if history.direction is not None and history.direction != direction:
        raise ConfigError(f"warm_start: {history.source} was to {history.direction} "
                          f"{history.objective or 'its objective'}; this search is to {direction} "
                          f"{objective_name}")
    if history.objective and history.objective not in (objective_name, "score"):
        raise ConfigError(f"warm_start: {history.source} optimised {history.objective}, "
                          f"this search {objective_name}: its values would mean something else")
    dists = {hp.name: seam.distribution(hp) for hp in space.space}
    added: list[FrozenTrial] = []
    outside = partial = 0
    shared_any = False
    for old in history.trials:
        shared = {n: v for n, v in old.params.items() if n in dists}
        shared_any = shared_any or bool(shared)
        params = {n: seam.to_param(dists[n], v, strict=True) for n, v in shared.items()}
        if not shared or any(v is seam.OFF for v in params.values()):
            outside += 1
            continue
        partial += len(params) < len(dists)
        attrs = {WARM_START_ATTR: history.source, _EPOCHS: 0}
        if WARM_START_CHECKPOINT in old.user_attrs:
            attrs[WARM_START_CHECKPOINT] = old.user_attrs[WARM_START_CHECKPOINT]
        added.append(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=old.value, params=params,
            distributions={n: dists[n] for n in params}, user_attrs=attrs))
    if history.trials and not shared_any:
        raise ConfigError(f"warm_start: {history.source} shares no hyperparameter with this "
                          f"search's space ({', '.join(dists) or 'empty'})")
    if not history.trials:
        raise ConfigError(f"warm_start: {history.source} has no finished trial with a value")
    study.add_trials(added)
    study.set_user_attr(STUDY_WARM_STARTS, [*done, {"source": history.source, "added": len(added),
                                                   "outside": outside, "partial": partial}])
    note = f"warm start: {len(added)} trial(s) from {history.source}"
    extras = [f"{outside} outside this space left out"] if outside else []
    extras += [f"{partial} lacking some of its hyperparameters (kept as partial trials)"] if partial else []
    return note + (f" ({'; '.join(extras)})" if extras else "")
