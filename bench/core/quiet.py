"""Keep TensorFlow's start-up lines out of what the user reads.

On some CPUs TensorFlow 2.21 writes lines such as "WARNING: All log messages before
absl::InitializeLog() ..." and "oneDNN custom operations are on" straight to file
descriptor 2 while it is imported; ``TF_CPP_MIN_LOG_LEVEL`` does not silence them, and
Python's ``sys.stderr`` never sees them. So the import itself runs with descriptor 2
pointed at a temporary file. Whatever was written there is kept in ``captured``, and
shown right away should the import fail; ``-v`` leaves the import alone.

The capture is an import hook rather than an eager import so that commands that never
need TensorFlow (``--help``, ``report``, ``dashboard``, a mistyped flag) never pay for it.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile
from typing import Iterator

QUIETED = ("tensorflow",)
captured: list[str] = []   # what the quieted imports wrote, in order


@contextlib.contextmanager
def stderr_fd_captured(into: list[str]) -> Iterator[None]:
    """Point descriptor 2 at a temporary file for the block; append what it caught."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            if text:
                into.append(text)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of a quieted top-level package."""

    def find_spec(self, name: str, path=None, target=None):  # importlib's API
        if name not in QUIETED:
            return None
        sys.meta_path.remove(self)  # once: later lookups go to the real finders
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module) -> None:
            caught: list[str] = []
            try:
                with stderr_fd_captured(caught):
                    real_exec(module)
            except Exception:  # an import that fails explains itself (Ctrl-C does not)
                sys.stderr.write("".join(caught))
                raise
            captured.extend(caught)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Quiet TensorFlow's import from now on (idempotent; ``-v`` does not call it)."""
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
