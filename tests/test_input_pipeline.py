"""``searchers.input_pipeline``: one ``tf.data`` pipeline per search, Keras's batches.

Compared with Keras's own pipeline for arrays (``ArrayDataAdapter``, what ``model.fit(x, y)``
builds on every call) batch for batch, and end to end: an ``OptunaSearch`` that reuses the
pipeline trains every trial exactly as one that hands ``model.fit`` the arrays.
"""
from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
import tensorflow as tf
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

from searchers import OptunaSearch, input_pipeline
from searchers.input_pipeline import ArrayPipeline, once_per_search

optuna.logging.set_verbosity(optuna.logging.WARNING)

N = 10
X = np.arange(N * 2, dtype="float64").reshape(N, 2)  # float64: Keras casts to float32
Y = np.arange(N)


def labels(dataset) -> list[list[int]]:
    return [b[1].numpy().tolist() for b in dataset]


def epoch_order(dataset) -> list[int]:
    return [i for batch in labels(dataset) for i in batch]


@pytest.fixture(autouse=True)
def no_global_seed():
    yield
    tf.random.set_seed(None)


def test_unshuffled_batches_are_kerass():
    pipeline = ArrayPipeline(X, Y, batch_size=4, shuffle=False, validation=(X, Y),
                             validation_batch_size=3)
    keras_train = ArrayDataAdapter(X, Y, batch_size=4, shuffle=False).get_tf_dataset()
    keras_val = ArrayDataAdapter(X, Y, batch_size=3, shuffle=False).get_tf_dataset()
    for ours, theirs in ((pipeline.train, keras_train), (pipeline.validation, keras_val)):
        ours_b, theirs_b = list(ours), list(theirs)
        assert [b[1].numpy().tolist() for b in ours_b] == [b[1].numpy().tolist() for b in theirs_b]
        for (ox, _), (tx, _) in zip(ours_b, theirs_b):
            assert ox.dtype == tx.dtype == tf.float32
            np.testing.assert_array_equal(ox.numpy(), tx.numpy())
    assert int(pipeline.train.cardinality()) == 3  # Keras knows the steps per epoch
    # no tf.data autotuning thread for a fit's end to wait for
    assert pipeline.train.options().autotune.enabled is False
    assert pipeline.validation.options().autotune.enabled is False
    assert [len(b) for b in labels(ArrayPipeline(X, Y).train)] == [N]  # default batch_size 32


def test_validation_batch_size_defaults_to_batch_size():
    pipeline = ArrayPipeline(X, Y, batch_size=4, validation=(X, Y))
    assert [len(b) for b in labels(pipeline.validation)] == [4, 4, 2]


def test_seeded_order_is_one_permutation_per_seed():
    keras.utils.set_random_seed(5)
    pipeline = ArrayPipeline(X, Y, batch_size=4)
    first = labels(pipeline.train)
    assert [len(b) for b in first] == [4, 4, 2]
    order = epoch_order(pipeline.train)
    assert sorted(order) == list(range(N)) and order != list(range(N))
    # as Keras under a global seed: the same order every epoch ...
    assert labels(pipeline.train) == first
    # ... and in any pipeline (another process) reseeded with the same seed
    keras.backend.clear_session()
    keras.utils.set_random_seed(5)
    again = ArrayPipeline(X, Y, batch_size=4)
    assert labels(again.train) == first
    keras.utils.set_random_seed(6)
    pipeline.reseed()
    assert labels(pipeline.train) != first
    keras.utils.set_random_seed(5)
    pipeline.reseed()
    assert labels(pipeline.train) == first


def test_unseeded_order_changes_every_epoch():
    tf.random.set_seed(None)
    assert input_pipeline.global_seed() is None
    x, y = np.zeros((64, 1), "float32"), np.arange(64)
    pipeline = ArrayPipeline(x, y, batch_size=16)
    orders = [epoch_order(pipeline.train) for _ in range(3)]
    assert all(sorted(o) == list(range(64)) for o in orders)
    assert orders[0] != orders[1] != orders[2]


def test_global_seed_is_tensorflows():
    tf.random.set_seed(123)
    assert input_pipeline.global_seed() == 123
    keras.utils.set_random_seed(7)
    assert input_pipeline.global_seed() == 7


class _Recording(keras.Model):
    batches: list[list[int]] = []

    def train_step(self, data):
        _Recording.batches.append(data[1].numpy().tolist())
        return {"loss": tf.constant(0.0)}


def test_model_fit_sees_the_same_batches_as_with_arrays():
    def fit(*args, **kwargs) -> list[list[int]]:
        inputs = keras.Input((2,))
        model = _Recording(inputs, keras.layers.Dense(1)(inputs))
        model.compile("sgd", "mse", run_eagerly=True)
        _Recording.batches = []
        history = model.fit(*args, epochs=2, verbose=0, **kwargs)
        assert len(history.history["loss"]) == 2
        return _Recording.batches

    pipeline = ArrayPipeline(X, Y, batch_size=4, shuffle=False)
    assert fit(pipeline.train, shuffle=False) == fit(X, Y, batch_size=4, shuffle=False)
    assert len(fit(pipeline.train, shuffle=False)) == 6  # 3 batches x 2 epochs: no "ran out of data"


class _TunedBatch(keras_tuner.HyperModel):
    def build(self, hp):
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [2, 4]), **kwargs)


