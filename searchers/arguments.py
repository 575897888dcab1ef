"""Checks of ``OptunaSearch``'s arguments that would otherwise fail later, deep inside
SQLAlchemy or ``os.makedirs``, or silently run nothing: a ``ValueError`` that names the
argument and what to pass, raised before anything is created."""
from __future__ import annotations

import os
from typing import Any


def check_max_trials(max_trials: Any) -> None:
    if max_trials is None:
        return
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"max_trials must be a whole number >= 1, or None for no limit; "
                         f"got {max_trials!r}")


def check_directory(directory: Any) -> None:
    """``directory=``: a folder, or a path that can become one (nothing on the way is a file)."""
    if directory is None or "://" in str(directory):  # gs://...: KerasTuner's own file layer
        return
    path = os.path.abspath(os.fspath(directory))
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if probe and not os.path.isdir(probe):
        raise ValueError(f"directory={directory!r}: {probe} is a file, not a folder; pass a folder "
                         "for the project")


def shown_url(url: str) -> str:
    """The URL with its password hidden (for messages)."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  # unparsable: nothing before the '@'
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}" if "@" in rest else url


def check_storage(storage: Any) -> None:
    """``storage=`` given as a URL: one SQLAlchemy understands, with an installed driver,
    and for SQLite a folder that exists."""
    if not isinstance(storage, str):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    try:
        url = make_url(storage)
    except (ArgumentError, ValueError):
        raise ValueError(f"storage={shown_url(storage)!r} is not a database URL; pass e.g. "
                         "'sqlite:///optuna.db' or 'postgresql://user@host/db'") from None
    if url.drivername in ("postgres",):
        raise ValueError(f"storage={shown_url(storage)!r}: SQLAlchemy names PostgreSQL "
                         "'postgresql://' (not 'postgres://')")
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"storage={shown_url(storage)!r}: unknown database kind "
                         f"{url.drivername!r}; pass sqlite://, postgresql:// or mysql+pymysql://") from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        folder = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(folder):
            raise ValueError(f"storage={shown_url(storage)!r}: the folder {folder} does not "
                             "exist; create it or pass another path")
