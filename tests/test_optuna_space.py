"""KerasTuner hyperparameters -> Optuna distributions (searchers/seam.py)."""
from __future__ import annotations

import math

import keras_tuner
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from searchers.seam import active_params, distribution, suggest
from tests.spaces import every_kind

optuna.logging.set_verbosity(optuna.logging.WARNING)


def hp_of(kind: str, *args, **kwargs):
    hps = keras_tuner.HyperParameters()
    getattr(hps, kind)(*args, **kwargs)
    return hps.space[0]


# ---- the mapping --------------------------------------------------------------------------
@pytest.mark.parametrize("hp, expected", [
    (hp_of("Int", "a", 1, 9), IntDistribution(1, 9)),
    (hp_of("Int", "a", 0, 10, step=3), IntDistribution(0, 9, step=3)),   # top snapped to grid
    (hp_of("Int", "a", 0, 10, step=5), IntDistribution(0, 10, step=5)),
    (hp_of("Int", "a", 1, 1000, sampling="log"), IntDistribution(1, 1000, log=True)),
    (hp_of("Float", "a", 0.0, 1.0), FloatDistribution(0.0, 1.0)),
    (hp_of("Float", "a", 0.0, 1.0, step=0.25), FloatDistribution(0.0, 1.0, step=0.25)),
    (hp_of("Float", "a", 0.0, 1.0, step=0.3), FloatDistribution(0.0, 0.9, step=0.3)),
    (hp_of("Float", "a", 1e-4, 1e-1, sampling="log"), FloatDistribution(1e-4, 1e-1, log=True)),
    # Optuna has no reverse-log scale: uniform over the same range (a prior change only)
    (hp_of("Float", "a", 0.1, 0.9, sampling="reverse_log"), FloatDistribution(0.1, 0.9)),
    (hp_of("Choice", "a", ["x", "y", "z"]), CategoricalDistribution(["x", "y", "z"])),
    (hp_of("Choice", "a", [8, 16, 32]), CategoricalDistribution([8, 16, 32])),
    (hp_of("Boolean", "a"), CategoricalDistribution([False, True])),
    (hp_of("Fixed", "a", "relu"), CategoricalDistribution(["relu"])),
])
def test_distribution(hp, expected):
    assert distribution(hp) == expected


def test_int_log_with_step_is_kerastuner_grid():
    # Optuna rejects log=True with step; KerasTuner's log step is a multiplier
    dist = distribution(hp_of("Int", "a", 1, 64, step=2, sampling="log"))
    assert dist == CategoricalDistribution([1, 2, 4, 8, 16, 32, 64])
    assert all(type(c) is int for c in dist.choices)  # KerasTuner's own grid yields floats
    dist = distribution(hp_of("Int", "a", 2, 200, step=10, sampling="log"))
    assert dist == CategoricalDistribution([2, 20, 200])


def test_float_log_and_reverse_log_with_step_are_kerastuner_grids():
    log = hp_of("Float", "a", 0.001, 1.0, step=10, sampling="log")
    assert distribution(log) == CategoricalDistribution([0.001, 0.01, 0.1, 1.0])
    rlog = hp_of("Float", "a", 0.1, 10.0, step=10, sampling="reverse_log")
    dist = distribution(rlog)
    assert isinstance(dist, CategoricalDistribution)
    assert dist.choices == tuple(sorted(round(v, 12) for v in rlog.values))
    assert min(dist.choices) == pytest.approx(0.1) and max(dist.choices) == pytest.approx(10.0)


def test_unsupported_type_raises():
    class Odd:
        name = "odd"
    with pytest.raises(TypeError, match="odd"):
        distribution(Odd())


# ---- active_params --------------------------------------------------------------------------
def conditional_space():
    hps = keras_tuner.HyperParameters()
    kind = hps.Choice("kind", ["a", "b"], default="a")
    with hps.conditional_scope("kind", "a"):
        hps.Int("a_units", 1, 4)
    with hps.conditional_scope("kind", "b"):
        hps.Float("b_rate", 0.0, 1.0, step=0.1)
    hps.Float("lr", 1e-4, 1e-1, sampling="log")
    assert kind == "a"
    return hps


