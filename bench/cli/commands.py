"""Every ``python -m bench`` subcommand: its flags and its handler, in one table."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Callable

from bench.cli import flags
from bench.core import schema
from bench.core.errors import UserError


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searcher", default="optuna",
                   help="searcher name (default optuna: the recommended Optuna-backed search)")
    p.add_argument("--study", help="study name (default <dataset>-<searcher>-s<seed>)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the study (Optuna-backed searchers)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--trial-process", type=flags.trial_process, help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)  # a record's trial processes
    p.add_argument("--warm-start", metavar="PATH|STUDY",
                   help="Optuna-backed searchers: continue from the finished trials of a "
                        "KerasTuner project folder or of a study in --storage (they become "
                        "the study's history; the budget counts new trials only)")
    flags.add_common(p)


def _compare_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searchers", default="random,hyperband,bayesian,tpe",
                   help="comma-separated searcher names")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (from --seed)")
    p.add_argument("--no-retrain", action="store_true",
                   help="skip retraining each best configuration on train+val for the test split")
    p.add_argument("--report", action="store_true", help="write RESULTS.md afterwards")
    flags.add_common(p)


def _report_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    p.add_argument("--out", default="RESULTS.md")
    p.add_argument("--plots-dir", default="results")


def _dashboard_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1 only)")
    p.add_argument("--port", type=flags.whole_number_at_least(0), default=8080)
    p.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                   help="the artifact store of the runs (--artifacts of run): each trial's "
                        "page lists its checkpoint")


def _calibrate_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="toon")
    p.add_argument("--configs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE, help="record the result here")
    p.add_argument("--seed", type=flags.non_negative, default=0)
    p.add_argument("--image-size", type=flags.image_size)


def _throughput_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="toon")
    p.add_argument("--image-size", type=flags.image_size)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    flags.add_backend(p, several=True)
    p.add_argument("--epoch-times", help=argparse.SUPPRESS)  # one backend of a side-by-side run


def _memory_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searchers", default="random,hyperband,bayesian,tpe,bohb")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--trials-per-process", type=flags.non_negative, metavar="N",
                   help="as for run (default 20; 0: all trials in one process)")
    p.add_argument("--dataset", default="toon")
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    p.add_argument("--bare", action="store_true",
                   help="a plain build+fit loop instead of a search: Keras's own share")


def _scaling_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="postgresql://... or mysql+pymysql://...")
    p.add_argument("--result-storage", default=schema.DEFAULT_STORAGE,
                   help="where the measurement is recorded for the report")
    p.add_argument("--workers", type=flags.whole_number_at_least(2), default=2)
    p.add_argument("--trials", type=flags.positive, default=12)
    p.add_argument("--preset", default="standard")
    p.add_argument("--dataset", default="toon")

def _import_kt_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the KerasTuner project directory (<directory>/<project_name>)")
    p.add_argument("--study", default=None,
                   help="study name (default: kt-<project_name>)")
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE,
                   help=f"Optuna storage URL (default: {schema.DEFAULT_STORAGE})")


def _overhead_flags(p: argparse.ArgumentParser) -> None:
    from bench.run.presets import PRESETS
    p.add_argument("--searchers", default="random,tpe",
                   help="comma-separated searcher names (default random,tpe); each is compared "
                        "with the first run with the same code. NAME@PATH runs NAME with the "
                        "code of the checkout at PATH (e.g. an older commit unpacked with git "
                        "archive): before and after in one table")
    p.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    p.add_argument("--budget-epochs", type=int,
                   help="epochs of each search (default: the preset's)")
    p.add_argument("--seed", type=flags.non_negative, default=0)
    p.add_argument("--dataset", default="toon")
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE, help="where the measurement is recorded")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every searcher this many times, interleaved (a round runs each "
                        "once), and pool their trials: the ratio's spread over rounds shows "
                        "how much of it is timing noise (default 1)")
    p.add_argument("--artifacts", action="store_true",
                   help="each search keeps its best checkpoints in a folder artifact store too "
                        "(run --artifacts DIR): what the artifacts row costs")
    p.add_argument("-v", "--verbose", action="store_true", help="show library output")


def _record_flags(p: argparse.ArgumentParser) -> None:
    from bench.replay.record import DEFAULT_REPEATS
    from bench.run.presets import PRESETS
    p.add_argument("--dataset", default="toon", help="toon | digits | PATH to class folders")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS))
    p.add_argument("--configs", type=int, required=True,
                   help=f"configurations to train (>= {schema.SURROGATE_MIN_CONFIGS}: what the replay's "
                        "surrogate needs)")
    p.add_argument("--repeats", type=flags.non_negative, default=DEFAULT_REPEATS,
                   help=f"re-train this many of them with another training seed (default {DEFAULT_REPEATS})")
    p.add_argument("--epochs-per-trial", type=flags.positive, help="default: the preset's")
    p.add_argument("--seed", type=flags.non_negative, default=0)
    p.add_argument("--image-size", type=flags.image_size)
    p.add_argument("--data-seed", type=flags.non_negative, default=0)
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    p.add_argument("--study", help="default <dataset>-record-<preset>-s<seed>")
    p.add_argument("--logdir", default="runs")
    p.add_argument("--trials-per-process", type=flags.non_negative, metavar="N")
    p.add_argument("-v", "--verbose", action="store_true")


def _replay_flags(p: argparse.ArgumentParser) -> None:
    from bench.replay.surrogate import CANDIDATES
    from bench.run.presets import PRESETS
    p.add_argument("--searchers", default="random,hyperband,bayesian,tpe,bohb",
                   help="comma-separated names; optuna:SAMPLER:PRUNER for other Optuna parts")
    p.add_argument("--seeds", type=int, default=100, help="number of seeds (from --seed)")
    p.add_argument("--seed", type=flags.non_negative, default=0)
    p.add_argument("--dataset", default="toon")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS))
    p.add_argument("--budget-epochs", type=flags.positive, help="default: the preset's")
    p.add_argument("--epochs-per-trial", type=flags.positive, help="default: the preset's")
    p.add_argument("--patience", type=flags.non_negative, help="default: the preset's (3)")
    p.add_argument("--record", help="record study (default <dataset>-record-<preset>-s0)")
    p.add_argument("--model", choices=sorted(CANDIDATES),
                   help="surrogate regressor (default: best held-out Spearman)")
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE)
    p.add_argument("--jobs", type=flags.positive, default=os.cpu_count() or 1,
                   help="processes (default: cores)")
    p.add_argument("--replace", action="store_true", help="replay runs already stored again")
    p.add_argument("--warm-start-random", type=flags.positive, metavar="N",
                   help="measure warm start instead: per seed, each Optuna-backed searcher "
                        "cold and warm-started from N random configurations (same budget for "
                        "the new trials); recorded as <dataset>-replay-<preset>-warmN")
    p.add_argument("--compact", action="store_true",
                   help="store each run only as a row of the summary study (what the report "
                        "reads), not as a study of its own: a small store")


def _run(args: argparse.Namespace) -> int:
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise UserError(f"--workers must be >= 1 (got {workers})")
    if workers > 1:
        from bench.run.workers import WorkersSettings, run_workers
        return run_workers(WorkersSettings.from_args(args))
    from bench.run.runner import RunConfig, format_summary, run_search
    from bench.run.supervisor import EXIT_MORE, run_supervised, trials_per_process
    cfg = RunConfig.from_args(args, args.searcher, args.seed)
    if cfg.trial_process:  # a child of run_supervised: its launcher prints the summary
        return EXIT_MORE if run_search(cfg).capped else 0
    per_process = trials_per_process(cfg)
    summary = run_supervised(cfg, per_process) if per_process else run_search(cfg)
    print(format_summary(summary))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from bench.measure.compare import CompareSettings, run_compare
    return run_compare(CompareSettings.from_args(args))


def _report(args: argparse.Namespace) -> int:
    from bench.report.results import write_report
    path = write_report(args.storage, out=args.out, plots_dir=args.plots_dir)
    print(f"wrote {path}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from bench.report.dashboard import serve
    return serve(args.storage, host=args.host, port=args.port, artifacts=args.artifacts)


def _calibrate(args: argparse.Namespace) -> int:
    from bench.measure.calibrate import CalibrateSettings, run_calibrate
    return run_calibrate(CalibrateSettings.from_args(args))


def _throughput(args: argparse.Namespace) -> int:
    from bench.measure.throughput import ThroughputSettings, run_throughput
    return run_throughput(ThroughputSettings.from_args(args))


def _memory(args: argparse.Namespace) -> int:
    from bench.measure.memory import MemorySettings, run_memory
    return run_memory(MemorySettings.from_args(args))


def _scaling(args: argparse.Namespace) -> int:
    from bench.measure.scaling import ScalingSettings, run_scaling
    return run_scaling(ScalingSettings.from_args(args))

def _import_kt(args: argparse.Namespace) -> int:
    """One summary line, then one line per skipped file (Optuna's own INFO lines muted)."""
    import optuna

    from bench.core.store import display_url
    from bench.run.import_kt import import_project
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        result = import_project(args.path, storage=args.storage, study_name=args.study)
    finally:
        optuna.logging.set_verbosity(verbosity)
    skipped = f", {len(result.skipped)} file(s) skipped" if result.skipped else ""
    if result.added:
        print(f"imported {result.added} trial(s) from {args.path} into study "
              f"{result.study_name!r} ({display_url(args.storage)}); "
              f"{result.already_present} already there{skipped}")
    else:
        print(f"nothing new: study {result.study_name!r} ({display_url(args.storage)}) "
              f"already holds the {result.already_present} importable trial(s) of "
              f"{args.path}{skipped}")
    for file, why in result.skipped:
        print(f"skipped {os.path.join(str(args.path), file)}: {why}")
    return 0


def _overhead(args: argparse.Namespace) -> int:
    from bench.measure.overhead import OverheadSettings, run_overhead
    return run_overhead(OverheadSettings.from_args(args))


def _record(args: argparse.Namespace) -> int:
    from bench.replay.record import RecordSettings, run_record
    return run_record(RecordSettings.from_args(args))


def _replay(args: argparse.Namespace) -> int:
    from bench.replay.simulation import ReplaySettings, run_replay
    return run_replay(ReplaySettings.from_args(args))


def _searchers_named() -> str:
    from searchers.registry import SEARCHERS
    return "Searchers: " + ", ".join(f"{n} ({s.summary})" for n, s in SEARCHERS.items()) + "."


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help, its flags, and what runs it (a handler that
    builds the command's typed settings from the Namespace and calls the layer below)."""

    name: str
    help: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | Callable[[], str] | None = None


# The order of ``python -m bench --help``. A new command: its flags, its handler, one line.
COMMANDS: tuple[Command, ...] = (
    Command("run", "one search, logged to TensorBoard and the study store", _run_flags, _run,
            _searchers_named),
    Command("compare", "every searcher x seed on one space, split and budget", _compare_flags, _compare),
    Command("report", "write RESULTS.md and plots from the study store", _report_flags, _report),
    Command("dashboard", "open optuna-dashboard on the study store", _dashboard_flags, _dashboard),
    Command("calibrate", "baseline and random configurations on a data set", _calibrate_flags, _calibrate),
    Command("throughput", "images/s inside a trial vs a bare model.fit", _throughput_flags, _throughput),
    Command("memory", "resident memory and disk over many trials, per searcher", _memory_flags, _memory),
    Command("scaling", "trials per hour with 1 and N workers on a shared store", _scaling_flags, _scaling),
    Command("import-kt", "import a KerasTuner project directory into an Optuna study",
            _import_kt_flags, _import_kt,
            "Turn <directory>/<project_name>/ written by KerasTuner 1.0-1.4 (oracle.json, "
            "trial_*/trial.json) into an Optuna study. Re-importing adds only trials that are "
            "new since the last import."),
    Command("overhead", "per-trial overhead of searchers side by side, broken down",
            _overhead_flags, _overhead,
            "Per-trial overhead (wall - fit, median) of searchers run one after the other, "
            "each in its own process, with a breakdown by component; recorded in --storage."),
    Command("record", "learning curves of uniform configurations (for bench replay)",
            _record_flags, _record),
    Command("replay", "searchers x many seeds against recorded learning curves",
            _replay_flags, _replay),
)
