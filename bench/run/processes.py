"""Child processes of a command: started in their own process group (the launcher alone
relays Ctrl-C, once), killed with their launcher (Linux), stopped together with what runs
below them. Workers (``bench.run.workers``) and trial processes (``bench.run.supervisor``)
both start this way."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

# How long interrupted workers get to fail their running trials before SIGKILL.
STOP_GRACE_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
