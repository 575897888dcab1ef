"""``python -m bench throughput``: images/s inside a trial vs a bare ``model.fit``.

Same model (the space's default configuration), same data, same batch size, measured
alternately in one process; the first epoch of every fit (tf.function tracing) is left
out of both. The trial side runs the Optuna-backed tuner with the benchmark's tracking
(SQLite store, TensorBoard, per-epoch reports), i.e. everything a real trial pays for.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core import schema, store
from bench.core.errors import UserError
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
    argv: tuple[str, ...] = ()  # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ThroughputSettings":
        return cls(dataset=args.dataset, image_size=args.image_size, epochs=args.epochs,
                   repeats=args.repeats, batch_size=args.batch_size, storage=args.storage,
                   argv=tuple(args.argv))


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


def run_throughput(settings: ThroughputSettings) -> int:
    if settings.epochs < 2 or settings.repeats < 1 or settings.batch_size < 1:
        raise UserError("--epochs must be >= 2, --repeats and --batch-size >= 1")
    storage = store.open_storage(settings.storage)
    from bench.data.datasets import load_dataset
    from models import make_build_model

    data = load_dataset(settings.dataset, image_size=settings.image_size)
    build = make_build_model(data.input_shape, data.num_classes)
    n = len(data.y_train)
    bare: list[float] = []
    trial: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(settings.repeats):  # alternate, so drift hits both sides alike
            bare += _bare_epoch_seconds(data, build, settings.epochs, settings.batch_size)
            trial += _trial_epoch_seconds(data, build, settings.epochs, settings.batch_size,
                                          Path(tmp), r)
    bare_ips = n / statistics.median(bare)
    trial_ips = n / statistics.median(trial)
    record_measurement(storage, f"{data.name}-throughput", schema.KIND_THROUGHPUT, {
        "dataset": data.name, "image_size": list(data.input_shape[:2]), "batch_size": settings.batch_size,
        "epochs": settings.epochs, "repeats": settings.repeats, "train_images": n,
        "bare_images_per_s": round(bare_ips, 1), "trial_images_per_s": round(trial_ips, 1),
        "ratio": round(trial_ips / bare_ips, 4),
    }, command=command_line(settings.argv))
    print(f"bare model.fit: {bare_ips:.0f} images/s | inside a trial: {trial_ips:.0f} images/s "
          f"| ratio {trial_ips / bare_ips:.3f} (target >= 0.95)")
    return 0
