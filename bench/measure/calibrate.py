"""How hard is a data set for this search space? Baseline vs random configurations.

Why: a benchmark of searchers only says something if the data set leaves room between
the seed's baseline and good points of the space, and if random points spread widely in
``val_loss`` (otherwise every searcher "wins"). This trains the baseline and
``n_configs`` random configurations with the seed's protocol (Adam, batch 64,
EarlyStopping(patience=3, restore_best_weights=True)) and summarises both; it is what
the toon generator's difficulty was tuned with.

    python -m bench calibrate --dataset toon --configs 20 --epochs 20
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.data.datasets import Dataset, load_dataset

BATCH_SIZE = 64
DEFAULT_EPOCHS = 20


def random_configs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` points drawn uniformly from the shared space, reproducible for the seed."""
    from models.space import space_hyperparameters

    space = space_hyperparameters().space
    rng = np.random.default_rng([int(seed), 0xCA1])
    return [{hp.name: hp.random_sample(int(rng.integers(2**31))) for hp in space}
            for _ in range(n)]


def _fit_eval(model, ds: Dataset, epochs: int, batch_size: int) -> dict[str, Any]:
    """Train with the seed's early stopping; report best-epoch val and test figures."""
    import keras

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3,
                                         restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val),
                     epochs=epochs, batch_size=batch_size, callbacks=[stop], verbose=0)
    fit_s = time.perf_counter() - t0
    val_loss = [float(v) for v in hist.history["val_loss"]]
    best = int(np.nanargmin(val_loss)) if not all(np.isnan(val_loss)) else len(val_loss) - 1
    test_loss, test_acc = model.evaluate(ds.x_test, ds.y_test, batch_size=256, verbose=0)
    return {
        "val_loss": val_loss[best],
        "val_accuracy": float(hist.history["val_accuracy"][best]),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_acc),
        "n_params": int(model.count_params()),
        "epochs_trained": len(val_loss),
        "fit_seconds": round(fit_s, 2),
    }


def calibrate(spec: str = "toon", *, n_configs: int = 20, epochs: int = DEFAULT_EPOCHS,
              seed: int = 0, image_size: tuple[int, int] | None = None,
              batch_size: int = BATCH_SIZE, dataset: Dataset | None = None) -> dict[str, Any]:
    """Baseline figures, every random configuration's figures, and the val_loss spread."""
    import keras
    import keras_tuner

    from models.cnn import baseline_model, make_build_model

    t0 = time.perf_counter()
    ds = dataset if dataset is not None else load_dataset(spec, image_size=image_size,
                                                          seed=seed)
    build = make_build_model(ds.input_shape, ds.num_classes)

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    baseline = _fit_eval(baseline_model(ds.input_shape, ds.num_classes), ds, epochs,
                         batch_size)

    configs = []
    for i, values in enumerate(random_configs(n_configs, seed)):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed + 1 + i)
        hp = keras_tuner.HyperParameters()
        hp.values.update(values)  # build_model's declare() reads these back
        configs.append({"params": values, **_fit_eval(build(hp), ds, epochs, batch_size)})
    keras.backend.clear_session()

    losses = [c["val_loss"] for c in configs]
    best = min(configs, key=lambda c: c["val_loss"]) if configs else None
    return {
        "dataset": ds.describe(),
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "n_configs": n_configs,
        "baseline": baseline,
        "configs": configs,
        "val_loss": {
            "best": min(losses) if losses else None,
            "median": statistics.median(losses) if losses else None,
            "worst": max(losses) if losses else None,
        },
        "best_config": best,
        "configs_beating_baseline": sum(v < baseline["val_loss"] for v in losses),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    """A small table: baseline, best/median/worst random configuration."""
    b, v, best = result["baseline"], result["val_loss"], result["best_config"]
    d = result["dataset"]
    rows = [
        f"data `{d['name']}` {d['image_size'][0]}x{d['image_size'][1]}, "
        f"train/val/test {d['n_train']}/{d['n_val']}/{d['n_test']}, "
        f"epochs {result['epochs']}, batch {result['batch_size']}, seed {result['seed']}, "
        f"{result['n_configs']} random configs, {result['wall_seconds']} s",
        "",
        "| model | val_loss | val_acc | test_loss | test_acc | params |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| baseline | {b['val_loss']:.4f} | {b['val_accuracy']:.3f} | {b['test_loss']:.4f} "
        f"| {b['test_accuracy']:.3f} | {b['n_params']} |",
    ]
    if best is not None:
        rows.append(f"| best random | {best['val_loss']:.4f} | {best['val_accuracy']:.3f} | "
                    f"{best['test_loss']:.4f} | {best['test_accuracy']:.3f} | "
                    f"{best['n_params']} |")
        rows += ["", f"random val_loss: best {v['best']:.4f}, median {v['median']:.4f}, "
                     f"worst {v['worst']:.4f}; {result['configs_beating_baseline']}/"
                     f"{result['n_configs']} beat the baseline's val_loss"]
    return "\n".join(rows)


@dataclass(frozen=True)
class CalibrateSettings:
    """``bench calibrate``'s flags."""

    dataset: str = "toon"
    configs: int = 20
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    image_size: tuple[int, int] | None = None
    storage: str | None = None  # record the result here ("" or None: print it only)
    argv: tuple[str, ...] = ()  # the command line, as recorded

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CalibrateSettings":
        return cls(dataset=args.dataset, configs=args.configs, epochs=args.epochs,
                   seed=args.seed, image_size=args.image_size, storage=args.storage,
                   argv=tuple(args.argv))


def run_calibrate(settings: CalibrateSettings) -> int:
    """``python -m bench calibrate``: print the table and record it in the study store."""
    from bench.core import store
    from bench.core.errors import UserError

    if settings.epochs < 1 or settings.configs < 1:
        raise UserError("--epochs and --configs must be >= 1")
    if settings.storage:
        store.open_storage(settings.storage)  # a bad store fails now, not after minutes of training
    result = calibrate(settings.dataset, n_configs=settings.configs, epochs=settings.epochs,
                       seed=settings.seed, image_size=settings.image_size)
    print(markdown(result))
    if settings.storage:
        from bench.core.measurement import command_line
        record(result, settings.storage, command=command_line(settings.argv))
    return 0


def record(result: dict[str, Any], storage: str, *, command: str) -> None:
    """Keep the calibration in the store (study ``<dataset>-calibration``) for the report."""
    from bench.core import schema
    from bench.core.measurement import record_measurement

    name = result["dataset"]["name"]
    record_measurement(storage, f"{name}-calibration", schema.KIND_CALIBRATION, {
        "dataset": name, "markdown": markdown(result),
        "baseline": result["baseline"], "val_loss": result["val_loss"],
        "n_configs": result["n_configs"], "epochs": result["epochs"]}, command=command)
