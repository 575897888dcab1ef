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
exit within ``STOP_GRACE_SECONDS`` are killed; a launcher killed outright takes its
workers with it (Linux).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.errors import UserError
from bench.runner import Prepared, RunConfig, format_summary, prepare_study
from searchers.registry import get_searcher

# How long interrupted workers get to fail their running trials before SIGKILL.
STOP_GRACE_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class WorkersSettings:
    """``bench run --workers N``: the run's configuration, N, and the command line each
    worker re-runs (without ``--workers``, with ``--worker wI``)."""

    config: RunConfig
    workers: int
    argv: tuple[str, ...]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "WorkersSettings":
        from bench.cli import run_config
        return cls(config=run_config(args, args.searcher, args.seed), workers=args.workers,
                   argv=tuple(args.argv))


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def launch_tag() -> str:
    """This launch, among every launch of the study on any machine: its workers are
    ``w1.<tag>``, ``w2.<tag>``, ... so that two launches never share a worker's project
    folder or sampler seed."""
    return f"{zlib.crc32(f'{socket.gethostname()}:{os.getpid()}:{time.time_ns()}'.encode()):08x}"


def _worker_argv(argv: Sequence[str], index: int, tag: str = "") -> list[str]:
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
    return [sys.executable, "-m", "bench", *out, "--worker", f"w{index}.{tag}" if tag else f"w{index}"]


def _child_setup() -> Callable[[], None]:
    """What each worker does between fork and exec (Linux; best effort elsewhere).

    SIGINT back to its default, so that Python turns it into KeyboardInterrupt even when
    the launcher inherited it ignored (``cmd &`` in a script); and SIGINT when the
    launcher dies, even by SIGKILL (prctl PR_SET_PDEATHSIG), so no worker is orphaned.
    libc is looked up here, in the launcher: the child between fork and exec only calls.
    """
    prctl: Any = None
    if sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None
    launcher = os.getpid()

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)
            if os.getppid() != launcher:  # it died before prctl took effect
                os.kill(os.getpid(), signal.SIGINT)
    return setup


def spawn_worker(argv: list[str], env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start one worker in its own process group: the launcher alone relays Ctrl-C to it,
    once (a terminal would signal the whole group, then the launcher again). ``pass_fds``:
    descriptors it inherits (a run lock that must outlive the launcher while it runs)."""
    return subprocess.Popen(argv, env=env, process_group=0, preexec_fn=_child_setup(),
                            pass_fds=pass_fds)


def _descendants(procs: list[subprocess.Popen]) -> list[Any]:
    """Every process below the workers (their trial processes, in process groups of their
    own, which a signal to a worker's group does not reach)."""
    import psutil
    found = []
    for p in procs:
        try:
            found += psutil.Process(p.pid).children(recursive=True)
        except psutil.Error:
            pass
    return found


def stop_workers(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGINT every worker (each fails its running trial and exits), wait up to ``grace``
    seconds, then SIGKILL what is left, the workers' own children included; at once on a
    second interrupt. Returns only when every one of them is gone."""
    import psutil
    below = _descendants(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    try:
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        below += _descendants(procs)  # started meanwhile
        psutil.wait_procs(below, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for child in below:
            try:
                child.kill()
            except psutil.Error:
                pass  # gone already
        psutil.wait_procs(below, timeout=10)


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
    env = {**os.environ, "BENCH_THREADS": str(threads)}
    print(f"starting {settings.workers} workers on study {summary_of.study_name!r} "
          f"({threads} thread(s) each)", flush=True)
    procs: list[subprocess.Popen] = []
    try:  # bench.cli turns SIGTERM into KeyboardInterrupt too
        tag = launch_tag()
        for i in range(settings.workers):
            procs.append(spawn_worker(_worker_argv(settings.argv, i + 1, tag), env))
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        stop_workers(procs)
        raise
    print(format_summary(summary_of.refresh()))
    return 1 if any(codes) else 0
