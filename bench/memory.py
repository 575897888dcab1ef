"""``python -m bench memory``: does memory stay flat over many trials in one process?

Runs an Optuna-backed search of many 1-epoch trials on small images (its own temporary
store, so the benchmark store only receives the measurement) and samples the process's
resident memory after every trial.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import psutil

from bench import schema, store
from bench.errors import UserError


def run_memory(args: argparse.Namespace) -> int:
    if args.trials < 2:
        raise UserError("--trials must be >= 2")
    main_storage = store.open_storage(args.storage)

    proc = psutil.Process()
    rss: list[float] = []
    from bench.runner import machine, versions

    def sample(line: str) -> None:
        if " trial " in line:
            rss.append(round(proc.memory_info().rss / 2**20, 1))
            if len(rss) % 10 == 0:
                print(f"{len(rss)} trials: RSS {rss[-1]:.0f} MiB", flush=True)

    if args.bare:
        _bare_loop(args, sample)
    else:
        _search(args, sample)
    tenth = max(1, len(rss) // 10)
    early, late = sum(rss[:tenth]) / tenth, sum(rss[-tenth:]) / tenth
    result = {
        "kind": schema.KIND_MEMORY, "dataset": args.dataset, "trials": len(rss),
        "loop": "bare build+fit (keras clear_session + gc)" if args.bare else "tpe search",
        "rss_mb": rss, "peak_rss_mb": max(rss), "first_tenth_mean_mb": round(early, 1),
        "last_tenth_mean_mb": round(late, 1),
        "growth_mb_per_100_trials": round((late - early) / max(1, len(rss) - tenth) * 100, 1),
        "command": "python -m bench " + shlex.join(getattr(args, "_argv", sys.argv[1:])),
        "machine": machine(), "versions": versions(),
    }
    meta = store.create_study(main_storage,
                              f"{args.dataset}-memory" + ("-bare" if args.bare else ""))
    meta.set_user_attr(schema.STUDY_BENCH, result)
    print(f"{len(rss)} trials: peak RSS {max(rss):.0f} MiB, mean of first tenth {early:.0f} MiB, "
          f"last tenth {late:.0f} MiB")
    return 0


def _search(args: argparse.Namespace, sample) -> None:
    """Many 1-epoch trials of the Optuna-backed tuner, in a throwaway store."""
    from bench.runner import RunConfig, run_search

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(searcher="tpe", preset="quick", max_trials=args.trials,
                        epochs_per_trial=1, budget_epochs=10**6, dataset=args.dataset,
                        storage=f"sqlite:///{Path(tmp) / 'memory.db'}",
                        logdir=str(Path(tmp) / "runs"), study="memory")
        run_search(cfg, printer=sample)


def _bare_loop(args: argparse.Namespace, sample) -> None:
    """The same models built and fitted in a plain loop: what Keras itself keeps per model."""
    import gc

    import keras
    import keras_tuner

    from bench.data import load_dataset
    from models import make_build_model

    data = load_dataset(args.dataset, image_size=(48, 16) if args.dataset != "digits" else None)
    build = make_build_model(data.input_shape, data.num_classes)
    for i in range(args.trials):
        keras.backend.clear_session()
        gc.collect()
        build(keras_tuner.HyperParameters()).fit(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=1,
            batch_size=64, verbose=0)
        sample(f"bare trial {i}")
