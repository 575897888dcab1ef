"""Retrain a configuration on train+val and measure it on the held-out test split.

The search only ever sees train and validation; the test split answers "what does the
tuned model buy me" once, the way the seed article did (tuned vs baseline).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def epochs_to_best(study_trial: Any, fallback: int) -> int:
    """Epochs from scratch to the trial's best epoch. Steps are absolute epoch numbers
    (a Hyperband continuation counts its parent's epochs), so the best step is the answer."""
    values = study_trial.intermediate_values
    return int(min(values, key=values.get)) if values else fallback


def retrain(data: Any, params: Mapping[str, Any] | None, epochs: int, seed: int,
            batch_size: int = 64) -> dict[str, Any]:
    """Train ``params`` (None: the seed's baseline model) on train+val, evaluate on test."""
    import keras
    import keras_tuner

    from models import baseline_model, make_build_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if params is None:
        model = baseline_model(data.input_shape, data.num_classes)
    else:
        hp = keras_tuner.HyperParameters()
        for name, value in params.items():
            hp.Fixed(name, value)
        model = make_build_model(data.input_shape, data.num_classes)(hp)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    loss, acc = model.evaluate(data.x_test, data.y_test, verbose=0)
    return {"test_accuracy": float(acc), "test_loss": float(loss),
            "n_params": int(model.count_params()), "epochs": int(epochs),
            "params": dict(params) if params is not None else None,
            "test_size": int(len(data.y_test))}


def baseline_epochs(data: Any, max_epochs: int, seed: int, batch_size: int = 64,
                    patience: int = 3) -> tuple[int, float]:
    """Epochs the baseline needs (early stopping on val_loss), found as a trial would be."""
    import keras

    from models import baseline_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = baseline_model(data.input_shape, data.num_classes)
    hist = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                     epochs=max_epochs, batch_size=batch_size, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping(patience=patience)])
    losses = hist.history["val_loss"]
    best = int(np.argmin(losses))
    return best + 1, float(losses[best])
