"""``python -m bench run --workers N``: N worker processes on one shared study.

The workers share nothing but the study in the SQL store: each is a plain ``bench run``
with its own KerasTuner project folder, its own sampler seed and a fair share of the
cores. Several machines join the same study by running the same command against the
same PostgreSQL or MySQL ``--storage``.

KerasTuner's own searchers keep their state in one oracle process (KerasTuner's
distributed mode needs a gRPC chief); they are refused here rather than run in a way
that would silently duplicate trials. SQLite is refused too: Optuna documents that
concurrent writers hit "database is locked".

Stopping: Ctrl-C or SIGTERM to the launcher is relayed to every worker as SIGINT; each
fails its running trial (so a re-run replaces it at once) and exits. Workers that do not
exit within ``bench.run.processes.STOP_GRACE_SECONDS`` are killed; a launcher killed outright takes its
workers with it (Linux).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, replace

from bench.core import backends
from bench.core.errors import UserError
from bench.run.processes import spawn_worker, stop_workers
from bench.run.runner import Prepared, RunConfig, format_summary, prepare_study
from searchers.registry import get_searcher


@dataclass(frozen=True)
class WorkersSettings:
    """``bench run --workers N``: the run's configuration (each worker runs it with
    ``--worker wI.<launch tag>``: ``RunConfig.to_argv``) and N."""

    config: RunConfig
    workers: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "WorkersSettings":
        return cls(config=RunConfig.from_args(args, args.searcher, args.seed), workers=args.workers)


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def launch_tag() -> str:
    """This launch, among every launch of the study on any machine: its workers are
    ``w1.<tag>``, ``w2.<tag>``, ... so that two launches never share a worker's project
    folder or sampler seed."""
    return f"{zlib.crc32(f'{socket.gethostname()}:{os.getpid()}:{time.time_ns()}'.encode()):08x}"


def _worker_argv(cfg: RunConfig, index: int, tag: str = "") -> list[str]:
    """The command line of worker ``index`` of a launch: the launcher's run, as one worker."""
    name = f"w{index}.{tag}" if tag else f"w{index}"
    return [sys.executable, "-m", "bench", "run", *replace(cfg, worker=name).to_argv()]


def run_workers(settings: WorkersSettings) -> int:
    cfg = settings.config
    searcher = get_searcher(cfg.searcher)
    if not searcher.parallel_workers:
        raise UserError(f"--workers needs an Optuna-backed searcher (tpe, bohb, optuna); "
                        f"KerasTuner's {cfg.searcher!r} keeps its oracle in one process")
    if cfg.storage.startswith("sqlite"):
        raise UserError("several workers cannot safely share SQLite (\"database is locked\"); "
                        "use --storage postgresql://... or mysql+pymysql://... (see README)")
    # Creates the study and its trial tickets once; holds the study's run lock shared
    # (other launches may join, a single-process run of the study is refused meanwhile).
    summary_of = prepare_study(cfg, shared_lock=True)
    try:
        return _run(settings, summary_of)
    finally:
        summary_of.lock.release()


def _run(settings: WorkersSettings, summary_of: Prepared) -> int:
    threads = threads_per_worker(settings.workers)
    env = {**os.environ, "BENCH_THREADS": str(threads),
           **backends.thread_env(settings.config.backend, threads)}
    print(f"starting {settings.workers} workers on study {summary_of.study_name!r} "
          f"({threads} thread(s) each)", flush=True)
    procs: list[subprocess.Popen] = []
    try:  # bench.cli turns SIGTERM into KeyboardInterrupt too
        tag = launch_tag()
        for i in range(settings.workers):
            procs.append(spawn_worker(_worker_argv(settings.config, i + 1, tag), env))
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        stop_workers(procs)
        raise
    print(format_summary(summary_of.refresh()))
    return 1 if any(codes) else 0
