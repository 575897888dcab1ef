"""The ToonVision search space, defined once.

Every searcher (KerasTuner's and the Optuna-backed one) sees exactly this table,
through :func:`declare` inside ``build_model(hp)`` and through
:func:`space_hyperparameters` wherever the whole space is needed up front
(TensorBoard's HParams config, the study's recorded space).
Names and ranges are the seed author's (shared/seed/FACTS.md of the project brief).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the table itself needs no TensorFlow (a run's launcher reads it)
    import keras_tuner


@dataclass(frozen=True)
class HP:
    """One hyperparameter: a KerasTuner ``hp`` method name and its arguments."""

    name: str
    kind: str  # "Int" | "Float" | "Choice" | "Boolean" | "Fixed"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def declare(self, hp: keras_tuner.HyperParameters) -> Any:
        return getattr(hp, self.kind)(self.name, **self.kwargs)


# KerasTuner counts grid points with float floor division: 0.9 // 0.1 == 8.0, so a
# 0.0..0.9 step 0.1 Float never yields 0.9 in KerasTuner while Optuna's grid has it.
# A hair above 0.9 gives both libraries the same ten values 0.0, 0.1, ..., 0.9.
_TOP_DROPOUT = 0.9 + 1e-9

SEARCH_SPACE: tuple[HP, ...] = (
    HP("conv_1_filters", "Int", dict(min_value=4, max_value=16, step=4)),
    HP("conv_1_kernel_size", "Choice", dict(values=[3, 5])),
    HP("pool_1_size", "Int", dict(min_value=2, max_value=4, step=1)),
    HP("pool_2_size", "Int", dict(min_value=1, max_value=4, step=1)),
    HP("dropout_1_rate", "Float", dict(min_value=0.0, max_value=_TOP_DROPOUT, step=0.1)),
    HP("conv_2_filters", "Int", dict(min_value=4, max_value=20, step=4)),
    HP("conv_2_kernel_size", "Choice", dict(values=[3, 5])),
    HP("pool_3_size", "Int", dict(min_value=2, max_value=4, step=1)),
    HP("pool_4_size", "Int", dict(min_value=1, max_value=4, step=1)),
    HP("dropout_2_rate", "Float", dict(min_value=0.0, max_value=_TOP_DROPOUT, step=0.1)),
    HP("learning_rate", "Choice", dict(values=[1e-2, 1e-3, 1e-4])),
)

_BY_NAME = {p.name: p for p in SEARCH_SPACE}


def declare(hp: keras_tuner.HyperParameters, name: str) -> Any:
    """Declare (or read) hyperparameter ``name`` on ``hp`` with the table's range."""
    return _BY_NAME[name].declare(hp)


def space_hyperparameters() -> keras_tuner.HyperParameters:
    """A fresh ``HyperParameters`` holding the whole space (defaults as values)."""
    import keras_tuner
    hp = keras_tuner.HyperParameters()
    for p in SEARCH_SPACE:
        p.declare(hp)
    return hp


def space_config() -> list[dict[str, Any]]:
    """JSON-able description of the space, stored with every study."""
    return [{"name": p.name, "kind": p.kind, **p.kwargs} for p in SEARCH_SPACE]
