"""Optuna's RDB storage, riding out a short database outage.

Why: Optuna's ``RDBStorage`` turns the first statement on a dropped connection into a
``StorageInternalError`` that blames "invalid data ... exceeding max length", and a search
of hours ends with a page of tracebacks because its database restarted for three seconds.
This subclass retries such a call with backoff while the outage lasts less than
``outage_seconds`` (every call of the process shares one outage clock, so a long outage
costs that long once, not once per call), says so in one log line when the store goes away
and one when it is back, and past that raises ``StoreUnavailable``: one exception that
says which store, for how long, and what to do.

What counts as an outage: SQLAlchemy's ``OperationalError`` / ``InterfaceError`` or a
connection it invalidated (server gone, connection refused or reset, a locked SQLite file
past its own timeout), bare or as the cause of Optuna's ``StorageInternalError``. Anything
else (an ``IntegrityError``, Optuna's own errors) passes through at once. A deleted SQLite
file is not an outage: reconnecting would create an empty database in its place, so it is
``StoreUnavailable`` at once.

A subclass, not a wrapper: Optuna caches (``_CachedStorage``) and heartbeats only storages
that are ``RDBStorage`` instances, and the benchmark's one-transaction helpers use its
sessions.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import optuna
import sqlalchemy.exc

log = logging.getLogger(__name__)

# How long an outage may last before a run gives up (BENCH_STORE_OUTAGE_SECONDS overrides):
# long enough for a database restart or a fail-over, short enough that a store that is
# gone for good ends the run within a minute.
DEFAULT_OUTAGE_SECONDS = 30.0
_FIRST_WAIT, _MAX_WAIT = 0.25, 4.0

# Every public RDBStorage method that talks to the database.
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials",
    "get_best_trial", "get_trial_user_attrs", "get_trial_system_attrs", "record_heartbeat",
    "_get_stale_trial_ids", "get_n_trials", "get_trial_number_from_id",
)

F = TypeVar("F", bound=Callable[..., Any])


class StoreUnavailable(optuna.exceptions.StorageInternalError):
    """The study store stayed unreachable past the outage window (or its SQLite file is
    gone). What was finished is stored; the same command resumes once it is back."""

    exit_code = 1


def default_outage_seconds() -> float:
    raw = os.environ.get("BENCH_STORE_OUTAGE_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_OUTAGE_SECONDS
    except ValueError:
        return DEFAULT_OUTAGE_SECONDS


def is_outage(exc: BaseException) -> bool:
    """A failure of the connection, not of the statement."""
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
        return True
    return isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))


def store_outage_in(exc: BaseException | None) -> StoreUnavailable | None:
    """The ``StoreUnavailable`` behind an exception (KerasTuner and Keras wrap what a
    callback raises), or None."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, StoreUnavailable):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    cause = getattr(cause, "orig", None) or cause  # the driver's own message
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def _retried(method: F) -> F:
    @functools.wraps(method)
    def call(self: "RetryingRDBStorage", *args: Any, **kwargs: Any) -> Any:
        return self._call(method, args, kwargs)
    return call  # type: ignore[return-value]


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """``RDBStorage`` whose calls wait out a database outage of up to ``outage_seconds``.

    ``shown_as``: the store as messages name it (a URL without its password).
    ``sqlite_path``: the database file of a SQLite store, checked after a failure."""

    def __init__(self, url: str, *args: Any, shown_as: str | None = None,
                 sqlite_path: str | None = None, outage_seconds: float | None = None,
                 **kwargs: Any) -> None:
        self.shown_as = shown_as or url
        self.sqlite_path = sqlite_path
        self.outage_seconds = default_outage_seconds() if outage_seconds is None else outage_seconds
        self._outage_lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time of the first failure
        self._gave_up = False
        super().__init__(url, *args, **kwargs)

    def _call(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        wait = _FIRST_WAIT
        while True:
            try:
                result = method(self, *args, **kwargs)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._check_sqlite_file()
                left = self._outage_began(exc)
                if left <= 0:
                    raise self._unavailable(exc) from None
                time.sleep(min(wait, left))
                wait = min(wait * 2, _MAX_WAIT)
                self.remove_session()  # the next try starts from a fresh session
                continue
            self._outage_ended()
            return result

    def _outage_began(self, exc: BaseException) -> float:
        """Start the outage clock on its first failure; the seconds left of its window."""
        with self._outage_lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                if self.outage_seconds > 0:
                    log.warning("note: the study store %s is unreachable (%s); retrying for up "
                                "to %.0f s", self.shown_as, _first_line(exc), self.outage_seconds)
            return self._down_since + self.outage_seconds - now

    def _outage_ended(self) -> None:
        if self._down_since is None:
            return
        with self._outage_lock:
            if self._down_since is not None and not self._gave_up:
                log.warning("note: the study store %s is back after %.1f s; the run goes on",
                            self.shown_as, time.monotonic() - self._down_since)
            self._down_since, self._gave_up = None, False

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        with self._outage_lock:
            self._gave_up = True
            down = time.monotonic() - (self._down_since or time.monotonic())
        return StoreUnavailable(
            f"the study store {self.shown_as} has been unreachable for {down:.0f} s "
            f"({_first_line(exc)}); finished trials are stored - run the same command to "
            "resume once it is back")

    def _check_sqlite_file(self) -> None:
        if self.sqlite_path and not os.path.exists(self.sqlite_path):
            with self._outage_lock:
                self._gave_up = True
            raise StoreUnavailable(
                f"the SQLite store {self.sqlite_path} was removed while the run used it; "
                "nothing more can be stored there (a new file would be an empty study)")


for _name in _RETRIED:  # only what RDBStorage itself defines: BaseStorage's call these
    if _name in vars(optuna.storages.RDBStorage):
        setattr(RetryingRDBStorage, _name, _retried(getattr(optuna.storages.RDBStorage, _name)))


@contextlib.contextmanager
def outage_ends_search() -> Iterator[None]:
    """Around a KerasTuner trial: KerasTuner fails a trial on any exception and goes on
    with the next one, which would fail the same way; a store outage ends the search
    instead (as KerasTuner's ``FatalError``, which it lets through)."""
    try:
        yield
    except Exception as exc:
        outage = store_outage_in(exc)
        import keras_tuner  # only here: this module is imported where TensorFlow is not
        if outage is None or isinstance(exc, keras_tuner.errors.FatalError):
            raise
        raise keras_tuner.errors.FatalError(str(outage)) from outage


def open_url(url: str) -> RetryingRDBStorage:
    """The retrying storage for a database URL, as ``optuna.create_study(storage=url)``
    would open it (plus a liveness check of pooled connections on a server database,
    so that a connection the restart killed is replaced, not used)."""
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    path = parsed.database if sqlite and parsed.database not in (None, "", ":memory:") else None
    return RetryingRDBStorage(url, shown_as=parsed.render_as_string(hide_password=True),
                              sqlite_path=path,
                              engine_kwargs={} if sqlite else {"pool_pre_ping": True})
