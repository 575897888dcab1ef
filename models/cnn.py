"""The shared ToonVision CNN: ``build_model(hp)`` over the one search space, and the
seed's fixed baseline.

Architecture (the seed's): two blocks of Conv2D(same, relu) -> MaxPool -> MaxPool ->
Dropout, then Flatten -> Dense(softmax). Inputs are 0..255 pixels rescaled inside the
model.

Keeping every point of the space valid: the seed's space allows pool products up to
4*4*4*4 = 256, more than the 200-pixel width of its own images, and far more than the
small default images. A pooling layer whose window exceeds the feature map would give
a zero-sized map and a failed trial. Each pooling window is therefore clamped, per axis,
to the size of the feature map it sees (``min(pool, side)``): a side never shrinks below
1, and wherever the seed's configuration was valid (window <= side) the layer is exactly
the seed's. The clamp is a property of the model, not of a searcher, so every searcher
sees the same objective on the same configuration.
"""
from __future__ import annotations

from typing import Callable

import keras
import keras_tuner
from keras import layers

from models.space import declare

BuildFn = Callable[[keras_tuner.HyperParameters], keras.Model]


def _pool(x, size: int):
    """MaxPooling2D whose window never exceeds the feature map (see module doc)."""
    size = int(size)
    h, w = int(x.shape[1]), int(x.shape[2])
    window = (min(size, h), min(size, w))
    if window == (1, 1):
        return x  # a 1x1 max-pool is the identity: skip the layer
    return layers.MaxPooling2D(pool_size=window)(x)


def _block(x, filters: int, kernel: int, pool_a: int, pool_b: int, dropout: float):
    x = layers.Conv2D(int(filters), int(kernel), activation="relu", padding="same")(x)
    x = _pool(x, pool_a)
    x = _pool(x, pool_b)
    return layers.Dropout(float(dropout))(x)


def _cnn(input_shape, num_classes, block1, block2, learning_rate, name) -> keras.Model:
    inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _block(x, *block1)
    x = _block(x, *block2)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def make_build_model(input_shape: tuple[int, int, int], num_classes: int) -> BuildFn:
    """Return ``build_model(hp)`` for a data set's input shape and class count."""

    def build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
        block1 = [declare(hp, n) for n in
                  ("conv_1_filters", "conv_1_kernel_size", "pool_1_size", "pool_2_size",
                   "dropout_1_rate")]
        block2 = [declare(hp, n) for n in
                  ("conv_2_filters", "conv_2_kernel_size", "pool_3_size", "pool_4_size",
                   "dropout_2_rate")]
        lr = declare(hp, "learning_rate")
        return _cnn(input_shape, num_classes, block1, block2, lr, "toonvision_tuned")

    return build_model


def baseline_model(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The seed's fixed model: 4 and 8 filters, kernel 3, pool 2, dropout 0.5, Adam 1e-3."""
    return _cnn(input_shape, num_classes, (4, 3, 2, 2, 0.5), (8, 3, 2, 2, 0.5), 1e-3,
                "toonvision_baseline")
