"""``python -m bench scaling``: trials per hour with 1 and with N workers, same budget.

Both runs use the same searcher, trial count and data on a shared server store
(PostgreSQL or MySQL: SQLite cannot take several writers), each in a fresh study, and
are timed end to end as a user would see them (process start-up included).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
import uuid

import optuna

from bench import schema, store
from bench.errors import RunError, UserError


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


def run_scaling(args: argparse.Namespace) -> int:
    if args.storage.startswith("sqlite"):
        raise UserError("scaling needs a server store shared by workers: --storage postgresql://...")
    if args.trials < 2 or args.workers < 2:
        raise UserError("--trials and --workers must be >= 2")
    storage = store.open_storage(args.storage)
    store.open_storage(args.result_storage)  # an unwritable result store fails now, not at the end
    extra = ["--preset", args.preset, "--dataset", args.dataset]
    tag = uuid.uuid4().hex[:6]
    per_hour: dict[str, float] = {}
    for workers in (1, args.workers):
        name = f"scaling-{tag}-w{workers}"
        wall = _timed_run(args.storage, name, workers, args.trials, extra)
        per_hour[str(workers)] = round(args.trials / wall * 3600, 1)
        print(f"{workers} worker(s): {args.trials} trials in {wall:.0f}s = "
              f"{per_hour[str(workers)]:.0f} trials/hour", flush=True)
        optuna.delete_study(study_name=name, storage=storage)
    from bench.provenance import machine, versions
    ratio = round(per_hour[str(args.workers)] / per_hour["1"], 3)
    meta = store.create_study(store.open_storage(args.result_storage), f"{args.dataset}-scaling")
    meta.set_user_attr(schema.STUDY_BENCH, {
        "kind": schema.KIND_SCALING, "dataset": args.dataset, "workers": per_hour,
        "ratio": ratio, "trials": args.trials, "preset": args.preset,
        "command": "python -m bench " + shlex.join(getattr(args, "_argv", sys.argv[1:])),
        "machine": machine(), "versions": versions(), "storage": args.storage.split("://")[0]})
    print(f"ratio {args.workers} vs 1 worker(s): {ratio:.2f}x")
    return 0
