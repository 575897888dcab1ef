"""``python -m bench memory``: does resident memory stay flat over hundreds of trials?

Each searcher runs a search of many 1-epoch trials on small images as a real ``bench run``
(its own process, a throwaway store and logdir, so the benchmark store only receives the
measurement), with ``--trials-per-process N`` (0: every trial in one process, as before
trial processes existed). The figures come from the store, not from printed text: each
trial records the pid and resident memory of the process that ran it (``schema.T_PROCESS``);
a sampler thread adds the peak RSS of the processes that run trials, and the folder the
run wrote gives the disk used per 100 trials.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.core import schema, store
from bench.core.errors import Reported, RunError, UserError
from bench.core.measurement import command_line, record_measurement

WINDOW = 20  # trials at each end of the run that are compared


@dataclass(frozen=True)
class MemorySettings:
    """``bench memory``'s flags."""

    searchers: tuple[str, ...] = ("random", "hyperband", "bayesian", "tpe", "bohb")
    trials: int = 300
    trials_per_process: int | None = None  # None: the supervisor's default
    dataset: str = "toon"
    storage: str = schema.DEFAULT_STORAGE
    bare: bool = False                     # a plain build+fit loop instead of searches
    argv: tuple[str, ...] = ()             # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "MemorySettings":
        return cls(searchers=tuple(s.strip() for s in args.searchers.split(",") if s.strip()),
                   trials=args.trials, trials_per_process=args.trials_per_process,
                   dataset=args.dataset, storage=args.storage, bare=args.bare,
                   argv=tuple(args.argv))


def run_memory(settings: MemorySettings) -> int:
    if settings.trials < 2:
        raise UserError("--trials must be >= 2")
    main_storage = store.open_storage(settings.storage)
    command = command_line(settings.argv)
    if settings.bare:
        result = _bare(settings)
        name = f"{settings.dataset}-memory-bare"
    else:
        from bench.run.supervisor import DEFAULT_TRIALS_PER_PROCESS
        per_process = (DEFAULT_TRIALS_PER_PROCESS if settings.trials_per_process is None
                       else settings.trials_per_process)
        from searchers.registry import get_searcher
        for s in settings.searchers:
            get_searcher(s)  # unknown names fail before any work
        with tempfile.TemporaryDirectory() as tmp:
            rows = {s: _measure(s, settings, per_process, Path(tmp)) for s in settings.searchers}
        for row in rows.values():
            row["command"] = command  # rows of one record may come from several runs
        result = {"loop": "bench run", "trials_per_process": per_process, "searchers": rows}
        name = f"{settings.dataset}-memory-p{per_process}"
        for s, row in rows.items():
            print(f"{s}: RSS at trial {row['window']} {row['rss_at_window_mb']:.0f} MiB, at trial "
                  f"{row['trials']} {row['rss_at_last_mb']:.0f} MiB (growth "
                  f"{row['growth_mb']:+.0f} MiB); peak of the trial processes "
                  f"{row['peak_trial_process_mb']:.0f} MiB; {row['processes']} process(es); "
                  f"disk {row['disk_mb_per_100_trials']:.1f} MiB per 100 trials"
                  + (f"; a new trial process costs {row['replacement_seconds']:.1f} s"
                     if "replacement_seconds" in row else ""), flush=True)
    record_measurement(main_storage, name, schema.KIND_MEMORY,
                       {"dataset": settings.dataset, "trials": settings.trials, **result},
                       command=command, merge=_keep_other_searchers)
    return 0


