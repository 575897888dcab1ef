"""The Optuna-backed searchers: one class, configured by sampler and pruner names."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from searchers.base import Searcher, SearchSettings
from searchers.optuna_components import DEFAULT_PRUNER, DEFAULT_SAMPLER, make_pruner, make_sampler

if TYPE_CHECKING:  # imported when a run starts, not to list searcher names
    import keras_tuner


class OptunaBacked(Searcher):
    """KerasTuner's Tuner API with an Optuna study deciding; subclasses pick defaults."""

    backend = "optuna"
    parallel_workers = True
    records_live = True  # the OptunaOracle decides in the run's study and records there
    sampler: ClassVar[str] = "tpe"
    pruner: ClassVar[str] = "none"

    def tuner_class(self) -> type[keras_tuner.Tuner]:
        from searchers.optuna_tuner import OptunaSearch
        return OptunaSearch

    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        # The run owns the study (created with this sampler and pruner in bench.core.store),
        # so that KerasTuner and Optuna searchers are stored the same way.
        kwargs: dict[str, Any] = dict(max_trials=settings.max_trials, seed=settings.seed,
                                      study=settings.study, manage_tickets=settings.issue_tickets)
        if settings.multi_objective or settings.max_params is not None:
            kwargs.update(multi_objective=settings.multi_objective, max_params=settings.max_params)
        return kwargs

    def study_components(self, settings: SearchSettings):
        sampler, pruner = self._choices(settings)
        if settings.multi_objective and settings.pruner is None:
            # no pruner acts on several objectives (Optuna's Trial.report refuses them): the
            # default's pruner is dropped; one asked for with --pruner is refused by the run
            pruner = "none"
        return make_sampler(sampler, settings.seed), make_pruner(pruner, settings.epochs_per_trial)

    def label(self, settings: SearchSettings) -> str:
        sampler, pruner = self._choices(settings)
        if (sampler, pruner) == (self.sampler, self.pruner):
            return self.name
        return f"optuna-{sampler}-{pruner}"

    def _choices(self, settings: SearchSettings) -> tuple[str, str]:
        return settings.sampler or self.sampler, settings.pruner or self.pruner


class Optuna(OptunaBacked):
    """The recommended default (RESULTS.md): what OptunaSearch does with no sampler/pruner."""

    name = "optuna"
    summary = ("Optuna-backed tuner, default TPE (10 start-up trials) + successive halving "
               "from epoch 2; choose --sampler and --pruner")
    sampler = DEFAULT_SAMPLER
    pruner = DEFAULT_PRUNER
