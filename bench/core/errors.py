"""Errors the CLI turns into one clear line (no traceback)."""
from searchers.errors import ConfigError


class UserError(ConfigError):
    """The user's input is wrong (bad flag, bad path, incompatible study). Exit code 2."""

    exit_code = 2


class RunError(Exception):
    """The run could not go on (storage unreachable, too many failed trials). Exit code 1."""

    exit_code = 1


# What every interrupted command prints (Ctrl-C, SIGTERM), at any moment of its life.
INTERRUPTED = "interrupted: finished trials are in the store; run the same command to resume"


class Reported(Exception):
    """A child process (a trial process) already printed why it stopped: exit with its
    code and print nothing more."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"exit code {exit_code}")
        self.exit_code = exit_code
