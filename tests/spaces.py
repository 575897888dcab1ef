"""A KerasTuner space with every kind of hyperparameter, shared by the tests that hold a
mapping to KerasTuner's meaning for each kind (tests/test_optuna_space.py: sampling both
ways; tests/test_import_kt.py: what import-kt reads from a stored oracle.json)."""
from __future__ import annotations

import keras_tuner


def every_kind() -> keras_tuner.HyperParameters:
    """Int and Float in every sampling (linear, log, reverse_log; with and without a step),
    a float range whose top sits just past its last step (KerasTuner's grid rounding), and
    Choice (strings, numbers), Boolean and Fixed."""
    hps = keras_tuner.HyperParameters()
    hps.Int("i", 0, 10)
    hps.Int("i_step", 0, 10, step=3)
    hps.Int("i_log", 1, 1000, sampling="log")
    hps.Int("i_logstep", 1, 64, step=2, sampling="log")
    hps.Int("i_rlog", 1, 100, step=10, sampling="reverse_log")
    hps.Float("f", -1.0, 1.0)
    hps.Float("f_step", 0.0, 1.0, step=0.1)
    hps.Float("f_step3", 0.0, 1.0, step=0.3)
    hps.Float("f_dropout", 0.0, 0.9 + 1e-9, step=0.1)
    hps.Float("f_log", 1e-5, 1e-1, sampling="log")
    hps.Float("f_logstep", 1e-4, 1.0, step=10, sampling="log")
    hps.Float("f_rlog", 0.1, 0.9, sampling="reverse_log")
    hps.Float("f_rlogstep", 0.1, 10.0, step=10, sampling="reverse_log")
    hps.Choice("c", ["relu", "tanh"])
    hps.Choice("c_num", [0.5, 1.5, 2.5])
    hps.Boolean("b")
    hps.Fixed("fx", 7)
    return hps
