"""One process runs a study at a time (``--workers`` launches excepted).

Two ``bench run`` invocations of the same study would share its KerasTuner project and
TensorBoard folders, fight over HDF5 checkpoint locks and, for KerasTuner's searchers,
run the same trials twice. The second one is refused instead, while the first runs.

The lock lives where the study lives, and dies with the process that holds it (also on
SIGKILL), so a crash never leaves a study locked:

* SQLite: ``fcntl.flock`` on a small file beside the database;
* PostgreSQL: a session advisory lock (shared by ``--workers`` launches, so that
  several machines can join one study, exclusive for a single-process run);
* MySQL/MariaDB: ``GET_LOCK`` (exclusive only; ``--workers`` launches take none).
"""
from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any, Protocol

from bench.core.errors import UserError

_KEY_PREFIX = "toon-bench study "


class Lock(Protocol):
    def release(self) -> None: ...


class NoLock:
    def release(self) -> None:
        pass


class _FileLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1


class _SessionLock:
    """A database connection held open for the run: its session owns the lock."""

    def __init__(self, engine: Any, connection: Any) -> None:
        self.engine, self.connection = engine, connection

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
                self.engine.dispose()
            except Exception:  # noqa: BLE001 - a dead server took the lock with its session
                pass
            self.connection = None


def _refused(study: str, holder: str = "") -> UserError:
    who = f" ({holder})" if holder else ""
    return UserError(f"study {study!r} is being run by another process{who}; wait for it to "
                     "finish, or pass another --study")


def _digest(study: str) -> str:
    return hashlib.sha256((_KEY_PREFIX + study).encode()).hexdigest()


def _sqlite_lock(db_path: str, study: str) -> Lock:
    """Keyed by the database file itself (links followed), beside it: two URLs of one file
    (a symlink, ``?timeout=60``, ``%78.db``) are one lock."""
    import fcntl

    real = Path(db_path).expanduser().resolve()
    path = real.parent / f".{real.name}.locks" / f"{_digest(study)[:24]}.lock"
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot create the run lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        os.close(fd)
        raise _refused(study, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    return _FileLock(path, fd)


def _server_lock(url: str, study: str, shared: bool) -> Lock:
    import sqlalchemy

    from bench.core.store import session_engine

    engine = session_engine(url)
    backend = engine.dialect.name
    params: dict[str, Any]
    if backend == "postgresql":
        key = int(_digest(study)[:15], 16)  # fits a signed 64-bit bigint
        fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        query, params = f"SELECT {fn}(:key)", {"key": key}
    elif backend in ("mysql", "mariadb") and not shared:
        # GET_LOCK is server-wide: the database is part of the key (a study of the same
        # name in another database is another study)
        name = f"{engine.url.database}\0{study}"
        query, params = "SELECT GET_LOCK(:name, 0)", {"name": "toon-bench:" + _digest(name)[:40]}
    else:
        engine.dispose()
        return NoLock()
    connection = engine.connect()
    try:
        got = connection.execute(sqlalchemy.text(query), params).scalar()
        connection.commit()
    except Exception:
        connection.close()
        engine.dispose()
        raise
    if not got:
        connection.close()
        engine.dispose()
        raise _refused(study)
    return _SessionLock(engine, connection)


def acquire(storage_url: str, study: str, *, shared: bool = False) -> Lock:
    """Lock ``study`` in the store at ``storage_url`` for this process, or raise
    ``UserError`` naming the study when another process holds it. ``shared``: a
    ``--workers`` launch, which other launches of the same study may join."""
    if storage_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url
        path = make_url(storage_url).database or ""  # as SQLAlchemy opens it (no query, decoded)
        if not path or path == ":memory:" or shared:
            return NoLock()
        return _sqlite_lock(path, study)
    return _server_lock(storage_url, study, shared)
