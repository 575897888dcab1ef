"""A KerasTuner project folder that survives a full disk, and says so when it did not.

KerasTuner writes its state (``tuner0.json``, ``oracle.json``, ``trial_*/trial.json``)
in place: a full disk leaves a file cut short and every later run dies in
``json.loads``. Two remedies: its writes go through a temporary file and an atomic
rename (the old file stays whole if the new one cannot be written), and a damaged file
left by an older run is named with a way out before KerasTuner trips over it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from bench.errors import UserError


def check_files(project: Path) -> None:
    """Refuse to resume from a project whose JSON state is damaged; name the file."""
    if not project.is_dir():
        return
    for path in sorted([*project.glob("*.json"), *project.glob("trial_*/*.json")]):
        try:
            json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(
                f"KerasTuner project file {path} is damaged ({type(exc).__name__}; a full "
                f"disk cuts files short): the study store is intact, but this project "
                f"cannot resume - move {project} away and re-run with another --study, "
                "or restore the file") from None


def _atomic_save_json(path: str, obj: object) -> str:
    """KerasTuner's ``save_json`` with a temporary file and an atomic rename."""
    text = json.dumps(obj)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return text


def make_json_writes_atomic() -> None:
    """Route KerasTuner's JSON writes through ``_atomic_save_json`` (idempotent).

    Every KerasTuner state file is written by one KerasTuner function looked up at call
    time (``searchers.seam.route_kt_json_writes``; tests/test_seam.py pins that this
    stays true)."""
    from searchers.seam import route_kt_json_writes
    route_kt_json_writes(_atomic_save_json)
