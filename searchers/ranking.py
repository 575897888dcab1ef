"""The study's best trials first: the one ranking best-k retention, ``get_best_trials`` and
the artifact store share, whichever process or searcher trained the trials."""
from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState


def best_first(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Every COMPLETE trial with finite values, best first. One objective: by value, then
    trial number. Several: the Pareto-optimal feasible trials first, then the others, each
    group by the first objective, then trial number."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.values and all(math.isfinite(v) for v in t.values)]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    if len(study.directions) == 1:
        return sorted(trials, key=lambda t: (sign * t.values[0], t.number))
    front = {t.number for t in study.best_trials}
    return sorted(trials, key=lambda t: (t.number not in front, sign * t.values[0], t.number))
