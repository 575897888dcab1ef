"""Measurement studies: what ``compare``, ``memory``, ``overhead``, ``scaling``,
``throughput`` and ``calibrate`` record, written in one place.

Each measurement is one study of the store (``<dataset>-compare``, ``<dataset>-memory-p<N>``,
...; see docs/design.md) whose ``bench`` user attr holds the figures, the command line that
produced them, the machine and the package versions (``bench.core.provenance``). The report
reads these attrs; their keys are the contract.
"""
from __future__ import annotations

import shlex
from typing import Any, Callable, Mapping, Sequence

import optuna

from bench.core import schema, store
from bench.core.provenance import machine, versions

# old ``bench`` attr, new attrs (without command, machine, versions) -> attrs to write
Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def command_line(argv: Sequence[str]) -> str:
    """The command as a user would type it again: ``python -m bench`` and its arguments,
    with any password in a URL argument hidden (it is stored and printed in RESULTS.md)."""
    from bench.core.store import display_url
    return "python -m bench " + shlex.join(
        display_url(a) if "://" in a else a for a in argv)


def record_measurement(storage: str | optuna.storages.BaseStorage, study_name: str, kind: str,
                       attrs: Mapping[str, Any], *, command: str,
                       merge: Merge | None = None) -> dict[str, Any]:
    """Create (or reopen) ``study_name`` and set its ``bench`` attr to ``kind``, ``attrs``,
    ``command``, ``machine`` and ``versions``, in that order; returns what was written.

    ``merge`` gets the study's previous ``bench`` attr (``{}`` if none) and the new one,
    and returns what to keep (``bench memory`` keeps the rows of searchers not re-measured).
    """
    rdb = store.open_storage(storage) if isinstance(storage, str) else storage
    study = store.create_study(rdb, study_name)
    new = {"kind": kind, **attrs}
    if merge is not None:
        new = merge(dict(study.user_attrs.get(schema.STUDY_BENCH) or {}), new)
    record = {**new, "command": command, "machine": machine(), "versions": versions()}
    study.set_user_attr(schema.STUDY_BENCH, record)
    return record
