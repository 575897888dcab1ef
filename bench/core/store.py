"""The SQL study store: opening it safely, one study per run, mirrored trials.

Every searcher's trials land in an Optuna RDB storage. The Optuna-backed searchers
decide inside the study; KerasTuner's own searchers are mirrored into it trial by trial
as each runs (``bench.run.tracking``), so a crash loses at most the running trial's result,
never the epochs it spent.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sqlite3
import warnings
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence
from urllib.parse import unquote

import optuna
import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.pool
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from bench.core import schema
from bench.core.errors import RunError, UserError
from searchers.resilient_storage import RetryingRDBStorage

HEARTBEAT_SECONDS = int(os.environ.get("BENCH_HEARTBEAT_SECONDS", "5"))
GRACE_SECONDS = int(os.environ.get("BENCH_GRACE_SECONDS", "30"))

# Keys of the study's ``bench`` attr that must match for trials to be comparable.
COMPARABLE_KEYS = ("searcher", "dataset", "fingerprint", "space", "objective", "direction",
                   "epochs_per_trial", "batch_size", "seed", "objectives", "max_params")

# Tables and columns every Optuna RDB schema has had (old stores lack e.g. trial_values, and
# Optuna's own upgrade message handles them); a file without them is another program's.
_OPTUNA_TABLES = {"studies": {"study_id", "study_name"},
                  "version_info": {"schema_version", "library_version"},
                  "trials": {"trial_id", "study_id", "state"}}
_USE_ANOTHER = "move it away or pass another --storage"


def display_url(url: str) -> str:
    """The storage URL as it may be printed: SQLAlchemy's rendering with the password
    hidden (``***``), and any ``password``-like query value hidden too; a URL without a
    password is shown as given (an SQLite path stays readable).

    A raw '@' in a password (``u:p@ss/w@host``) is ambiguous: SQLAlchemy splits at the
    first '@' and would show the rest of the password as host or database. Here the
    credentials end at the last '@' of the URL, so no part of a password is ever shown (a
    database or query holding '@' hides more than it needs to, never less). What SQLAlchemy
    cannot parse keeps only its scheme and what follows that '@'.
    """
    scheme, sep, rest = url.partition("://")
    creds, at, address = rest.rpartition("@")
    user, colon, password = creds.partition(":")
    if not (sep and at and colon) or any(c in user for c in "/?#"):  # no password in it
        return _QUERY_SECRET.sub(r"\1***", url)
    try:
        shown = make_url(f"{scheme}://{address}").set(
            username=unquote(user), password=unquote(password)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: nothing before the '@' is shown
        shown = f"{scheme}://***@{address}"
    return _QUERY_SECRET.sub(r"\1***", shown)


# ?password=..., &sslpassword=..., passwd=... (libpq and the MySQL drivers take these)
_QUERY_SECRET = re.compile(r"([?&][^=&#]*(?:pass|pwd)[^=&#]*=)[^&#]*", re.IGNORECASE)


def session_engine(url: str) -> sqlalchemy.engine.Engine:
    """A bare SQLAlchemy engine on the store, without a pool (a closed connection is
    closed): for what holds one database session of its own, such as ``bench.core.runlock``'s
    advisory locks. Optuna's storage (``open_storage``) is for everything else."""
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def open_storage(url: str, *, must_exist: bool = False, read_only: bool = False,
                 heartbeat: bool = True) -> optuna.storages.RDBStorage:
    """Open (or create) the store; bad URLs, missing or unwritable files and foreign files
    give one clear line before Optuna touches anything.

    ``must_exist``: a store that is not there is an error, not a new empty one (a mistyped
    path must not pass silently). ``read_only``: the caller only reads, so a write-protected
    SQLite file is fine and nothing is created in it. ``heartbeat``: running trials beat
    (``HEARTBEAT_SECONDS``) so that another process can fail a dead worker's trial; a
    study that one process holds under its run lock needs none (``bench.core.runlock``).
    """
    if "://" not in url:
        raise UserError(f"malformed storage URL {url!r}: expected e.g. sqlite:///studies.db "
                        "or postgresql://user@host/db")
    path = _sqlite_path(url)
    if path:
        query = url.split("?", 1)[1] if "?" in url else ""
        if query and any("=" not in part for part in query.split("&")):
            # SQLAlchemy drops "?d.db" from sqlite:///c?d.db and opens the file "c"
            raise UserError(f"--storage {display_url(url)}: '?' starts the URL's query, so this "
                            f"would open {path!r}; name the file without '?' (or write it as %3F)")
        _check_sqlite_file(path, must_exist=must_exist, read_only=read_only)
    return _rdb_storage(url, read_only, heartbeat)


