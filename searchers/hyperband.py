"""KerasTuner's Hyperband, unmodified in what it decides.

``max_epochs`` is the run's epochs per trial; brackets repeat until the epoch budget
is spent (hyperband_iterations is set high), so partial trainings count as the epochs
they ran.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchers.base import NO_TRIAL_LIMIT, Searcher, SearchSettings, keras_tuner_seed

if TYPE_CHECKING:  # imported when a run starts, not to list searcher names
    import keras_tuner


class Hyperband(Searcher):
    name = "hyperband"
    backend = "keras_tuner"
    summary = "KerasTuner Hyperband (factor 3)"

    def tuner_class(self) -> type[keras_tuner.Tuner]:
        import keras_tuner
        return keras_tuner.Hyperband

    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        return dict(max_epochs=settings.epochs_per_trial, factor=3,
                    hyperband_iterations=NO_TRIAL_LIMIT, seed=keras_tuner_seed(settings.seed))

    def configure_oracle(self, oracle: keras_tuner.Oracle, settings: SearchSettings) -> None:
        # KerasTuner's HyperbandOracle takes no max_trials argument; it honours the attribute.
        if settings.max_trials and oracle.max_trials is None:
            oracle.max_trials = settings.max_trials
