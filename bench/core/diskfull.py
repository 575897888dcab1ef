"""A full disk ends a run with one line, wherever it struck (checkpoint, TensorBoard
event file, KerasTuner state, the SQLite store)."""
from __future__ import annotations

import contextlib
import errno
from pathlib import Path
from typing import Iterator

from bench.core.errors import RunError

_MARKERS = ("No space left on device", "Disk quota exceeded", "database or disk is full")


def is_disk_full(exc: BaseException | None) -> bool:
    """True if ``exc`` or anything in its chain says the disk is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(m in str(exc) for m in _MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_as_run_error(where: Path) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if is_disk_full(exc):
            raise RunError(f"disk full while writing the run under {where}: free some space "
                           "and run the same command again to resume (finished trials are in "
                           "the store)") from None
        raise