@functools.lru_cache(maxsize=None)
def _rdb_storage(url: str, read_only: bool, heartbeat: bool = True) -> optuna.storages.RDBStorage:
    """Cached per URL: one connection pool per store and process."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        # a database restart of a few seconds does not end a run (searchers.resilient_storage)
        storage = RetryingRDBStorage(
            url, shown_as=display_url(url), sqlite_path=_sqlite_path(url) or None,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_SECONDS if heartbeat else None,
            grace_period=GRACE_SECONDS if heartbeat else None,
            # a read-only SQLite file was checked to hold Optuna's tables: create nothing
            skip_table_creation=read_only and url.startswith("sqlite"))
        if url.startswith("sqlite") and not read_only:
            _sync_at_critical_moments(storage.engine)
        return storage
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise UserError(f"malformed storage URL {display_url(url)!r}: {_first_line(exc)}") from None
    except (sqlalchemy.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise UserError(f"no database driver for {display_url(url)!r} ({_first_line(exc)}); "
                        "install the project's [postgres] or [mysql] extra") from None
    except sqlalchemy.exc.DatabaseError as exc:
        if url.startswith("sqlite"):
            raise UserError(f"{_sqlite_path(url) or url} is not a usable Optuna SQLite store "
                            f"({_first_line(exc)}); it was left untouched - "
                            f"{_USE_ANOTHER}") from None
        raise RunError(f"cannot reach storage {display_url(url)}: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. Optuna's schema version check on an odd database
        raise RunError(f"cannot open storage {display_url(url)}: {_first_line(exc)}") from None


def _sync_at_critical_moments(engine: sqlalchemy.engine.Engine) -> None:
    """SQLite's ``synchronous=NORMAL`` on every connection of the store, for every
    searcher alike: a commit waits for one disk sync instead of several (a trial makes
    15-45 commits; 6-14 ms each with SQLite's default FULL on this machine's disk, about
    3 ms with NORMAL). A killed process loses nothing it committed; only a power failure
    at the wrong moment, on some file systems, could cost the last commits."""
    sqlalchemy.event.listen(engine, "connect",
                            lambda dbapi_con, _record: dbapi_con.execute("PRAGMA synchronous=NORMAL"))
    engine.dispose()  # connections opened while Optuna set the store up get the pragma too


def _sqlite_path(url: str) -> str:
    """The file of an SQLite URL; "" for other databases and in-memory SQLite."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: no SQLite file
        return ""
    db = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or db == ":memory:" or db.startswith("file:"):
        return ""
    return db


def write_problem(url: str) -> str | None:
    """Why the SQLite store at ``url`` cannot be written (None if it can, or not SQLite)."""
    path = _sqlite_path(url)
    return _sqlite_write_problem(path) if path else None


def _sqlite_write_problem(path: str) -> str | None:
    """Why SQLite cannot write the store at ``path`` (None if it can).

    SQLite writes the file and creates ``<file>-journal`` beside it on every write, so the
    folder must be writable too. Checked with os.access (real uid), so root passes.
    """
    p = Path(path)
    folder = p.absolute().parent  # "the folder /home/me/x", not "the folder ."
    if p.exists():
        if not os.access(p, os.W_OK):
            return f"the store {path} is read-only (no write permission on the file)"
        if not os.access(folder, os.W_OK | os.X_OK):
            return (f"the folder {folder} of the store {path} is not writable (SQLite creates "
                    f"{p.name}-journal there on every write)")
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create the store {path}: the folder {folder} is not writable"
    return None


