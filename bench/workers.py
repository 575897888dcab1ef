"""``python -m bench run --workers N``: N worker processes on one shared study.

The workers share nothing but the study in the SQL store: each is a plain ``bench run``
with its own KerasTuner project folder, its own sampler seed and a fair share of the
cores. Several machines join the same study by running the same command against the
same PostgreSQL or MySQL ``--storage``.

KerasTuner's own searchers keep their state in one oracle process (KerasTuner's
distributed mode needs a gRPC chief); they are refused here rather than run in a way
that would silently duplicate trials. SQLite is refused too: Optuna documents that
concurrent writers hit "database is locked".
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from bench.errors import UserError
from bench.runner import RunConfig, format_summary, prepare_study
from searchers.registry import get_searcher


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _worker_argv(argv: list[str], index: int) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [sys.executable, "-m", "bench", *out, "--worker", f"w{index}"]


def run_workers(args: argparse.Namespace, cfg: RunConfig) -> int:
    searcher = get_searcher(cfg.searcher)
    if not searcher.parallel_workers:
        raise UserError(f"--workers needs an Optuna-backed searcher (tpe, bohb, optuna); "
                        f"KerasTuner's {cfg.searcher!r} keeps its oracle in one process")
    if cfg.storage.startswith("sqlite"):
        raise UserError("several workers cannot safely share SQLite (\"database is locked\"); "
                        "use --storage postgresql://... or mysql+pymysql://... (see README)")
    summary_of = prepare_study(cfg)  # creates the study and its trial tickets once
    threads = threads_per_worker(args.workers)
    env = {**os.environ, "BENCH_THREADS": str(threads)}
    print(f"starting {args.workers} workers on study {summary_of.study_name!r} "
          f"({threads} thread(s) each)", flush=True)
    procs = [subprocess.Popen(_worker_argv(args._argv, i + 1), env=env)
             for i in range(args.workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    print(format_summary(summary_of.refresh()))
    return 1 if any(codes) else 0
