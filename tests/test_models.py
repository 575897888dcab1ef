"""The shared CNN: the seed's baseline size and every corner of the space trainable.

Why: a configuration that fails to build or train at some image size would be a failed
trial for one searcher and not another; the pool clamp in models/cnn.py must keep every
corner valid at the small default toon size and at the seed's 600x200.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner
import numpy as np
import pytest

from bench.data.datasets import load_dataset
from bench.data.toon import DEFAULT_SIZE, generate_toon
from models.cnn import baseline_model, make_build_model
from models.space import SEARCH_SPACE, space_hyperparameters

MIN = {"conv_1_filters": 4, "conv_1_kernel_size": 3, "pool_1_size": 2, "pool_2_size": 1,
       "dropout_1_rate": 0.0, "conv_2_filters": 4, "conv_2_kernel_size": 3, "pool_3_size": 2,
       "pool_4_size": 1, "dropout_2_rate": 0.0, "learning_rate": 1e-4}
MAX = {"conv_1_filters": 16, "conv_1_kernel_size": 5, "pool_1_size": 4, "pool_2_size": 4,
       "dropout_1_rate": 0.9, "conv_2_filters": 20, "conv_2_kernel_size": 5, "pool_3_size": 4,
       "pool_4_size": 4, "dropout_2_rate": 0.9, "learning_rate": 1e-2}
# biggest pools with the biggest filters/kernels but no dropout: the smallest feature map
MAX_POOLS = {**MAX, "dropout_1_rate": 0.0, "dropout_2_rate": 0.0, "learning_rate": 1e-3}
# no pooling beyond the minimum with the most filters: the largest Flatten
MIN_POOLS = {**MIN, "conv_1_filters": 16, "conv_1_kernel_size": 5, "conv_2_filters": 20,
             "conv_2_kernel_size": 5}
CORNERS = {"min": MIN, "max": MAX, "max_pools": MAX_POOLS, "min_pools": MIN_POOLS}
# an inner point, every value distinct from its neighbour's: pools 3, 2 | 2, 3 never clamp
MIXED = {"conv_1_filters": 8, "conv_1_kernel_size": 5, "pool_1_size": 3, "pool_2_size": 2,
         "dropout_1_rate": 0.1, "conv_2_filters": 12, "conv_2_kernel_size": 3, "pool_3_size": 2,
         "pool_4_size": 3, "dropout_2_rate": 0.3, "learning_rate": 1e-3}


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def _hp(values: dict) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    return hp


def _train_one_step(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    hist = model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
    loss = hist.history["loss"][-1]
    assert np.isfinite(loss)
    probs = model.predict(x[:1], verbose=0)
    assert probs.shape == (1, model.output_shape[-1])
    return loss


def _expected_layers(shape: tuple[int, int], corner: dict, classes: int) -> list[tuple]:
    """The layers the seed's architecture gives ``corner`` on ``shape`` (height, width):
    each block Conv2D(same) -> two MaxPools -> Dropout, every pooling window clamped per
    axis to the feature map it sees and left out when that makes it 1x1 (models/cnn.py)."""
    h, w = shape
    out: list[tuple] = [("Rescaling",)]
    for b, (pool_a, pool_b) in ((1, (1, 2)), (2, (3, 4))):
        k = corner[f"conv_{b}_kernel_size"]
        out.append(("Conv2D", corner[f"conv_{b}_filters"], (k, k), "same", "relu"))
        for p in (pool_a, pool_b):
            window = (min(corner[f"pool_{p}_size"], h), min(corner[f"pool_{p}_size"], w))
            if window != (1, 1):
                out.append(("MaxPooling2D", window))
                h, w = h // window[0], w // window[1]
        out.append(("Dropout", corner[f"dropout_{b}_rate"]))
    return [*out, ("Flatten", h * w * corner["conv_2_filters"]), ("Dense", classes)]


def _built_layers(model: keras.Model) -> list[tuple]:
    out: list[tuple] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            out.append((kind, layer.filters, tuple(layer.kernel_size), layer.padding,
                        layer.activation.__name__))
        elif kind == "MaxPooling2D":
            out.append((kind, tuple(layer.pool_size)))
        elif kind == "Dropout":
            out.append((kind, layer.rate))
        elif kind == "Flatten":
            out.append((kind, layer.output.shape[-1]))
        elif kind == "Dense":
            out.append((kind, layer.units))
        elif kind != "InputLayer":
            out.append((kind,))
    return out


def test_corners_build_the_space_they_choose():
    """The corners are points of the real space (MIN/MAX: each hyperparameter's least and
    greatest value as KerasTuner enumerates it, dropout's 0.9 included; every value on the
    grid), and ``build_model`` turns each into the layers it chose: it declares exactly
    models/space.py's hyperparameters, and the filters, kernels, pool windows (clamped to
    the feature map where the biggest pools outgrow it), dropout rates and learning rate of
    the built model are the corner's. One inner point with a different value at every
    position (``MIXED``) tells apart what the symmetric corners cannot (pool order, block
    order)."""
    points = {**CORNERS, "mixed": MIXED}
    space = space_hyperparameters().space
    grid = {hp.name: sorted(round(v, 12) for v in hp.values) for hp in space}
    assert list(grid) == [p.name for p in SEARCH_SPACE]
    assert MIN == {name: values[0] for name, values in grid.items()}
    assert MAX == {name: values[-1] for name, values in grid.items()}
    for corner, values in points.items():
        assert set(values) == set(grid), corner
        off_grid = {k: v for k, v in values.items() if round(v, 12) not in grid[k]}
        assert not off_grid, (corner, off_grid)

    clamped = []
    for size in (DEFAULT_SIZE, (600, 200)):
        build = make_build_model((*size, 3), 4)
        for corner, values in points.items():
            hp = _hp(values)
            model = build(hp)
            assert [p.get_config() for p in hp.space] == [p.get_config() for p in space], corner
            assert hp.values == values, corner  # the build read the corner, changed nothing
            expected = _expected_layers(size, values, 4)
            assert _built_layers(model) == expected, (size, corner)
            assert float(model.optimizer.learning_rate) == pytest.approx(values["learning_rate"])
            pools = [e[1] for e in expected if e[0] == "MaxPooling2D"]
            chosen = [values[f"pool_{i}_size"] for i in range(1, 5)]
            seed_pools = [(p, p) for p in chosen if p > 1]  # the seed's layers, unclamped
            if pools != seed_pools:
                clamped.append((size, corner))
    # the clamp is exercised, and only where four 4x4 pools outgrow the map (both sizes:
    # 200 / 4 / 4 / 4 = 3 < 4, 40 / 4 / 4 = 2 < 4); the smaller corners are the seed's layers
    assert clamped == [(DEFAULT_SIZE, "max"), (DEFAULT_SIZE, "max_pools"),
                       ((600, 200), "max"), ((600, 200), "max_pools")]


def test_baseline_has_seed_size():
    assert baseline_model((600, 200, 3), 4).count_params() == 14_620


@pytest.fixture(scope="module")
def toon_small():
    """A few default-size toon images (shape and classes as the data set has them)."""
    ds = load_dataset("toon")
    assert ds.input_shape == (*DEFAULT_SIZE, 3)
    return ds.input_shape, ds.num_classes, ds.x_train[:4], ds.y_train[:4]


@pytest.mark.parametrize("corner", list(CORNERS))
def test_corner_trains_at_default_size(corner, toon_small):
    shape, classes, x, y = toon_small
    model = make_build_model(shape, classes)(_hp(CORNERS[corner]))
    assert model.input_shape == (None, *shape) and model.output_shape == (None, classes)
    _train_one_step(model, x, y)


@pytest.mark.parametrize("corner", list(CORNERS))
def test_corner_trains_at_seed_size(corner):
    x, y, names = generate_toon(1, image_size=(600, 200), seed=0)
    model = make_build_model(x.shape[1:], len(names))(_hp(CORNERS[corner]))
    _train_one_step(model, x, y)


def test_baseline_trains_on_digits():
    ds = load_dataset("digits")
    assert ds.num_classes == 10
    model = baseline_model(ds.input_shape, ds.num_classes)
    assert model.output_shape == (None, 10)
    _train_one_step(model, ds.x_train[:4], ds.y_train[:4])
    tuned = make_build_model(ds.input_shape, ds.num_classes)(_hp(MAX))
    _train_one_step(tuned, ds.x_train[:4], ds.y_train[:4])
