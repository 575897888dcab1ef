"""Searchers behind one interface and one name registry.

``OptunaSearch`` is the drop-in KerasTuner tuner driven by Optuna. It is imported lazily:
``python -m bench report`` and ``--help`` should not pay for importing TensorFlow.
"""
from typing import Any

__all__ = ["OptunaOracle", "OptunaSearch"]


def __getattr__(name: str) -> Any:
    if name == "OptunaSearch":
        from searchers.optuna_tuner import OptunaSearch
        return OptunaSearch
    if name == "OptunaOracle":
        from searchers.optuna_oracle import OptunaOracle
        return OptunaOracle
    raise AttributeError(name)
