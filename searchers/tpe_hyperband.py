"""BOHB on KerasTuner's own Hyperband: its brackets and its continued trainings, with every
new configuration proposed by Optuna's TPE instead of at random.

Neither library has it: Optuna's HyperbandPruner only stops trials (a promoted
configuration trains again from scratch, paying its first epochs twice), KerasTuner's
Hyperband continues promoted configurations from their checkpoints but draws new ones
uniformly. Here KerasTuner's ``HyperbandOracle`` keeps deciding the schedule (which
bracket, which configurations to promote, how many epochs); only its random draw for a new
configuration (``_random_values``) asks a TPE sampler instead, as BOHB does (Falkner et
al., 2018): the model is fitted on the finished trials of the largest budget (tuner/epochs)
that has at least ``min_points`` of them; before that, the draw stays KerasTuner's random
one. Nothing is stored besides KerasTuner's own trials, so resume is KerasTuner's: the
sampler is rebuilt from the oracle's trials for each proposal, seeded by the trial count.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchers.hyperband import Hyperband

if TYPE_CHECKING:
    import keras_tuner

MIN_POINTS = 5  # TPE's own start-up length in the Optuna-backed searchers


def _tpe_hyperband_oracle_class() -> type:
    """Defined on first use: KerasTuner (hence TensorFlow) loads only when a run starts."""
    import keras_tuner
    import optuna
    from keras_tuner.engine.trial import TrialStatus

    from searchers.seam import active_params, claim_untried, max_collisions, suggest

    class TPEHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
        def __init__(self, *args: Any, min_points: int = MIN_POINTS, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.min_points = min_points

        def _random_values(self) -> dict[str, Any] | None:
            history = self._largest_budget_history()
            if history is None:
                return super()._random_values()
            direction = (optuna.study.StudyDirection.MAXIMIZE if self.objective.direction == "max"
                         else optuna.study.StudyDirection.MINIMIZE)
            seed = (int(self.seed) * 7919 + len(self.trials)) % 2**32
            study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=0))
            study.add_trials(history)
            for _ in range(max_collisions(self) + 1):
                trial = study.ask()
                hps = keras_tuner.HyperParameters()
                for hp in self.hyperparameters.space:
                    hps.merge([hp])
                    if hps.is_active(hp):
                        hps.values[hp.name] = suggest(trial, hp)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # not a result
                if claim_untried(self, hps.values):
                    return hps.values
            return super()._random_values()  # TPE keeps proposing what was tried

        def _largest_budget_history(self) -> list[Any] | None:
            """Finished trials (params, score) at the largest budget with enough of them."""
            by_budget: dict[int, list[Any]] = {}
            for t in self.trials.values():
                if t.status != TrialStatus.COMPLETED or t.score is None:
                    continue
                budget = int(t.hyperparameters.values.get("tuner/epochs", self.max_epochs))
                params, dists = active_params(t.hyperparameters)
                by_budget.setdefault(budget, []).append(optuna.trial.create_trial(
                    params=params, distributions=dists, value=float(t.score)))
            enough = [b for b, trials in by_budget.items() if len(trials) >= self.min_points]
            return by_budget[max(enough)] if enough else None

    return TPEHyperbandOracle


def tpe_hyperband_tuner_class() -> type[keras_tuner.Tuner]:
    """KerasTuner's ``Hyperband`` tuner (continued training from checkpoints) over the
    TPE-proposing oracle."""
    import keras_tuner

    oracle_class = _tpe_hyperband_oracle_class()

    class TPEHyperband(keras_tuner.Hyperband):
        def __init__(self, hypermodel: Any = None, objective: Any = None, max_epochs: int = 100,
                     factor: int = 3, hyperband_iterations: int = 1, seed: int | None = None,
                     min_points: int = MIN_POINTS, **kwargs: Any) -> None:
            oracle = oracle_class(objective=objective, max_epochs=max_epochs, factor=factor,
                                  hyperband_iterations=hyperband_iterations, seed=seed,
                                  min_points=min_points)
            keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)

    return TPEHyperband


class TPEHyperbandSearcher(Hyperband):  # Hyperband's settings, TPE's proposals
    name = "tpe-hyperband"
    backend = "keras_tuner"     # runs as a KerasTuner tuner: mirrored, resumed by its project
    proposer = "optuna"         # new configurations come from Optuna's TPE
    summary = "BOHB: KerasTuner's Hyperband schedule, new configurations from Optuna's TPE"

    def tuner_class(self) -> type[keras_tuner.Tuner]:
        return tpe_hyperband_tuner_class()
