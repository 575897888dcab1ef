"""``python -m bench scaling``: trials per hour with 1 and with N workers, same budget.

Both runs use the same searcher, trial count and data on a shared server store
(PostgreSQL or MySQL: SQLite cannot take several writers), each in a fresh study, and
are timed end to end as a user would see them (process start-up included).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import optuna

from bench.core import schema, store
from bench.core.errors import RunError, UserError
from bench.core.measurement import command_line, record_measurement


@dataclass(frozen=True)
class ScalingSettings:
    """``bench scaling``'s flags."""

    storage: str                # the shared server store the runs use
    result_storage: str = schema.DEFAULT_STORAGE  # where the measurement is recorded
    workers: int = 2
    trials: int = 12
    preset: str = "standard"
    dataset: str = "toon"
    argv: tuple[str, ...] = ()  # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ScalingSettings":
        return cls(storage=args.storage, result_storage=args.result_storage,
                   workers=args.workers, trials=args.trials, preset=args.preset,
                   dataset=args.dataset, argv=tuple(args.argv))


def _timed_run(storage: str, study: str, workers: int, trials: int, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "bench", "run", "--searcher", "tpe", "--storage", storage,
           "--study", study, "--max-trials", str(trials), "--budget-epochs", "100000",
           "--workers", str(workers), *extra]
    started = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RunError(f"scaling run with {workers} worker(s) failed: "
                       f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return time.monotonic() - started


def run_scaling(settings: ScalingSettings) -> int:
    if settings.storage.startswith("sqlite"):
        raise UserError("scaling needs a server store shared by workers: --storage postgresql://...")
    if settings.trials < 2 or settings.workers < 2:
        raise UserError("--trials and --workers must be >= 2")
    storage = store.open_storage(settings.storage)
    store.open_storage(settings.result_storage)  # an unwritable result store fails now, not at the end
    extra = ["--preset", settings.preset, "--dataset", settings.dataset]
    tag = uuid.uuid4().hex[:6]
    per_hour: dict[str, float] = {}
    for workers in (1, settings.workers):
        name = f"scaling-{tag}-w{workers}"
        wall = _timed_run(settings.storage, name, workers, settings.trials, extra)
        per_hour[str(workers)] = round(settings.trials / wall * 3600, 1)
        print(f"{workers} worker(s): {settings.trials} trials in {wall:.0f}s = "
              f"{per_hour[str(workers)]:.0f} trials/hour", flush=True)
        optuna.delete_study(study_name=name, storage=storage)
    ratio = round(per_hour[str(settings.workers)] / per_hour["1"], 3)
    attrs = {"dataset": settings.dataset, "workers": per_hour, "ratio": ratio,
             "trials": settings.trials, "preset": settings.preset,
             "storage": settings.storage.split("://")[0]}
    record_measurement(settings.result_storage, f"{settings.dataset}-scaling", schema.KIND_SCALING,
                       attrs, command=command_line(settings.argv))
    print(f"ratio {settings.workers} vs 1 worker(s): {ratio:.2f}x")
    return 0
