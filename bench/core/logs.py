"""Where the project's log lines go, and the library chatter that does not (every
command, and the processes a command starts, set logging up with these two)."""
from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirection)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


LOGGERS = ("bench", "searchers")  # the project's module loggers (logging.getLogger(__name__))


def configure_logging(verbose: bool = False) -> None:
    """The project's log records to stderr, as plain lines ("%(message)s"): INFO and up,
    DEBUG too with ``-v``. Records still propagate (pytest's caplog sees them); nothing
    is added to the root logger, so other libraries log as they did. Idempotent."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def quiet_libraries() -> None:
    """One line per trial is ours to print; library chatter goes unless -v asks for it."""
    import warnings
    warnings.filterwarnings("ignore", message=".*experimental.*")
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", module="sklearn")  # KerasTuner's Bayesian GP fits
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # a connection that died with its server is reset in vain: said by our own line instead
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