def _check_sqlite_file(path: str, *, must_exist: bool, read_only: bool) -> None:
    """Everything about an SQLite store file that fails later as a long traceback."""
    p = Path(path)
    if not p.exists():
        if must_exist or read_only:
            raise UserError(f"no study store at {path}: the file does not exist "
                            "(check --storage)")
        if not p.absolute().parent.is_dir():
            raise UserError(f"cannot create the store {path}: the folder {p.absolute().parent} "
                            "does not exist; create it or pass another --storage")
    elif p.is_dir():
        raise UserError(f"the store {path} is a folder, not a file; pass another --storage")
    elif not os.access(p, os.R_OK):
        raise UserError(f"the store {path} is not readable (no read permission on the file); "
                        "fix its permissions or pass another --storage")
    if not read_only:
        problem = _sqlite_write_problem(path)
        if problem:
            raise UserError(f"{problem}; make it writable or pass another --storage")
    tables = _refuse_foreign_sqlite(path)
    if (must_exist or read_only) and not tables:
        raise UserError(f"no study store at {path}: the file is empty (check --storage)")


def _refuse_foreign_sqlite(path: str) -> set[str]:
    """Never write Optuna's tables into a file that is not an Optuna store.

    Returns the file's tables (empty for a missing or empty file, which Optuna may fill).
    """
    if not (os.path.isfile(path) and os.path.getsize(path) > 0):
        return set()
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise UserError(f"{path} is not an SQLite database; it was left untouched - "
                            f"{_USE_ANOTHER}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            tables = {row[0] for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            columns = {t: {row[1] for row in con.execute(f'PRAGMA table_info("{t}")')}
                       for t in _OPTUNA_TABLES if t in tables}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is a corrupt SQLite database ({exc}); it was left untouched - "
                        f"{_USE_ANOTHER}") from None
    if tables and not all(need <= columns.get(t, set()) for t, need in _OPTUNA_TABLES.items()):
        raise UserError(f"{path} is an SQLite database of another program (not Optuna's "
                        f"tables); it was left untouched - {_USE_ANOTHER}")
    return tables


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def create_study(storage: optuna.storages.BaseStorage | str, name: str, *,
                 direction: Literal["minimize", "maximize"] = schema.DIRECTION,
                 sampler: optuna.samplers.BaseSampler | None = None,
                 pruner: optuna.pruners.BasePruner | None = None,
                 load_if_exists: bool = True,
                 metric_names: Sequence[str] = (schema.OBJECTIVE,),
                 directions: Sequence[str] | None = None) -> optuna.Study:
    """Create or load a study and name its objective, so optuna-dashboard shows "val_loss"
    rather than "Objective 0"; names already set (by the user or an earlier run) are kept.
    ``directions``: one per objective (a multi-objective study; ``direction`` is ignored),
    named by ``metric_names``."""
    if directions is not None and len(directions) > 1:
        study = optuna.create_study(storage=storage, study_name=name,
                                    directions=list(directions),  # type: ignore[arg-type]
                                    sampler=sampler, pruner=pruner, load_if_exists=load_if_exists)
    else:
        study = optuna.create_study(storage=storage, study_name=name,
                                    direction=directions[0] if directions else direction,  # type: ignore[arg-type]
                                    sampler=sampler, pruner=pruner, load_if_exists=load_if_exists)
    if metric_names and study.metric_names is None:
        with warnings.catch_warnings():  # "experimental" since 3.2, and in use here on purpose
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study


