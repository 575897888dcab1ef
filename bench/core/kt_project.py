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

from bench.core.errors import UserError


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


OWNER_FILE = "bench_study.json"  # in <run>/kt/: the one study (in one store) it belongs to


def store_identity(storage_url: str) -> str:
    """What names a store across URLs: an SQLite database's real file (links followed), a
    server's address and database without credentials."""
    from sqlalchemy.engine import make_url
    url = make_url(storage_url)
    if url.drivername.startswith("sqlite"):
        return f"sqlite:{Path(url.database or '').expanduser().resolve()}"
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def claim(kt_dir: Path, storage_url: str, study: str, *, write: bool = True) -> None:
    """Refuse a KerasTuner project folder of another study or another store (it would resume
    that run's trials as this one's); mark an unmarked one as this study's."""
    owner = {"store": store_identity(storage_url), "study": study}
    path = kt_dir / OWNER_FILE
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        found = None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}): move {kt_dir} away or "
                        "restore the file") from None
    if isinstance(found, dict) and {k: found.get(k) for k in owner} != owner:
        raise UserError(f"the KerasTuner projects in {kt_dir} belong to study "
                        f"{found.get('study')!r} in {found.get('store')}, not to {study!r} in "
                        f"{owner['store']}: pass another --logdir (or the store they belong to)")
    if found is None and write:
        kt_dir.mkdir(parents=True, exist_ok=True)
        _atomic_save_json(str(path), owner)


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
