"""``python -m bench``: run, compare, report, dashboard, import-kt, calibrate, throughput."""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from typing import Callable, NoReturn, Sequence

from bench import quiet, schema
from bench.errors import INTERRUPTED, Reported, RunError, UserError
from searchers.errors import ConfigError

DEFAULT_STORAGE = schema.DEFAULT_STORAGE


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes end like every other user mistake: one ``error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 120x40, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return h, w


def _whole_number_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


_non_negative = _whole_number_at_least(0)
_positive = _whole_number_at_least(1)


def _positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _objectives(text: str) -> tuple[str, ...]:
    """--objectives val_loss,params: known names, checked as a run checks them."""
    from bench.runner import check_objectives
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    try:
        check_objectives(names)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--objectives").strip(" :")) from None
    return names


def _trial_process(text: str) -> tuple[int, int]:
    cap, index = (int(v) for v in text.split(":"))
    return cap, index


def _add_common(p: argparse.ArgumentParser) -> None:
    from bench.presets import PRESETS
    p.add_argument("--seed", type=_non_negative, default=0, help="searcher seed (default 0)")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS),
                   help="scale: quick (tests), standard (2-core CPU), full (seed's 600x200, GPU)")
    p.add_argument("--budget-epochs", type=int, help="total training epochs across all trials")
    p.add_argument("--epochs-per-trial", type=int, help="epochs of one full trial")
    p.add_argument("--max-trials", type=int, help="stop after this many trials")
    p.add_argument("--timeout", type=_positive_seconds,
                   help="wall-clock limit: the running trial stops and no new one starts after SEC seconds")
    p.add_argument("--dataset", default="toon", help="toon | digits | PATH to class folders")
    p.add_argument("--image-size", type=_image_size, help="HxW (default: the preset's / data set's)")
    p.add_argument("--data-seed", type=_non_negative, default=0, help="seed of the data set and its split")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="SQLAlchemy URL of the study store")
    p.add_argument("--logdir", default="runs", help="TensorBoard logs: <logdir>/<study>/")
    p.add_argument("--sampler", help="Optuna-backed searchers: tpe|random|cmaes|gp|qmc")
    p.add_argument("--pruner", help="Optuna-backed searchers: none|median|sha|hyperband")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patience", type=_non_negative, metavar="N",
                   help="EarlyStopping patience on val_loss (default: the preset's, 3; 0: none)")
    p.add_argument("--trials-per-process", type=_non_negative, metavar="N",
                   help="run trials in a child process replaced every N trials: flat memory, "
                        "and a trial whose process dies costs only that trial (default "
                        "20; 0: run trials in this process)")
    p.add_argument("--objectives", type=_objectives, metavar="A,B",
                   help="comma list of val_loss, val_accuracy, loss, accuracy, params (the "
                        "model's parameter count); two or more: a multi-objective run "
                        "(default val_loss)")
    p.add_argument("--max-params", type=_positive, metavar="N",
                   help="size cap: trials of larger models are infeasible (an Optuna constraint)")
    p.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                   help="keep the best trials' checkpoints in this Optuna artifact store too "
                        "(a folder every machine mounts, or S3): get_best_models and the "
                        "dashboard find them from any machine")
    p.add_argument("-v", "--verbose", action="store_true", help="show Keras epoch output")


def run_config(args: argparse.Namespace, searcher: str, seed: int):
    """The ``RunConfig`` of a ``run`` or ``compare`` command line, for one searcher and seed."""
    from bench.runner import RunConfig
    return RunConfig(
        searcher=searcher, seed=seed, preset=args.preset, budget_epochs=args.budget_epochs,
        epochs_per_trial=args.epochs_per_trial, max_trials=args.max_trials, timeout=args.timeout,
        dataset=args.dataset, image_size=args.image_size, data_seed=args.data_seed,
        storage=args.storage, study=getattr(args, "study", None), logdir=args.logdir,
        sampler=args.sampler, pruner=args.pruner, batch_size=args.batch_size,
        patience=args.patience, kind=getattr(args, "kind", None) or schema.KIND_SEARCH,
        verbose=args.verbose, worker=getattr(args, "worker", None),
        trials_per_process=args.trials_per_process,
        trial_process=getattr(args, "trial_process", None),
        objectives=getattr(args, "objectives", None) or (schema.OBJECTIVE,),
        max_params=getattr(args, "max_params", None),
        artifacts=getattr(args, "artifacts", None),
        warm_start=getattr(args, "warm_start", None))


_config = run_config  # the older name (tests/test_trial_process.py)


