"""``python -m bench throughput``: images/s inside a trial vs a bare ``model.fit``.

Same model (the space's default configuration), same data, same batch size, measured
alternately in one process; the first epoch of every fit (tracing, compiling) is left
out of both. The trial side runs the Optuna-backed tuner with the benchmark's tracking
(SQLite store, TensorBoard, per-epoch reports), i.e. everything a real trial pays for.

``--backend tensorflow,jax,torch`` measures the Keras backends side by side in one
invocation: a Keras process has one backend, so each round starts one process per backend
(``--repeats`` rounds, the backends in turn, so drift hits them alike) and the epochs'
times are pooled per backend.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.core import backends, schema, store
from bench.core.errors import RunError, UserError
from bench.core.measurement import command_line, record_measurement


@dataclass(frozen=True)
class ThroughputSettings:
    """``bench throughput``'s flags."""

    dataset: str = "toon"
    image_size: tuple[int, int] | None = None
    epochs: int = 3
    repeats: int = 3
    batch_size: int = 64
    storage: str = schema.DEFAULT_STORAGE
    backends: tuple[str, ...] = (backends.DEFAULT,)
    epoch_times: str | None = None  # a backend's process of a side-by-side run: times go here
    argv: tuple[str, ...] = ()  # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ThroughputSettings":
        names = tuple(n.strip() for n in (args.backend or "").split(",") if n.strip())
        if len(names) > 1:
            for name in names:
                backends.check_name(name)
            if len(set(names)) != len(names):
                raise UserError(f"--backend names one twice: {args.backend}")
        else:
            names = (backends.resolve(names[0] if names else None),)
        return cls(dataset=args.dataset, image_size=args.image_size, epochs=args.epochs,
                   repeats=args.repeats, batch_size=args.batch_size, storage=args.storage,
                   backends=names, epoch_times=args.epoch_times, argv=tuple(args.argv))


def _bare_epoch_seconds(data, build, epochs: int, batch_size: int) -> list[float]:
    import keras
    import keras_tuner

    keras.backend.clear_session()
    gc.collect()  # the same clean start KerasTuner gives every trial's build
    model = build(keras_tuner.HyperParameters())
    stamps: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: stamps.append(time.perf_counter()),
        on_epoch_end=lambda e, logs: stamps.append(time.perf_counter()))
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
              epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    return [stamps[i + 1] - stamps[i] for i in range(0, len(stamps), 2)][1:]


def _trial_epoch_seconds(data, build, epochs: int, batch_size: int, workdir: Path,
                         repeat: int) -> list[float]:
    import keras_tuner

    from bench.run.budget import Budget
    from bench.run.tblog import HParamsLogger
    from bench.run.tracking import TrialTracker, tracked
    from models import space_hyperparameters
    from searchers.optuna_tuner import OptunaSearch

    stamps: list[float] = []

    class Timed(tracked(OptunaSearch)):  # type: ignore[misc]  # a class built at run time
        def on_epoch_begin(self, trial, model, epoch, logs=None):
            stamps.append(time.perf_counter())
            super().on_epoch_begin(trial, model, epoch, logs)

        def on_epoch_end(self, trial, model, epoch, logs=None):
            super().on_epoch_end(trial, model, epoch, logs)
            stamps.append(time.perf_counter())

    storage = store.open_storage(f"sqlite:///{workdir / 'throughput.db'}")
    study = store.create_study(storage, f"t{repeat}", load_if_exists=False)
    tb = HParamsLogger(workdir / f"tb{repeat}", space_hyperparameters())
    tracker = TrialTracker(study, Budget(10**6), label="throughput", seed=0, dataset=data.name,
                           tb=tb, printer=lambda line: None)
    fixed = keras_tuner.HyperParameters()
    for hp in space_hyperparameters().space:  # every value at its default: the bare model
        fixed.Fixed(hp.name, hp.default)
    tuner = Timed(hypermodel=build, objective="val_loss", max_trials=1, study=study,
                  directory=str(workdir / "kt"), project_name=f"p{repeat}", tracker=tracker,
                  hyperparameters=fixed, tune_new_entries=False)
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 epochs=epochs, batch_size=batch_size, verbose=0)
    tb.close()
    return [stamps[i + 1] - stamps[i] for i in range(0, len(stamps), 2)][1:]