def open_study(storage: optuna.storages.BaseStorage, name: str, bench_attrs: Mapping[str, Any],
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the run's study, or reopen it after checking that it is the same search.

    An existing study recorded with another space, direction, searcher or data set is
    refused: mixing incomparable trials would make every later comparison wrong.
    """
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        summary = existing[name]
        old = summary.user_attrs.get(schema.STUDY_BENCH)
        if old is None and summary.n_trials == 0:
            old = dict(bench_attrs)  # created by a run that died before recording itself
            optuna.load_study(study_name=name, storage=storage).set_user_attr(schema.STUDY_BENCH, old)
        if old is None:
            raise UserError(f"study {name!r} exists in the store but was not made by this "
                            "benchmark; choose another --study")
        diffs = [k for k in COMPARABLE_KEYS if _canon(old.get(k)) != _canon(bench_attrs.get(k))]
        # Studies from before the key ran with every preset's patience, 3.
        if _canon(old.get("patience", 3)) != _canon(bench_attrs.get("patience", 3)):
            diffs.append("patience (early stopping)")
        # Studies from before the key ran on TensorFlow.
        if old.get("keras_backend", "tensorflow") != bench_attrs.get("keras_backend", "tensorflow"):
            diffs.append("Keras backend")
        if [d.name.lower() for d in summary.directions] != _directions(bench_attrs):
            diffs.append("direction")
        if diffs:
            raise UserError(f"study {name!r} exists with a different {', '.join(sorted(set(diffs)))}; "
                            "refusing to mix incomparable trials (choose another --study)")
    objectives = bench_attrs.get("objectives")
    study = create_study(storage, name, sampler=sampler, pruner=pruner,
                         direction=bench_attrs["direction"], directions=_directions(bench_attrs),
                         metric_names=objectives or (schema.OBJECTIVE,))
    if name not in existing:
        study.set_user_attr(schema.STUDY_BENCH, dict(bench_attrs))
    return study


def _directions(bench_attrs: Mapping[str, Any]) -> list[str]:
    """The study's directions as the ``bench`` attr records them (one per objective)."""
    return list(bench_attrs.get("directions") or [bench_attrs["direction"]])


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def trial_epochs(trial: FrozenTrial) -> int:
    """Epochs one trial trained: a finished trial's own count (its reported epochs when it
    recorded none), a RUNNING trial's reported epochs so far, a WAITING trial none."""
    if trial.state == TrialState.WAITING:
        return 0
    if trial.state == TrialState.RUNNING:
        return len(trial.intermediate_values)
    return int(trial.user_attrs.get(schema.T_EPOCHS, len(trial.intermediate_values)))


def trial_overhead(trial: FrozenTrial) -> float | None:
    """What the tuner cost one trial besides its training: wall - fit seconds, for a
    COMPLETE or PRUNED trial that recorded both (a failed trial's time says how it failed,
    not what the tuner costs). The one definition the report and ``bench overhead`` share."""
    attrs = trial.user_attrs
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None
    if schema.T_WALL not in attrs or schema.T_FIT not in attrs:
        return None

    def seconds(value: Any) -> float:
        return float(value) if isinstance(value, (int, float)) else 0.0
    return seconds(attrs[schema.T_WALL]) - seconds(attrs[schema.T_FIT])


def epochs_used(study: optuna.Study | Iterable[FrozenTrial]) -> int:
    """Epochs trained so far in the study (or in these trials), running trials of other
    workers included, so resume and workers never double-count. The run's summary and
    the report both count with this one function."""
    trials = study.get_trials(deepcopy=False) if isinstance(study, optuna.Study) else study
    return sum(trial_epochs(t) for t in trials)


def recorded_kt_ids(study: optuna.Study) -> set[str]:
    """KerasTuner trial ids already recorded for good: finished, and not interrupted
    (KerasTuner runs an interrupted trial again under the same id)."""
    return {str(t.user_attrs[schema.T_KT_ID]) for t in study.get_trials(deepcopy=False)
            if schema.T_KT_ID in t.user_attrs and t.state.is_finished()
            and not t.user_attrs.get(schema.T_INTERRUPTED)}
