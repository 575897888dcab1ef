"""The SQL study store: opening it safely, one study per run, mirrored trials.

Every searcher's trials land in an Optuna RDB storage. The Optuna-backed searchers
decide inside the study; KerasTuner's own searchers are mirrored into it trial by trial
as each ends (``record_trial``), so a crash loses at most the running trial.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
from typing import Any, Mapping

import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from bench import schema
from bench.errors import RunError, UserError

HEARTBEAT_SECONDS = int(os.environ.get("BENCH_HEARTBEAT_SECONDS", "5"))
GRACE_SECONDS = int(os.environ.get("BENCH_GRACE_SECONDS", "30"))

# Keys of the study's ``bench`` attr that must match for trials to be comparable.
COMPARABLE_KEYS = ("searcher", "dataset", "fingerprint", "space", "objective", "direction",
                   "epochs_per_trial", "batch_size", "seed")


@functools.lru_cache(maxsize=None)
def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Open (or create) the store; bad URLs and foreign files give one clear line.
    Cached per URL: one connection pool per store and process."""
    if "://" not in url:
        raise UserError(f"malformed storage URL {url!r}: expected e.g. sqlite:///studies.db "
                        "or postgresql://user@host/db")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
        _refuse_foreign_sqlite(url)
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise UserError(f"malformed storage URL {url!r}: {_first_line(exc)}") from None
    except (sqlalchemy.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise UserError(f"no database driver for {url!r} ({_first_line(exc)}); install the "
                        "project's [postgres] or [mysql] extra") from None
    except sqlalchemy.exc.DatabaseError as exc:
        if url.startswith("sqlite"):
            raise UserError(f"{_sqlite_path(url)} is not a usable Optuna SQLite store "
                            f"({_first_line(exc)}); it was left untouched - move it away or "
                            "pass another --storage") from None
        raise RunError(f"cannot reach storage {_redact(url)}: {_first_line(exc)}") from None
    except Exception as exc:  # e.g. Optuna's schema version check on an odd database
        raise RunError(f"cannot open storage {_redact(url)}: {_first_line(exc)}") from None


def _refuse_foreign_sqlite(url: str) -> None:
    """Never write Optuna's tables into a file that is not an Optuna store."""
    path = _sqlite_path(url)
    if not (path and os.path.isfile(path) and os.path.getsize(path) > 0):
        return
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise UserError(f"{path} is not an SQLite database; it was left untouched - "
                            "move it away or pass another --storage")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is a corrupt SQLite database ({exc}); it was left untouched - "
                        "move it away or pass another --storage") from None
    if tables and not {"studies", "version_info"} <= tables:
        raise UserError(f"{path} is an SQLite database of another program; it was left "
                        "untouched - move it away or pass another --storage")


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1] if ":///" in url else ""


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
        if summary.direction.name.lower() != bench_attrs["direction"]:
            diffs.append("direction")
        if diffs:
            raise UserError(f"study {name!r} exists with a different {', '.join(sorted(set(diffs)))}; "
                            "refusing to mix incomparable trials (choose another --study)")
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                direction=bench_attrs["direction"], load_if_exists=True)
    if name not in existing:
        study.set_user_attr(schema.STUDY_BENCH, dict(bench_attrs))
    return study


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def epochs_used(study: optuna.Study) -> int:
    """Epochs trained so far in the study: finished trials' own count, running trials'
    reported epochs (other workers), so resume and workers never double-count."""
    used = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            used += len(t.intermediate_values)
        elif t.state != TrialState.WAITING:
            used += int(t.user_attrs.get(schema.T_EPOCHS, len(t.intermediate_values)))
    return used


def recorded_kt_ids(study: optuna.Study) -> set[str]:
    return {str(t.user_attrs[schema.T_KT_ID]) for t in study.get_trials(deepcopy=False)
            if schema.T_KT_ID in t.user_attrs and t.state != TrialState.RUNNING}


def record_trial(study: optuna.Study, state: TrialState, value: float | None,
                 params: dict[str, Any], distributions: dict[str, BaseDistribution],
                 intermediate: Mapping[int, float], user_attrs: Mapping[str, Any]) -> None:
    """Mirror one finished trial decided elsewhere (KerasTuner's own oracles)."""
    if state != TrialState.COMPLETE:
        value = None
    finite = {int(k): float(v) for k, v in intermediate.items() if v == v and abs(v) != float("inf")}
    study.add_trial(optuna.trial.create_trial(
        state=state, value=value, params=params, distributions=distributions,
        intermediate_values=finite, user_attrs=dict(user_attrs)))
