"""``python -m bench``: run, compare, report, dashboard, import-kt, calibrate, throughput,
memory, scaling, overhead, record, replay (the table: ``bench.cli.commands``)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Sequence

from bench.cli import flags
from bench.cli.commands import COMMANDS
from bench.core import quiet
from bench.core.errors import INTERRUPTED, Reported, RunError
from bench.core.logs import configure_logging, quiet_libraries
from searchers.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(prog="python -m bench", description=(
        "Tune a KerasTuner build_model(hp) with Optuna, benchmark KerasTuner's searchers "
        "against it on one search space, and report (python -m bench COMMAND --help)."))
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        description = command.description() if callable(command.description) else command.description
        p = sub.add_parser(command.name, help=command.help, description=description)
        command.add_flags(p)
        p.set_defaults(func=command.run)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line, with ``argv``: the arguments as given (what measurements
    record as their command); each command's settings are built from this
    (``<Command>Settings.from_args``, ``RunConfig.from_args``)."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    return args


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (kill, timeout, job schedulers) ends a run like Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        verbose = bool(getattr(args, "verbose", False))
        configure_logging(verbose)
        if not verbose:
            quiet.install()
        quiet_libraries()
        return int(args.func(args) or 0)
    except (ConfigError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Reported as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        argv_seen = sys.argv if argv is None else argv
        if not {"--worker", "--trial-process"} & set(argv_seen):  # their launcher says it
            print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as exc:
        from searchers.resilient_storage import store_outage_in
        outage = store_outage_in(exc)  # the store went away under any command
        if outage is None:
            raise
        print(f"error: {outage}", file=sys.stderr)
        return outage.exit_code