def _measure(settings: ThroughputSettings) -> tuple[Any, dict[str, list[float]]]:
    """The data set and the epochs' seconds, bare and in a trial, on this process's backend."""
    from bench.data.datasets import load_dataset
    from models import make_build_model

    data = load_dataset(settings.dataset, image_size=settings.image_size)
    build = make_build_model(data.input_shape, data.num_classes)
    times: dict[str, list[float]] = {"bare": [], "trial": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(settings.repeats):  # alternate, so drift hits both sides alike
            times["bare"] += _bare_epoch_seconds(data, build, settings.epochs, settings.batch_size)
            times["trial"] += _trial_epoch_seconds(data, build, settings.epochs,
                                                   settings.batch_size, Path(tmp), r)
    return data, times


def _figures(n: int, times: dict[str, list[float]]) -> dict[str, float]:
    bare_ips = n / statistics.median(times["bare"])
    trial_ips = n / statistics.median(times["trial"])
    return {"bare_images_per_s": round(bare_ips, 1), "trial_images_per_s": round(trial_ips, 1),
            "ratio": round(trial_ips / bare_ips, 4)}


def run_throughput(settings: ThroughputSettings) -> int:
    if settings.epochs < 2 or settings.repeats < 1 or settings.batch_size < 1:
        raise UserError("--epochs must be >= 2, --repeats and --batch-size >= 1")
    if len(settings.backends) > 1:
        return _side_by_side(settings)
    backend = backends.select(settings.backends[0])
    if settings.epoch_times:  # one backend's share of a side-by-side run
        data, times = _measure(settings)
        Path(settings.epoch_times).write_text(json.dumps({"train_images": len(data.y_train), **times}))
        return 0
    storage = store.open_storage(settings.storage)  # checked before anything trains
    data, times = _measure(settings)
    n = len(data.y_train)
    figures = _figures(n, times)
    on = backends.name_tag(backend)
    record_measurement(storage, f"{data.name}-throughput{'-' + on if on else ''}", schema.KIND_THROUGHPUT, {
        "dataset": data.name, "image_size": list(data.input_shape[:2]),
        "batch_size": settings.batch_size, "epochs": settings.epochs,
        "repeats": settings.repeats, "train_images": n, "keras_backend": backend, **figures,
    }, command=command_line(settings.argv))
    print(f"{backend}: bare model.fit: {figures['bare_images_per_s']:.0f} images/s | inside a "
          f"trial: {figures['trial_images_per_s']:.0f} images/s | ratio {figures['ratio']:.3f} "
          "(target >= 0.95)")
    return 0


def _side_by_side(settings: ThroughputSettings) -> int:
    """Each backend in its own process, round by round; one record with a row per backend."""
    for name in settings.backends:
        backends.check_installed(name)
    storage = store.open_storage(settings.storage)  # checked before any process starts
    from bench.data.datasets import load_dataset
    data = load_dataset(settings.dataset, image_size=settings.image_size)
    pooled: dict[str, dict[str, list[float]]] = {name: {"bare": [], "trial": []}
                                                 for name in settings.backends}
    n = len(data.y_train)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(settings.repeats):
            for name in settings.backends:
                out = Path(tmp) / f"{name}-{r}.json"
                one = replace(settings, backends=(name,), repeats=1, epoch_times=str(out))
                _run_backend(one, name)
                got = json.loads(out.read_text())
                n = got["train_images"]
                for side in ("bare", "trial"):
                    pooled[name][side] += got[side]
            print(f"round {r + 1}/{settings.repeats} done", flush=True)
    rows = {name: _figures(n, times) for name, times in pooled.items()}
    reference_name = backends.DEFAULT if backends.DEFAULT in rows else next(iter(rows))
    reference = rows[reference_name]
    for figures in rows.values():
        figures["vs_reference"] = round(figures["trial_images_per_s"]
                                        / reference["trial_images_per_s"], 3)
    record_measurement(storage, f"{data.name}-throughput-backends", schema.KIND_BACKEND_THROUGHPUT, {
        "dataset": data.name, "image_size": list(data.input_shape[:2]),
        "batch_size": settings.batch_size, "epochs": settings.epochs,
        "repeats": settings.repeats, "train_images": n, "backends": rows,
    }, command=command_line(settings.argv))
    for name, figures in rows.items():
        print(f"{name:>10}: bare model.fit {figures['bare_images_per_s']:.0f} images/s | in a "
              f"trial {figures['trial_images_per_s']:.0f} images/s | {figures['vs_reference']:.2f}x "
              f"{reference_name}'s")
    return 0


def _run_backend(settings: ThroughputSettings, name: str) -> None:
    argv = [sys.executable, "-m", "bench", "throughput", "--backend", name,
            "--dataset", settings.dataset, "--epochs", str(settings.epochs), "--repeats", "1",
            "--batch-size", str(settings.batch_size), "--epoch-times", str(settings.epoch_times)]
    if settings.image_size:
        argv += ["--image-size", "x".join(map(str, settings.image_size))]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RunError(f"throughput on {name} failed (exit {proc.returncode}): {last}")
