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
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import schema, store
from bench.errors import Reported, UserError

WINDOW = 20  # trials at each end of the run that are compared


def run_memory(args: argparse.Namespace) -> int:
    if args.trials < 2:
        raise UserError("--trials must be >= 2")
    main_storage = store.open_storage(args.storage)
    from bench.provenance import machine, versions

    command = "python -m bench " + shlex.join(getattr(args, "_argv", sys.argv[1:]))
    if args.bare:
        result = _bare(args)
        name = f"{args.dataset}-memory-bare"
    else:
        from bench.supervisor import DEFAULT_TRIALS_PER_PROCESS
        per_process = (DEFAULT_TRIALS_PER_PROCESS if args.trials_per_process is None
                       else args.trials_per_process)
        searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
        from searchers.registry import get_searcher
        for s in searchers:
            get_searcher(s)  # unknown names fail before any work
        with tempfile.TemporaryDirectory() as tmp:
            rows = {s: _measure(s, args, per_process, Path(tmp)) for s in searchers}
        result = {"loop": "bench run", "trials_per_process": per_process, "searchers": rows}
        name = f"{args.dataset}-memory-p{per_process}"
        for s, row in rows.items():
            print(f"{s}: RSS at trial {row['window']} {row['rss_at_window_mb']:.0f} MiB, at trial "
                  f"{row['trials']} {row['rss_at_last_mb']:.0f} MiB (growth "
                  f"{row['growth_mb']:+.0f} MiB); peak of the trial processes "
                  f"{row['peak_trial_process_mb']:.0f} MiB; {row['processes']} process(es); "
                  f"disk {row['disk_mb_per_100_trials']:.1f} MiB per 100 trials"
                  + (f"; a new trial process costs {row['replacement_seconds']:.1f} s"
                     if "replacement_seconds" in row else ""), flush=True)
    meta = store.create_study(main_storage, name)
    old = meta.user_attrs.get(schema.STUDY_BENCH, {})
    if "searchers" in result:
        for row in result["searchers"].values():
            row["command"] = command  # rows of one record may come from several runs
        if isinstance(old.get("searchers"), dict) and old.get("trials") == args.trials:
            # re-measuring some searchers keeps the others' rows
            result["searchers"] = {**old["searchers"], **result["searchers"]}
    meta.set_user_attr(schema.STUDY_BENCH, {
        "kind": schema.KIND_MEMORY, "dataset": args.dataset, "trials": args.trials,
        **result, "command": command, "machine": machine(), "versions": versions()})
    return 0


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


def _measure(searcher: str, args: argparse.Namespace, per_process: int, tmp: Path) -> dict[str, Any]:
    study, storage, logdir = f"memory-{searcher}", f"sqlite:///{tmp / 'memory.db'}", tmp / "runs"
    argv = [sys.executable, "-m", "bench", "run", "--searcher", searcher, "--preset", "quick",
            "--epochs-per-trial", "1", "--budget-epochs", str(10**6),
            "--max-trials", str(args.trials), "--dataset", args.dataset, "--storage", storage,
            "--study", study, "--logdir", str(logdir), "--trials-per-process", str(per_process)]
    started = time.monotonic()
    with open(tmp / f"{searcher}.log", "w") as log:  # one line per trial: kept out of sight
        proc = subprocess.Popen(argv, stdout=log)
    sampler = _PeakSampler(proc.pid)
    sampler.start()
    try:
        while (code := _wait(proc, 30.0)) is None:
            done = sum(t.state.is_finished() for t in _trials(storage, study)) \
                if (tmp / "memory.db").exists() else 0  # tickets (WAITING) are not done
            print(f"{searcher}: {done}/{args.trials} trials", flush=True)
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


def _trials(storage: str, study: str) -> list[Any]:
    import optuna
    try:
        found = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        return []
    return sorted(found.get_trials(deepcopy=False), key=lambda t: t.number)


def _bare(args: argparse.Namespace) -> dict[str, Any]:
    """The same models built and fitted in a plain loop: what Keras itself keeps per model."""
    import gc

    import keras
    import keras_tuner

    from bench.data import load_dataset
    from models import make_build_model

    data = load_dataset(args.dataset, image_size=(48, 16) if args.dataset != "digits" else None)
    build = make_build_model(data.input_shape, data.num_classes)
    proc = psutil.Process()
    rss: list[float] = []
    for i in range(args.trials):
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
