"""Epochs a store outage kept from the study, kept beside the run until its resume.

Why: a trial that trains while its store is unreachable cannot report its epochs; the run
ends (``searchers.resilient_storage``) with that trial RUNNING in the study. The resume
fails it (``bench.run.dead_trials.fail_dead_trials``) and counts its epochs from what it reported,
which is short of what it trained: the budget would be overspent, silently. This small file
in the run's folder holds what it trained, by storage id, until the resume counts it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

FILE = "unstored_epochs.json"


def record(run_dir: Path, study: str, epochs: Mapping[int, int]) -> None:
    """Add (or raise) the trained epochs of these trials; written whole (a crash mid-write
    leaves the old file)."""
    if not epochs:
        return
    known = recorded(run_dir, study)
    for trial_id, n in epochs.items():
        known[int(trial_id)] = max(int(n), known.get(int(trial_id), 0))
    path = run_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".tmp")
    staged.write_text(json.dumps({"study": study, "epochs": {str(k): v for k, v in known.items()}}))
    staged.replace(path)


def recorded(run_dir: Path, study: str) -> dict[int, int]:
    """What was recorded for this study ({} when nothing, or for another study)."""
    try:
        data = json.loads((run_dir / FILE).read_text())
        if data.get("study") != study:
            return {}
        return {int(k): int(v) for k, v in data.get("epochs", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def forget(run_dir: Path) -> None:
    """Once counted in the study."""
    (run_dir / FILE).unlink(missing_ok=True)
