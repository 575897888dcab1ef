"""Trials run in a child process that is replaced every N trials.

Why: Keras and TensorFlow keep a few MiB per built model for the life of the process
(`python -m bench memory --bare` measures it), so a long search in one process grows
until the OOM killer ends it. A fresh process every ``--trials-per-process`` trials keeps
memory flat, and resume is exact (KerasTuner's project and the Optuna study hold every
decision), so the next process continues where the last one stopped.

It also isolates crashes: when the trial process dies (SIGKILL, the OOM killer, a
segfault in native code), this launcher fails the trial it was running with the reason,
counts the epochs it reported, and starts a new process with the next trial; the dead
trial is not retried (``drop_crashed_retries``), so a configuration that kills its process
costs one trial, not the run.

The launcher itself holds the study's run lock and never imports TensorFlow.
"""
from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.core.errors import Reported, RunError
from bench.run.dead_trials import fail_dead_trials
from bench.run.runner import Prepared, RunConfig, RunSummary, prepare_study

# A trial process that stopped at its trial cap exits with this (EX_TEMPFAIL): "more to do".
EXIT_MORE = 75
# Chosen by measurement (RESULTS.md, "Memory"): a process start costs about 5 s of
# TensorFlow import and set-up, paid once per this many trials, while memory grows a few
# MiB per trial inside one process.
DEFAULT_TRIALS_PER_PROCESS = 20
# Processes that die this many times in a row without finishing a trial end the run.
MAX_CONSECUTIVE_CRASHES = 3

_HINTS = {signal.SIGKILL: "killed: out of memory, or by a user or scheduler",
          signal.SIGSEGV: "a crash in native code", signal.SIGABRT: "aborted in native code",
          signal.SIGBUS: "a crash in native code"}


def trials_per_process(cfg: RunConfig) -> int:
    """The run's ``--trials-per-process`` (0: trials run in the calling process)."""
    return DEFAULT_TRIALS_PER_PROCESS if cfg.trials_per_process is None else cfg.trials_per_process


def run_supervised(cfg: RunConfig, trials_per_process: int) -> RunSummary:
    """Run (or resume) one search in trial processes of ``trials_per_process`` trials."""
    if cfg.build_model_factory is not None:
        raise ValueError("a build_model_factory cannot cross into a trial process")
    p = prepare_study(cfg)
    try:
        if p.finished:
            return p.refresh()
        return _supervise(p, trials_per_process)
    finally:
        p.lock.release()


def _supervise(p: Prepared, per_process: int) -> RunSummary:
    from bench.run.processes import spawn_worker, stop_workers
    from bench.run.tracking import ProgressPrinter

    cfg = p.cfg
    progress = ProgressPrinter()
    started = time.monotonic()
    deadline = started + cfg.timeout if cfg.timeout else None
    index = crashes = 0
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        finished_before = _finished(p.study)
        argv = [sys.executable, "-m", "bench", "run",
                *replace(cfg, study=p.study_name, timeout=left).to_argv(),
                "--trial-process", f"{per_process}:{index}"]
        # Its own process group: Ctrl-C is relayed once, by us. An SQLite run lock's
        # descriptor goes with it: the study stays locked while either process lives.
        child = spawn_worker(argv, pass_fds=_lock_fds(p))
        try:
            code = child.wait()
        except KeyboardInterrupt:
            stop_workers([child])  # it fails its running trial, then exits
            raise
        index += 1
        if code == EXIT_MORE:
            crashes = 0
            continue
        if code == 0:
            break
        if code == 130 or code == -signal.SIGINT:
            raise KeyboardInterrupt
        if code > 0:
            raise Reported(code)  # a user or run error the trial process already printed
        reason = _death_reason(-code)
        failed = fail_dead_trials(p.study, crashed=reason, only_ids=_ongoing_ids(p))
        crashes = 0 if _finished(p.study) - failed > finished_before else crashes + 1
        progress.note(p.label, cfg.seed, cfg.worker,
                      f"the trial process ({child.pid}) died: {reason}; {failed} trial(s) "
                      "marked FAIL, going on with the next trial")
        if crashes >= MAX_CONSECUTIVE_CRASHES:
            raise RunError(f"the trial process died {crashes} times in a row without "
                           f"finishing a trial (last: {reason})")
    return p.refresh(time.monotonic() - started)


def _lock_fds(p: Prepared) -> tuple[int, ...]:
    fd = getattr(p.lock, "fd", -1)
    return (fd,) if isinstance(fd, int) and fd >= 0 else ()


def _death_reason(signum: int) -> str:
    try:
        sig = signal.Signals(signum)
    except ValueError:
        return f"the process running this trial died by signal {signum}"
    hint = _HINTS.get(sig)
    return f"the process running this trial died by {sig.name}" + (f" ({hint})" if hint else "")


def _finished(study: Any) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _ongoing_ids(p: Prepared) -> set[int] | None:
    """The storage ids of the trials the dead process ran: all RUNNING trials of a study
    this launcher holds alone (None), or a worker's own, from its KerasTuner project."""
    if not p.cfg.worker:
        return None
    path = p.run_dir / "kt" / f"worker-{p.cfg.worker}" / "oracle.json"
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return set()  # nothing recorded yet: its heartbeat going stale fails it
    ids = state.get("optuna_trial_ids", {})
    return {ids[kt_id] for kt_id in state.get("ongoing_trials", {}).values() if kt_id in ids}
