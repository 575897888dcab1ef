"""Several objectives as a real multi-objective Optuna study, not KerasTuner's sum.

KerasTuner accepts a list of objectives but sums them into one number
(``keras_tuner.engine.objective.MultiObjective``): one arbitrary trade-off, no front. With
``multi_objective=True`` the Optuna-backed tuner gives each objective its own direction
in the study (``study.directions``, metric names set), tells Optuna every value, and
the front is ``study.best_trials``.

Which epoch stands for a trial: KerasTuner's own choice, the epoch its (summed)
objective ranks best, whose weights are the trial's checkpoint; every objective is read
at that epoch (``values_of``), so the values describe one real model.

Model size needs no user code: ``"params"`` names the built model's parameter count,
put into each epoch's logs by ``params_callback()``. A size cap is a constraint
(``max_params``), recorded with Optuna's constraint API so that samplers and
``best_trials`` treat larger models as infeasible; they are trained and kept, not
discarded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Sequence

import keras_tuner

from searchers import seam

if TYPE_CHECKING:
    import keras
    import optuna

PARAMS = "params"            # the objective/metric: the built model's parameter count
MAX_PARAMS = "max_params"    # the constraint's name in the study (n_params - cap <= 0: feasible)


def create_objective(objective: Any) -> Any:
    """KerasTuner's ``create_objective``, knowing ``"params"`` (minimised; KerasTuner
    cannot infer a direction for it)."""
    if isinstance(objective, str) and objective == PARAMS:
        return keras_tuner.Objective(PARAMS, "min")
    if isinstance(objective, (list, tuple)):
        return seam.kt_multi_objective([create_objective(o) for o in objective])
    return seam.kt_create_objective(objective)


def objectives_of(objective: Any) -> list[Any]:
    """The single objectives of a KerasTuner objective (a ``MultiObjective``'s list), or
    of what ``create_objective`` accepts."""
    if not isinstance(objective, keras_tuner.Objective):
        objective = create_objective(objective)
    return list(getattr(objective, "objectives", None) or [objective])


def names(objective: Any) -> list[str]:
    return [o.name for o in objectives_of(objective)]


def optuna_directions(objective: Any) -> list[Literal["minimize", "maximize"]]:
    return ["maximize" if o.direction == "max" else "minimize" for o in objectives_of(objective)]


def wants_params(objective: Any, max_params: int | None) -> bool:
    """Whether trials must log their parameter count (an objective or a cap needs it)."""
    return max_params is not None or PARAMS in names(objective)


def values_of(kt_trial: Any, objective: Any) -> list[float] | None:
    """Each objective's value at the epoch KerasTuner chose for ``kt_trial`` (its metrics
    after the trial hold that epoch's logs), or None if one is missing."""
    values = []
    for o in objectives_of(objective):
        if not kt_trial.metrics.exists(o.name):
            return None
        value = kt_trial.metrics.get_last_value(o.name)
        if value is None:
            return None
        values.append(float(value))
    return values


def constraint(n_params: float, max_params: int) -> float:
    """Optuna's convention: <= 0 feasible. A model of exactly ``max_params`` is allowed."""
    return float(n_params) - float(max_params)


def check_max_params(max_params: Any) -> int | None:
    if max_params is None:
        return None
    if isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 1:
        raise ValueError(f"max_params must be an int >= 1 or None; got {max_params!r}")
    return max_params


def check_pruner(pruner: optuna.pruners.BasePruner | None, objective: Any) -> None:
    """Optuna's ``Trial.report`` refuses multi-objective studies: no pruner can act on
    several objectives, so asking for one is an error rather than a silent no-op."""
    import optuna
    if pruner is None or isinstance(pruner, optuna.pruners.NopPruner):
        return
    raise ValueError(
        f"{type(pruner).__name__} cannot prune a multi-objective search ({', '.join(names(objective))}): "
        "Optuna's Trial.report refuses studies with several objectives. Pass pruner=None "
        "(every trial trains to the end), or search one objective to prune.")


def params_callback() -> keras.callbacks.Callback:
    """A Keras callback that puts the model's parameter count into every epoch's logs as
    ``"params"``. Place it first: Keras hands the same logs to the callbacks after it
    (KerasTuner's, the History that KerasTuner scores)."""
    import keras

    class ParamsMetric(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.n_params = float(self.model.count_params())

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is not None:
                logs[PARAMS] = self.n_params

    return ParamsMetric()


def with_params_callback(callbacks: Sequence[Any] | None) -> list[Any]:
    """``callbacks`` with a ``params_callback()`` in front (once)."""
    callbacks = list(callbacks or [])
    if not any(type(c).__name__ == "ParamsMetric" for c in callbacks):
        callbacks.insert(0, params_callback())
    return callbacks