def _keep_other_searchers(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Re-measuring some searchers (same trial count) keeps the other searchers' rows."""
    if ("searchers" in new and isinstance(old.get("searchers"), dict)
            and old.get("trials") == new["trials"]):
        return {**new, "searchers": {**old["searchers"], **new["searchers"]}}
    return new


class _PeakSampler(threading.Thread):
    """Samples the resident memory of a process and of each of its descendants."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = psutil.Process(pid), interval
        self.peak_root = self.peak_child = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.peak_root = max(self.peak_root, self.root.memory_info().rss / 2**20)
                for child in self.root.children(recursive=True):
                    self.peak_child = max(self.peak_child, child.memory_info().rss / 2**20)
            except psutil.Error:
                continue  # a process ended between listing and reading it

    def stop(self) -> None:
        self._done.set()
        self.join()


def _measure(searcher: str, settings: MemorySettings, per_process: int,
             tmp: Path) -> dict[str, Any]:
    study, storage, logdir = f"memory-{searcher}", f"sqlite:///{tmp / 'memory.db'}", tmp / "runs"
    argv = [sys.executable, "-m", "bench", "run", "--searcher", searcher, "--preset", "quick",
            "--epochs-per-trial", "1", "--budget-epochs", str(10**6),
            "--max-trials", str(settings.trials), "--dataset", settings.dataset, "--storage", storage,
            "--study", study, "--logdir", str(logdir), "--trials-per-process", str(per_process)]
    started = time.monotonic()
    with open(tmp / f"{searcher}.log", "w") as log:  # one line per trial: kept out of sight
        proc = subprocess.Popen(argv, stdout=log)
    sampler = _PeakSampler(proc.pid)
    sampler.start()
    try:
        while (code := _wait(proc, 30.0)) is None:
            # counted in the store, where each trial process records its trials
            done = sum(t.state.is_finished() for t in _trials(storage, study, started=True))
            print(f"{searcher}: {done}/{settings.trials} trials", flush=True)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    finally:
        sampler.stop()
    if code:
        raise Reported(code)
    trials = _trials(storage, study)
    rss = [t.user_attrs[schema.T_PROCESS]["rss_mb"] for t in trials
           if schema.T_PROCESS in t.user_attrs]
    pids = [t.user_attrs[schema.T_PROCESS]["pid"] for t in trials if schema.T_PROCESS in t.user_attrs]
    run_dir = logdir / study
    disk = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file())
    checkpoints = sum(f.stat().st_size for f in run_dir.rglob("*.weights.h5"))
    n = len(rss)
    w = min(WINDOW, n // 2) or 1  # trials compared at each end (20 in a real measurement)
    return {
        "trials": n, "rss_mb": rss,
        "window": w, "rss_at_window_mb": rss[w - 1], "rss_at_last_mb": rss[-1],
        "first_window_mean_mb": round(statistics.fmean(rss[:w]), 1),
        "last_window_mean_mb": round(statistics.fmean(rss[-w:]), 1),
        "growth_mb": round(statistics.fmean(rss[-w:]) - statistics.fmean(rss[:w]), 1),
        # the sampler polls; a trial's own record at its end may be higher than any poll
        "peak_trial_process_mb": round(max(sampler.peak_child if per_process else sampler.peak_root,
                                           max(rss, default=0.0)), 1),
        "peak_launcher_mb": round(sampler.peak_root, 1) if per_process else None,
        "processes": len(set(pids)),
        "disk_mb_per_100_trials": round(disk / 2**20 / n * 100, 2),
        "checkpoint_mb_per_100_trials": round(checkpoints / 2**20 / n * 100, 2),
        "wall_seconds": round(time.monotonic() - started, 1),
        **_replacement_seconds(trials),
    }


def _replacement_seconds(trials: list[Any]) -> dict[str, Any]:
    """What replacing the trial process costs: the pause between two trials run by
    different processes, less the usual pause between trials of one process (medians)."""
    new: list[float] = []
    same: list[float] = []
    for prev, nxt in zip(trials, trials[1:]):
        a, b = prev.user_attrs.get(schema.T_PROCESS), nxt.user_attrs.get(schema.T_PROCESS)
        if not (a and b and prev.datetime_complete and nxt.datetime_start):
            continue
        gap = (nxt.datetime_start - prev.datetime_complete).total_seconds()
        (same if a["pid"] == b["pid"] else new).append(gap)
    if not (new and same):
        return {}
    return {"replacement_seconds": round(statistics.median(new) - statistics.median(same), 2),
            "pause_between_trials_seconds": round(statistics.median(same), 3)}


def _wait(proc: subprocess.Popen, seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def _trials(url: str, study: str, *, started: bool = False) -> list[Any]:
    """The study's trials by number; ``started``: the run may still be creating its store
    (no file, or no study yet), which is no trials yet, not an error."""
    import optuna
    try:
        rdb = store.open_storage(url, must_exist=True, read_only=True, heartbeat=False)
        found = optuna.load_study(study_name=study, storage=rdb)
    except KeyError:
        return []
    except (UserError, RunError):
        if started:
            return []
        raise
    return sorted(found.get_trials(deepcopy=False), key=lambda t: t.number)


def _bare(settings: MemorySettings) -> dict[str, Any]:
    """The same models built and fitted in a plain loop: what Keras itself keeps per model."""
    import gc

    import keras
    import keras_tuner

    from bench.data.datasets import load_dataset
    from models import make_build_model

    data = load_dataset(settings.dataset,
                        image_size=(48, 16) if settings.dataset != "digits" else None)
    build = make_build_model(data.input_shape, data.num_classes)
    proc = psutil.Process()
    rss: list[float] = []
    for i in range(settings.trials):
        keras.backend.clear_session()
        gc.collect()
        build(keras_tuner.HyperParameters()).fit(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=1,
            batch_size=64, verbose=0)
        rss.append(round(proc.memory_info().rss / 2**20, 1))
        if (i + 1) % 10 == 0:
            print(f"bare loop: {i + 1} models, RSS {rss[-1]:.0f} MiB", flush=True)
    w = min(WINDOW, len(rss) // 2) or 1
    return {"loop": "bare build+fit (keras clear_session + gc)", "rss_mb": rss,
            "first_window_mean_mb": round(statistics.fmean(rss[:w]), 1),
            "last_window_mean_mb": round(statistics.fmean(rss[-w:]), 1),
            "growth_mb": round(statistics.fmean(rss[-w:]) - statistics.fmean(rss[:w]), 1),
            "peak_rss_mb": max(rss)}
