"""Trial "tickets": WAITING trials that cap a study at ``max_trials`` across processes.

Kept apart from the oracle (which needs KerasTuner, hence TensorFlow) so that a run's
launcher can issue them without loading TensorFlow.
"""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from searchers.warm_start import is_history

TICKET_WITHDRAWN = "ticket withdrawn: the study already has max_trials trials"


def top_up_tickets(study: optuna.Study, max_trials: int, at_most: int | None = None) -> int:
    """Enqueue WAITING trials ("tickets") until ``study`` holds ``max_trials`` trials that
    did not fail (at most ``at_most`` now: a process that issues its own tickets takes one
    at a time, so none is left waiting when it stops); returns how many were added. Not
    atomic: when several workers start at once, issue the tickets once before starting them
    and pass ``manage_tickets=False`` to their tuners (``OptunaSearch``) or oracles (two
    top-ups racing could issue more than ``max_trials`` tickets)."""
    trials = study.get_trials(deepcopy=False)
    # a warm start's history is not a trial of this search (searchers.warm_start)
    missing = max_trials - sum(t.state != TrialState.FAIL and not is_history(t) for t in trials)
    if at_most is not None:
        missing = min(missing, at_most)
    for _ in range(missing):
        study.enqueue_trial({}, skip_if_exists=False)
    return max(missing, 0)


def withdraw_extra_tickets(study: optuna.Study, max_trials: int) -> int:
    """Fail the WAITING tickets beyond ``max_trials`` (a study resumed with a lower limit),
    each with the reason, so that none waits for good; returns how many."""
    from searchers.seam import storage_of, storage_trial_id
    trials = study.get_trials(deepcopy=False)
    started = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
                  and not is_history(t) for t in trials)
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    extra = waiting[max(0, max_trials - started):]
    storage = storage_of(study)
    withdrawn = 0
    for t in extra:
        try:
            storage.set_trial_user_attr(storage_trial_id(t), "error", TICKET_WITHDRAWN)
            withdrawn += storage.set_trial_state_values(storage_trial_id(t), TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # taken meanwhile
    return withdrawn
