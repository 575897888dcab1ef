"""A NaN loss or an exception in build/fit ends that trial FAIL (error recorded) and the
search goes on; too many failures in a row end the run with one clear message."""
from __future__ import annotations

import itertools

import keras
import optuna
import pytest
from optuna.trial import TrialState

from bench.core import schema
from bench.core.errors import RunError
from bench.run.runner import run_search
from models import make_build_model


def _every_other(fault):
    """A build_model factory whose every second model is broken by ``fault``."""
    counter = itertools.count()

    def factory(input_shape, num_classes):
        build = make_build_model(input_shape, num_classes)

        def build_model(hp):
            model = build(hp)
            return fault(model) if next(counter) % 2 else model
        return build_model
    return factory


def _nan_model(model):
    out = keras.layers.Lambda(lambda t: t * float("nan"))(model.output)
    nan = keras.Model(model.input, out)
    nan.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return nan


def _raise(model):
    raise ValueError("boom: a deliberately broken build")


@pytest.mark.parametrize("searcher", ["tpe", "random"])
@pytest.mark.parametrize("fault,marker", [(_nan_model, None), (_raise, "boom")])
def test_faulty_trials_fail_and_search_goes_on(quick_config, storage_url, searcher, fault, marker):
    summary = run_search(quick_config(searcher, max_trials=4, budget_epochs=100,
                                      build_model_factory=_every_other(fault)))
    study = optuna.load_study(study_name=summary.study_name, storage=storage_url)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 2, states
    assert states.count(TrialState.COMPLETE) == 2, states
    for t in study.trials:
        if t.state == TrialState.FAIL and marker:
            assert marker in t.user_attrs[schema.T_ERROR]


def test_too_many_consecutive_failures_end_the_run(quick_config):
    def always(shape, n):
        """Fails every trial's build (KerasTuner's first, space-declaring build passes)."""
        build, calls = make_build_model(shape, n), itertools.count()
        return lambda hp: build(hp) if next(calls) == 0 else _raise(None)
    with pytest.raises(RunError, match="consecutive"):
        run_search(quick_config("tpe", max_trials=10, budget_epochs=100, build_model_factory=always))
