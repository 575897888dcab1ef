"""Trials that no process runs any more: failed where they stand, or not retried.

A process that holds a study (its run lock) fails the RUNNING trials a dead process left,
counting the epochs they trained; KerasTuner would retry such a trial on resume, except one
whose process crashed (a configuration that kills its process costs one trial, not the run).
Shared by the runner (every start) and the supervisor (a trial process that died).
"""
from __future__ import annotations

from typing import Any, Mapping

from bench.core import schema

INTERRUPTED_TRIAL = "interrupted: the process running this trial ended before it finished"


def fail_dead_trials(study: Any, crashed: str | None = None,
                     only_ids: set[int] | None = None,
                     trained: Mapping[int, int] | None = None) -> int:
    """Fail the RUNNING trials of a study that no process runs any more (its run lock is
    ours), so that they stop holding a place and their epochs count; returns how many.
    The epochs they reported stay as intermediate values (what ``epochs_used`` counts).

    ``crashed``: why their process died (``bench.run.supervisor``); such a trial is not
    retried. ``only_ids``: fail only these storage ids (a worker's own trials).
    ``trained``: epochs a trial trained beyond those it reported, by storage id (a store
    outage kept them from the study: ``bench.core.unstored``)."""
    from optuna.trial import TrialState

    from searchers.seam import storage_of, storage_trial_id
    storage = storage_of(study)  # Optuna has no public way to set attrs on a trial it did not ask
    dead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if only_ids is None or storage_trial_id(t) in only_ids]
    for t in dead:
        tid = storage_trial_id(t)
        storage.set_trial_user_attr(tid, schema.T_ERROR, crashed or INTERRUPTED_TRIAL)
        storage.set_trial_user_attr(tid, schema.T_INTERRUPTED, True)
        if crashed:
            storage.set_trial_user_attr(tid, schema.T_CRASHED, crashed)
        storage.set_trial_user_attr(tid, schema.T_EPOCHS, max(len(t.intermediate_values),
                                                              (trained or {}).get(tid, 0)))
        study.tell(t.number, state=TrialState.FAIL)
    return len(dead)


def drop_crashed_retries(oracle: Any, study: Any, *, records_live: bool) -> list[str]:
    """KerasTuner retries a trial its process left unfinished; not one whose process
    crashed (its record says ``crashed``): that trial ends FAILED here instead, so a
    configuration that kills its process costs one trial. Returns the dropped ids."""
    from keras_tuner.engine.trial import TrialStatus

    from searchers import seam

    queue = seam.retry_queue(oracle)
    if not queue:
        return []
    by_storage_id: dict[int, Any] = {}
    latest: dict[str, Any] = {}  # KerasTuner trial id -> its latest record
    for t in study.get_trials(deepcopy=False):
        by_storage_id[seam.storage_trial_id(t)] = t
        if (kt_id := t.user_attrs.get(schema.T_KT_ID)) is not None:
            latest[kt_id] = t
    dropped = []
    for kt_id in list(queue):
        # An Optuna-backed oracle knows its trials' records; a mirrored trial's is the latest
        # record with its KerasTuner id.
        record = (by_storage_id.get(oracle.storage_id_of(kt_id)) if records_live
                  else latest.get(kt_id))
        if record is None or not record.user_attrs.get(schema.T_CRASHED):
            continue
        queue.remove(kt_id)
        trial = oracle.trials[kt_id]
        trial.status = TrialStatus.FAILED
        trial.message = record.user_attrs[schema.T_CRASHED]
        seam.end_order(oracle).append(kt_id)
        seam.save_trial(oracle, trial)
        dropped.append(kt_id)
    if dropped:
        oracle.save()
    return dropped
