"""The tiny model and data the OptunaSearch library tests train: a Dense net on 48 random
samples with 4 features (the label: is x0 + x1 > 0), so a trial takes a fraction of a second."""
from __future__ import annotations

import keras
import numpy as np


def data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation arrays (48 and 32 samples) drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    xv = rng.normal(size=(32, 4)).astype("float32")
    yv = (xv[:, 0] + xv[:, 1] > 0).astype("float32")
    return x, y, xv, yv


def build(hp):
    """Two hyperparameters: ``units`` (2..8, step 2) and a log-sampled SGD ``lr``."""
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-3, 0.3, sampling="log")),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model