def cmd_run(args: argparse.Namespace) -> int:
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise UserError(f"--workers must be >= 1 (got {workers})")
    if workers > 1:
        from bench.workers import WorkersSettings, run_workers
        return run_workers(WorkersSettings.from_args(args))
    from bench.runner import format_summary, run_search
    from bench.supervisor import EXIT_MORE, run_supervised, trials_per_process
    cfg = run_config(args, args.searcher, args.seed)
    if cfg.trial_process:  # a child of run_supervised: its launcher prints the summary
        return EXIT_MORE if run_search(cfg).capped else 0
    per_process = trials_per_process(cfg)
    summary = run_supervised(cfg, per_process) if per_process else run_search(cfg)
    print(format_summary(summary))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import CompareSettings, run_compare
    return run_compare(CompareSettings.from_args(args))


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report
    path = write_report(args.storage, out=args.out, plots_dir=args.plots_dir)
    print(f"wrote {path}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from bench.dashboard import serve
    return serve(args.storage, host=args.host, port=args.port, artifacts=args.artifacts)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.calibrate import CalibrateSettings, run_calibrate
    return run_calibrate(CalibrateSettings.from_args(args))


def cmd_throughput(args: argparse.Namespace) -> int:
    from bench.throughput import ThroughputSettings, run_throughput
    return run_throughput(ThroughputSettings.from_args(args))


def cmd_memory(args: argparse.Namespace) -> int:
    from bench.memory import MemorySettings, run_memory
    return run_memory(MemorySettings.from_args(args))


def cmd_scaling(args: argparse.Namespace) -> int:
    from bench.scaling import ScalingSettings, run_scaling
    return run_scaling(ScalingSettings.from_args(args))


def build_parser() -> argparse.ArgumentParser:
    from searchers.registry import SEARCHERS
    parser = _Parser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    names = ", ".join(f"{n} ({s.summary})" for n, s in SEARCHERS.items())

    p = sub.add_parser("run", help="one search, logged to TensorBoard and the study store",
                       description=f"Searchers: {names}.")
    p.add_argument("--searcher", default="optuna",
                   help="searcher name (default optuna: the recommended Optuna-backed search)")
    p.add_argument("--study", help="study name (default <dataset>-<searcher>-s<seed>)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the study (Optuna-backed searchers)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--trial-process", type=_trial_process, help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)  # a record's trial processes
    p.add_argument("--warm-start", metavar="PATH|STUDY",
                   help="Optuna-backed searchers: continue from the finished trials of a "
                        "KerasTuner project folder or of a study in --storage (they become "
                        "the study's history; the budget counts new trials only)")
    _add_common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="every searcher x seed on one space, split and budget")
    p.add_argument("--searchers", default="random,hyperband,bayesian,tpe",
                   help="comma-separated searcher names")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (from --seed)")
    p.add_argument("--no-retrain", action="store_true",
                   help="skip retraining each best configuration on train+val for the test split")
    p.add_argument("--report", action="store_true", help="write RESULTS.md afterwards")
    _add_common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write RESULTS.md and plots from the study store")
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--out", default="RESULTS.md")
    p.add_argument("--plots-dir", default="results")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="open optuna-dashboard on the study store")
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1 only)")
    p.add_argument("--port", type=_whole_number_at_least(0), default=8080)
    p.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                   help="the artifact store of the runs (--artifacts of run): each trial's "
                        "page lists its checkpoint")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("calibrate", help="baseline and random configurations on a data set")
    p.add_argument("--dataset", default="toon")
    p.add_argument("--configs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="record the result here")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--image-size", type=_image_size)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("throughput", help="images/s inside a trial vs a bare model.fit")
    p.add_argument("--dataset", default="toon")
    p.add_argument("--image-size", type=_image_size)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.set_defaults(func=cmd_throughput)

    p = sub.add_parser("memory", help="resident memory and disk over many trials, per searcher")
    p.add_argument("--searchers", default="random,hyperband,bayesian,tpe,bohb")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--trials-per-process", type=_non_negative, metavar="N",
                   help="as for run (default 20; 0: all trials in one process)")
    p.add_argument("--dataset", default="toon")
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--bare", action="store_true",
                   help="a plain build+fit loop instead of a search: Keras's own share")
    p.set_defaults(func=cmd_memory)

    p = sub.add_parser("scaling", help="trials per hour with 1 and N workers on a shared store")
    p.add_argument("--storage", required=True, help="postgresql://... or mysql+pymysql://...")
    p.add_argument("--result-storage", default=DEFAULT_STORAGE,
                   help="where the measurement is recorded for the report")
    p.add_argument("--workers", type=_whole_number_at_least(2), default=2)
    p.add_argument("--trials", type=_positive, default=12)
    p.add_argument("--preset", default="standard")
    p.add_argument("--dataset", default="toon")
    p.set_defaults(func=cmd_scaling)

    from bench.import_kt import add_cli
    add_cli(sub)
    from bench.overhead import add_cli as add_overhead_cli
    add_overhead_cli(sub)
    from bench.record import add_cli as add_record_cli
    add_record_cli(sub)
    from bench.replay import add_cli as add_replay_cli
    add_replay_cli(sub)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line, with ``argv``: the arguments as given (what measurements
    record as their command, what ``--workers`` workers re-run); each command's settings
    are built from this (``<Command>Settings.from_args``)."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    return args


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


def _quiet_libraries() -> None:
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
        _quiet_libraries()
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
