"""The compute a run may spend, and its two rules, for real runs and their replay alike.

* No trial starts once the budget is spent (``spent``): KerasTuner's oracles are told "no
  more trials" (``bench.run.tracking.TrackingMixin.pre_create_trial``).
* The trial whose epoch spends it stops after that epoch; if it had more epochs planned, its
  result is from a shortened training (``cut_short``: recorded as ``budget_cut``).

``bench.replay.simulation`` replays searchers under these same rules.
"""
from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Budget:
    """Epochs across trials, and optionally wall time."""

    epochs: int
    deadline: float | None = None  # time.monotonic() value

    def spent(self, used_epochs: int) -> bool:
        return used_epochs >= self.epochs or (
            self.deadline is not None and time.monotonic() >= self.deadline)

    @staticmethod
    def cut_short(epoch: int, planned: int | None) -> bool:
        """The trial stopped by the budget after (0-based) ``epoch``: was it given more
        epochs (``planned``; None: unknown, counted as cut)?"""
        return planned is None or epoch + 1 < planned