def test_active_params_drops_inactive_conditionals():
    hps = conditional_space()
    hps.values.update({"kind": "b", "b_rate": 0.30000000000000004, "a_units": 3, "lr": 0.01})
    params, dists = active_params(hps)
    assert params == {"kind": "b", "b_rate": 0.3, "lr": 0.01}  # stepped float snapped
    assert set(dists) == set(params)
    for name, value in params.items():
        dist = dists[name]
        assert dist._contains(dist.to_internal_repr(value))
    hps.values["kind"] = "a"
    params, _ = active_params(hps)
    assert set(params) == {"kind", "a_units", "lr"}


def test_active_params_drops_hyperband_bookkeeping():
    hps = conditional_space()
    hps.values.update({"kind": "a", "a_units": 2, "lr": 0.001, "tuner/epochs": 3,
                       "tuner/initial_epoch": 1, "tuner/bracket": 1, "tuner/round": 1,
                       "tuner/trial_id": "0003"})
    params, dists = active_params(hps)
    assert params == {"kind": "a", "a_units": 2, "lr": 0.001}
    assert not [k for k in dists if k.startswith("tuner/")]


def test_active_params_snaps_kerastuner_grid_noise():
    hps = keras_tuner.HyperParameters()
    rlog = hps.Float("r", 0.1, 10.0, step=10, sampling="reverse_log")
    assert min(hps.space[0].values) < 0.1  # KerasTuner's own grid: 0.09999999999999964
    hps.values["r"] = min(hps.space[0].values)
    params, dists = active_params(hps)
    assert params == {"r": 0.1} and rlog == 0.1
    assert dists["r"]._contains(dists["r"].to_internal_repr(params["r"]))


def test_active_params_casts_ints_and_skips_values_off_choice():
    hps = keras_tuner.HyperParameters()
    hps.Int("n", 1, 64, step=2, sampling="log")
    hps.Choice("c", [1, 2])
    hps.values.update({"n": 8.000000000000002, "c": 3})  # KT's log grid yields floats
    params, _ = active_params(hps)
    assert params == {"n": 8} and type(params["n"]) is int


# ---- property-style: values stay inside KerasTuner's space, both ways ---------------------
def in_kerastuner_space(hp, value) -> bool:
    kind = type(hp).__name__
    if kind == "Fixed":
        return value == hp.value
    if kind == "Boolean":
        return isinstance(value, bool)
    if kind == "Choice":
        return value in hp.values
    if not hp.min_value <= value <= hp.max_value:
        return False
    if kind == "Int" and type(value) is not int:
        return False
    if hp.step is None:
        return True
    if hp.sampling == "linear":
        k = (value - hp.min_value) / hp.step
        return math.isclose(k, round(k), abs_tol=1e-9)
    return any(math.isclose(value, v, rel_tol=1e-9) for v in hp.values)


@pytest.mark.parametrize("sampler_cls", [optuna.samplers.RandomSampler,
                                         optuna.samplers.TPESampler])
def test_suggested_values_lie_in_kerastuner_space(sampler_cls):
    space = every_kind()
    for seed in range(4):
        study = optuna.create_study(sampler=sampler_cls(seed=seed))
        for _ in range(3):
            trial = study.ask()
            for hp in space.space:
                value = suggest(trial, hp)
                assert in_kerastuner_space(hp, value), (hp.name, value)
                # stepped floats reach the model rounded (12 digits), the study keeps Optuna's
                if isinstance(value, float):
                    assert trial.params[hp.name] == pytest.approx(value, rel=1e-9, abs=1e-12)
                else:
                    assert trial.params[hp.name] == value
            study.tell(trial, 0.0)


def test_kerastuner_samples_lie_in_optuna_distributions():
    # the other direction: what KerasTuner's own searchers pick can be recorded in a study
    space = every_kind()
    for seed in range(12):
        hps = space.copy()
        for i, hp in enumerate(space.space):
            hps.values[hp.name] = hp.random_sample(seed * 100 + i)
        params, dists = active_params(hps)
        assert set(params) == {hp.name for hp in space.space}
        for name, value in params.items():
            assert dists[name]._contains(dists[name].to_internal_repr(value)), (name, value)
        trial = optuna.trial.create_trial(params=params, distributions=dists, value=0.0)
        assert trial.params == params
