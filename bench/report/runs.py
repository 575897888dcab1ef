"""What the report reads from the store: one run (a search study) and everything of one
data set. Shared by the report's sections (``results``, ``pareto``)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from optuna.trial import FrozenTrial

from bench.core import schema


@dataclass
class Run:
    """One search study: one searcher, one seed; trials finished and in completion order."""

    name: str
    searcher: str
    seed: Any
    backend: str
    budget_epochs: float | None
    trials: list[FrozenTrial]
    retrain: dict | None
    used: int = 0      # epochs trained, RUNNING trials included: store.epochs_used, as the run says
    preset: str | None = None
    # A multi-objective run (bench.report.pareto): its objectives' names and directions (the first
    # objective, val_loss, is what the single-objective views read), its ``bench`` attr and its
    # retrained Pareto-optimal trials (``retrain_front``).
    objectives: tuple[str, ...] = (schema.OBJECTIVE,)
    directions: tuple[str, ...] = (schema.DIRECTION,)
    bench: dict = field(default_factory=dict)
    retrain_front: list[dict] | None = None
    timing_note: str | None = None  # why its wall seconds are not a measurement (not shown)


@dataclass
class DatasetStudies:
    """Everything the store holds about one data set."""

    runs: dict[str, list[Run]] = field(default_factory=dict)   # searcher -> runs by seed
    # searcher -> its studies without a finished trial (left out: not runs, not seeds)
    empty: dict[str, list[str]] = field(default_factory=dict)
    baselines: list[tuple[Any, dict]] = field(default_factory=list)  # (seed, retrain)
    baseline_val_loss: dict[str, float] = field(default_factory=dict)  # render.json_text(seed) -> val_loss
    extra: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)  # kind -> (name, bench)
    # replayed searches (bench replay), kept apart from the real runs: preset -> searcher -> runs
    replays: dict[str, dict[str, list[Run]]] = field(default_factory=dict)
    replay_empty: dict[str, list[str]] = field(default_factory=dict)  # preset -> study names


def seed_key(seed: Any) -> tuple:
    """Sort key for seeds: numbers in order, then strings, None last."""
    return (seed is None, isinstance(seed, str), seed if seed is not None else 0)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the known values; inf (never reached) counts as a value."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None
