"""KerasTuner hyperparameters <-> Optuna distributions.

One mapping used in both directions: the Optuna-backed oracle suggests through it, and
the mirror of KerasTuner's own searchers records trials with the same distributions, so
every searcher's trials are comparable in one store.

Where Optuna cannot say what KerasTuner says, the grid is kept exactly: Optuna rejects
``log=True`` together with ``step`` (and KerasTuner's log ``step`` is a multiplier), so a
stepped log or reverse-log hyperparameter becomes a categorical over KerasTuner's own
grid of values. ``reverse_log`` without a step is sampled uniformly (Optuna has no such
scale); this changes the prior, not the range.
"""
from __future__ import annotations

import math
from typing import Any, cast

import keras_tuner
import optuna
from keras_tuner.src.engine.hyperparameters import hp_types
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def _grid(hp: Any) -> list[Any]:
    cast = int if isinstance(hp, hp_types.Int) else float
    return sorted({cast(round(v, 12)) for v in hp.values})


def _int(hp: hp_types.Int) -> BaseDistribution:
    step = hp.step or 1
    if hp.sampling == "linear":
        high = hp.min_value + (hp.max_value - hp.min_value) // step * step
        return IntDistribution(hp.min_value, high, step=step)
    if hp.sampling == "log" and step == 1 and not hp.step:
        return IntDistribution(hp.min_value, hp.max_value, log=True)
    return CategoricalDistribution(_grid(hp))


def _float(hp: hp_types.Float) -> BaseDistribution:
    if hp.step is None:
        return FloatDistribution(hp.min_value, hp.max_value, log=hp.sampling == "log")
    if hp.sampling == "linear":
        n = int(round((hp.max_value - hp.min_value) / hp.step, 9))
        # rounded: 0.0 + 3 * 0.3 = 0.8999999999999999, which Optuna would cut to 0.6
        high = round(hp.min_value + n * hp.step, 12)
        return FloatDistribution(hp.min_value, high, step=hp.step)
    return CategoricalDistribution(_grid(hp))


_MAPPERS = {
    hp_types.Int: _int,
    hp_types.Float: _float,
    hp_types.Choice: lambda hp: CategoricalDistribution(list(hp.values)),
    hp_types.Boolean: lambda hp: CategoricalDistribution([False, True]),
    hp_types.Fixed: lambda hp: CategoricalDistribution([hp.value]),
}


def distribution(hp: Any) -> BaseDistribution:
    """The Optuna distribution equivalent to one KerasTuner hyperparameter."""
    for hp_type, mapper in _MAPPERS.items():
        if isinstance(hp, hp_type):
            return mapper(hp)
    raise TypeError(f"unsupported hyperparameter type {type(hp).__name__} ({hp.name})")


def suggest(trial: optuna.Trial, hp: Any) -> Any:
    """Ask ``trial`` for a value of ``hp`` (public suggest API, define-by-run)."""
    dist = distribution(hp)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(hp.name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(hp.name, dist.low, dist.high, step=dist.step, log=dist.log)
    fdist = cast(FloatDistribution, dist)  # distribution() maps the rest to floats
    value = trial.suggest_float(hp.name, fdist.low, fdist.high, step=fdist.step, log=fdist.log)
    return round(value, 12) if fdist.step else value


def _on_grid(value: Any, choices: tuple[Any, ...]) -> Any:
    """The choice ``value`` equals up to float rounding, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    for choice in choices:
        if (isinstance(choice, (int, float)) and not isinstance(choice, bool)
                and math.isclose(value, choice, rel_tol=1e-9, abs_tol=1e-12)):
            return choice
    return None


def active_params(hps: keras_tuner.HyperParameters) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """Values and distributions of the active, searchable hyperparameters of ``hps``.

    KerasTuner's bookkeeping values (Hyperband's ``tuner/*``) are not in the space and
    are left out; values off the distribution's grid are snapped to it so that Optuna
    accepts them (KerasTuner computes stepped floats with rounding noise).
    """
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for hp in hps.space:
        if hp.name not in hps.values or not hps.is_active(hp):
            continue
        dist = distribution(hp)
        value = hps.values[hp.name]
        if isinstance(dist, FloatDistribution) and dist.step:
            value = round(dist.low + round((value - dist.low) / dist.step) * dist.step, 12)
        elif isinstance(dist, IntDistribution):
            value = int(value)
        elif isinstance(dist, CategoricalDistribution) and value not in dist.choices:
            value = _on_grid(value, dist.choices)  # a stepped log grid's rounding noise
            if value is None:
                continue  # e.g. a value outside a Choice after a space change: not comparable
        params[hp.name] = value
        dists[hp.name] = dist
    return params, dists
