"""KerasTuner's BayesianOptimization with as many random initial points as TPE's startup.

KerasTuner's default is 3 x (number of hyperparameters) = 33 random trials on the seed's
space, more than a standard budget holds: there the default row is RandomSearch under
another name. This variant changes only ``num_initial_points`` (to TPE's
``n_startup_trials``), so the Gaussian process gets to decide; KerasTuner's code decides
everything else.
"""
from __future__ import annotations

from typing import Any

from searchers.base import SearchSettings
from searchers.bayesian import BayesianOptimization
from searchers.optuna_components import TPE_STARTUP_TRIALS


class BayesianMatchedStart(BayesianOptimization):
    name = "bayesian5"
    summary = f"KerasTuner BayesianOptimization, {TPE_STARTUP_TRIALS} initial points like TPE"

    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        return {**super().tuner_kwargs(settings), "num_initial_points": TPE_STARTUP_TRIALS}
