"""Searchers behind one interface and one name registry.

``OptunaSearch`` is the drop-in KerasTuner tuner driven by Optuna.
"""
from searchers.optuna_oracle import OptunaOracle
from searchers.optuna_tuner import OptunaSearch

__all__ = ["OptunaOracle", "OptunaSearch"]
