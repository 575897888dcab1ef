"""Trial "tickets": WAITING trials that cap a study at ``max_trials`` across processes.

Kept apart from the oracle (which needs KerasTuner, hence TensorFlow) so that a run's
launcher can issue them without loading TensorFlow.
"""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from searchers.warm_start import is_history


def top_up_tickets(study: optuna.Study, max_trials: int) -> int:
    """Enqueue WAITING trials ("tickets") until ``study`` holds ``max_trials`` trials that
    did not fail; returns how many were added. Not atomic: when several workers start at
    once, issue the tickets once before starting them and pass ``manage_tickets=False`` to
    their tuners (``OptunaSearch``) or oracles (two top-ups racing could issue more than
    ``max_trials`` tickets)."""
    trials = study.get_trials(deepcopy=False)
    # a warm start's history is not a trial of this search (searchers.warm_start)
    missing = max_trials - sum(t.state != TrialState.FAIL and not is_history(t) for t in trials)
    for _ in range(missing):
        study.enqueue_trial({}, skip_if_exists=False)
    return max(missing, 0)
