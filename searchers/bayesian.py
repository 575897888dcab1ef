"""KerasTuner's BayesianOptimization (Gaussian process), unmodified in what it decides."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchers.base import NO_TRIAL_LIMIT, Searcher, SearchSettings, keras_tuner_seed

if TYPE_CHECKING:  # imported when a run starts, not to list searcher names
    import keras_tuner


class BayesianOptimization(Searcher):
    name = "bayesian"
    backend = "keras_tuner"
    summary = "KerasTuner BayesianOptimization"

    def tuner_class(self) -> type[keras_tuner.Tuner]:
        import keras_tuner
        return keras_tuner.BayesianOptimization

    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        return dict(max_trials=settings.max_trials or NO_TRIAL_LIMIT,
                    seed=keras_tuner_seed(settings.seed))