@pytest.mark.parametrize("case", [
    "custom_fit", "validation_split", "sample_weight", "class_weight", "steps_per_epoch",
    "dataset", "list_x", "batch_shuffle", "no_y",
])
def test_anything_but_plain_arrays_is_left_alone(case):
    hypermodel: object = keras_tuner.HyperModel()
    args: tuple = (X, Y)
    kwargs: dict = {"epochs": 1}
    if case == "custom_fit":
        hypermodel = _TunedBatch()
    elif case == "validation_split":
        kwargs["validation_split"] = 0.25
    elif case == "sample_weight":
        kwargs["sample_weight"] = np.ones(N)
    elif case == "class_weight":
        kwargs["class_weight"] = {0: 1.0}
    elif case == "steps_per_epoch":
        kwargs["steps_per_epoch"] = 2
    elif case == "dataset":
        args = (tf.data.Dataset.from_tensor_slices((X, Y)).batch(2),)
    elif case == "list_x":
        args = ([X, X], Y)
    elif case == "batch_shuffle":
        kwargs["shuffle"] = "batch"
    elif case == "no_y":
        args = (X,)
    out_args, out_kwargs, pipeline = once_per_search(hypermodel, args, kwargs)
    assert pipeline is None
    assert out_args is args and out_kwargs is kwargs


def test_plain_arrays_become_the_pipelines_datasets():
    hypermodel = keras_tuner.HyperModel()
    args, kwargs, pipeline = once_per_search(
        hypermodel, (X, Y, 4), {"epochs": 3, "validation_data": [X, Y], "shuffle": False,
                                "validation_split": 0.0, "verbose": 0})
    assert pipeline is not None and args == ()
    assert kwargs["x"] is pipeline.train and kwargs["validation_data"] is pipeline.validation
    assert "y" not in kwargs and "batch_size" not in kwargs
    assert kwargs["shuffle"] is False  # the dataset shuffles (or not) itself
    assert kwargs["epochs"] == 3 and kwargs["verbose"] == 0
    assert pipeline.batch_size == 4 and not pipeline.shuffle
    # validation given another way (a Dataset) stays as given; training is still reused
    val = tf.data.Dataset.from_tensor_slices((X, Y)).batch(5)
    _, kwargs, pipeline = once_per_search(hypermodel, (X, Y), {"validation_data": val})
    assert pipeline is not None and pipeline.validation is None
    assert kwargs["validation_data"] is val


def _build(hp):
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(hp.Int("units", 2, 6, step=2), activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-3, 0.1, sampling="log")),
                  loss="mse")
    return model


def _search(tmp_path, name: str, reuse: bool) -> list[list[float]]:
    keras.utils.set_random_seed(0)
    tuner = OptunaSearch(_build, objective="val_loss", max_trials=3,
                         sampler=optuna.samplers.RandomSampler(seed=0),
                         pruner=optuna.pruners.NopPruner(), reuse_input_pipeline=reuse,
                         directory=str(tmp_path), project_name=name)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype("float32")
    y = x.sum(axis=1)
    tuner.search(x, y, epochs=3, batch_size=8, shuffle=False, validation_data=(x[:12], y[:12]),
                 verbose=0)
    return [[t.intermediate_values[step] for step in sorted(t.intermediate_values)]
            for t in tuner.study.trials]


def test_optuna_search_trains_as_with_arrays(tmp_path, monkeypatch):
    fits = []
    reseed = ArrayPipeline.reseed
    monkeypatch.setattr(ArrayPipeline, "reseed", lambda self: (fits.append(1), reseed(self)))
    with_arrays = _search(tmp_path, "arrays", reuse=False)
    assert fits == []
    reused = _search(tmp_path, "reused", reuse=True)
    assert len(fits) == 1 + 3  # built once (reseeded), then once before each trial's fit
    assert len(reused) == 3 and all(len(h) == 3 for h in reused)
    np.testing.assert_allclose(reused, with_arrays, rtol=1e-6)


class _Batches(keras.callbacks.Callback):
    per_fit: list[int] = []  # KerasTuner deep-copies callbacks: the log lives on the class

    def on_train_begin(self, logs=None):
        _Batches.per_fit.append(0)

    def on_train_batch_end(self, batch, logs=None):
        _Batches.per_fit[-1] += 1


class _BatchSizeTuner(OptunaSearch):
    """KerasTuner's documented way to tune the batch size: a ``run_trial`` override."""

    def run_trial(self, trial, *args, **kwargs):
        kwargs["batch_size"] = trial.hyperparameters.Choice("batch_size", [5, 10, 20])
        return super().run_trial(trial, *args, **kwargs)


def test_a_run_trial_override_still_gets_the_arrays(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(input_pipeline, "ArrayPipeline",
                        lambda *a, **k: built.append(1) or ArrayPipeline(*a, **k))
    tuner = _BatchSizeTuner(_build, objective="val_loss", max_trials=4,
                            sampler=optuna.samplers.RandomSampler(seed=1),
                            directory=str(tmp_path), project_name="bs")
    assert not tuner._fit_args_reach_fit_as_given()
    x = np.random.default_rng(0).normal(size=(40, 2)).astype("float32")
    _Batches.per_fit = []
    tuner.search(x, x.sum(axis=1), epochs=1, validation_data=(x, x.sum(axis=1)),
                 callbacks=[_Batches()], verbose=0)
    assert built == []
    sizes = [t.hyperparameters.get("batch_size") for t in tuner.oracle.trials.values()]
    assert _Batches.per_fit == [40 // s for s in sizes]



class _Declared(OptunaSearch):
    passes_fit_args_through = True  # as bench's tracking mixin

    def run_trial(self, trial, *args, **kwargs):
        return super().run_trial(trial, *args, **kwargs)


def test_an_override_that_declares_it_passes_fit_args_through_keeps_the_pipeline(tmp_path):
    tuner = _Declared(_build, objective="val_loss", max_trials=1,
                      directory=str(tmp_path), project_name="d")
    assert tuner._fit_args_reach_fit_as_given()
    from bench.run.tracking import TrackingMixin
    assert vars(TrackingMixin)["passes_fit_args_through"] is True
