"""Model builders shared by every searcher.

The builders import Keras (and so TensorFlow) when first used, not when the package is
imported: a run's launcher reads the search space without loading TensorFlow.
"""
from typing import Any

from models.space import SEARCH_SPACE, declare, space_config, space_hyperparameters

__all__ = ["SEARCH_SPACE", "baseline_model", "declare", "make_build_model",
           "space_config", "space_hyperparameters"]


def __getattr__(name: str) -> Any:
    if name in ("baseline_model", "make_build_model"):
        from models import cnn
        return getattr(cnn, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
