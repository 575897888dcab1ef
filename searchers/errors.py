"""Errors the searcher library raises for a caller's mistake.

``searchers`` is the library a KerasTuner user imports; it must not depend on the ``bench``
CLI. A ``ConfigError`` is a ``ValueError`` for library users; the CLI turns it into one
line and exit code 2 (``bench.core.errors.UserError`` derives from it).
"""


class ConfigError(ValueError):
    """A searcher, sampler or pruner was asked for that does not exist or cannot run here."""

    exit_code = 2
