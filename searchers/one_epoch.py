"""One epoch, then the best k: the baseline of "Is One Epoch All You Need For Multi-Fidelity
Hyperparameter Optimization?" (Egele et al., 2023).

Many random configurations train one epoch each; the best of them, by that epoch's
val_loss, continue to the full ``epochs_per_trial`` from their one-epoch checkpoints (the
way KerasTuner's Hyperband continues a promoted configuration: ``tuner/trial_id``,
``tuner/initial_epoch`` 1, so the first epoch is not paid twice). The paper found this
hard to beat at small budgets: a first epoch already ranks configurations well.

The plan comes from the run's epoch budget: half of it screens (one epoch each), the other
half continues the best ``k = half / (epochs_per_trial - 1)``; a continuation that stops
early (EarlyStopping) leaves epochs for the next-best screened configuration, and once
every screened configuration was continued, screening goes on. No state besides
KerasTuner's own trials (the plan is re-derived from them), so a run resumes as
KerasTuner resumes it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchers.base import Searcher, SearchSettings, keras_tuner_seed

if TYPE_CHECKING:
    import keras_tuner

DEFAULT_SCREENED = 30  # without an epoch budget (max_trials runs): configurations screened


def plan(budget_epochs: int | None, epochs_per_trial: int) -> tuple[int, int]:
    """(configurations screened for one epoch, how many of them continue)."""
    if epochs_per_trial <= 1:
        return (budget_epochs or DEFAULT_SCREENED), 0
    if not budget_epochs:
        return DEFAULT_SCREENED, max(1, DEFAULT_SCREENED // epochs_per_trial)
    continued = max(1, (budget_epochs // 2) // (epochs_per_trial - 1))
    return max(continued, budget_epochs - continued * (epochs_per_trial - 1)), continued


def _oracle_class() -> type:
    """Defined on first use: KerasTuner (hence Keras) loads only when a run starts."""
    import keras_tuner
    from keras_tuner.engine.trial import TrialStatus

    class OneEpochOracle(keras_tuner.oracles.HyperbandOracle):
        """HyperbandOracle's trial values and continuation, with a two-rung plan."""

        def __init__(self, *args: Any, screened: int, continued: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.screened, self.continued = screened, continued

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            trials = list(self.trials.values())
            rung0 = [t for t in trials if t.hyperparameters.values.get("tuner/round") == 0]
            went_on = {t.hyperparameters.values.get("tuner/trial_id") for t in trials
                       if t.hyperparameters.values.get("tuner/round") == 1}
            if len(rung0) >= self.screened and self.continued:
                done = [t for t in rung0 if t.status == TrialStatus.COMPLETED
                        and t.score is not None and t.trial_id not in went_on]
                if done:
                    best = sorted(done, key=lambda t: t.score,
                                  reverse=self.objective.direction == "max")[0]
                    values = dict(best.hyperparameters.values)
                    values.update({"tuner/trial_id": best.trial_id, "tuner/epochs": self.max_epochs,
                                   "tuner/initial_epoch": 1, "tuner/bracket": 0, "tuner/round": 1})
                    return {"status": TrialStatus.RUNNING, "values": values}
                if any(t.status == TrialStatus.RUNNING for t in rung0):
                    return {"status": TrialStatus.IDLE}
            values = self._random_values()
            if values is None:
                return {"status": TrialStatus.STOPPED, "values": None}
            values.update({"tuner/epochs": 1, "tuner/initial_epoch": 0, "tuner/bracket": 0,
                           "tuner/round": 0})
            return {"status": TrialStatus.RUNNING, "values": values}

    return OneEpochOracle


def one_epoch_tuner_class() -> type[keras_tuner.Tuner]:
    """KerasTuner's ``Hyperband`` tuner (continues from checkpoints) over the oracle above."""
    import keras_tuner

    oracle_class = _oracle_class()

    class OneEpochTopK(keras_tuner.Hyperband):
        def __init__(self, hypermodel: Any = None, objective: Any = None, max_epochs: int = 100,
                     seed: int | None = None, screened: int = DEFAULT_SCREENED,
                     continued: int = 1, **kwargs: Any) -> None:
            oracle = oracle_class(objective=objective, max_epochs=max_epochs, seed=seed,
                                  screened=screened, continued=continued)
            keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)

    return OneEpochTopK


class OneEpochTopKSearcher(Searcher):
    name = "one-epoch"
    backend = "keras_tuner"     # runs as a KerasTuner tuner: mirrored, resumed by its project
    summary = "one epoch for many random configurations, then the best k to the full epochs"

    def tuner_class(self) -> type[keras_tuner.Tuner]:
        return one_epoch_tuner_class()

    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        screened, continued = plan(settings.budget_epochs, settings.epochs_per_trial)
        return dict(max_epochs=settings.epochs_per_trial, seed=keras_tuner_seed(settings.seed),
                    screened=screened, continued=continued)

    def configure_oracle(self, oracle: keras_tuner.Oracle, settings: SearchSettings) -> None:
        if settings.max_trials and oracle.max_trials is None:
            oracle.max_trials = settings.max_trials
