"""One search run: a searcher, a data set, an epoch budget, one study, one logdir."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from bench import schema, store
from bench.errors import RunError, UserError
from bench.presets import get_preset
from searchers.base import SearchSettings
from searchers.registry import get_searcher

_VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "optuna",
              "optuna-dashboard", "tensorboard", "numpy", "sqlalchemy")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (CLI flags map 1:1 onto it)."""

    searcher: str
    seed: int = 0
    preset: str = "standard"
    budget_epochs: int | None = None       # None: the preset's
    epochs_per_trial: int | None = None    # None: the preset's
    max_trials: int | None = None
    timeout: float | None = None           # seconds of wall time for this invocation
    dataset: str = "toon"
    image_size: tuple[int, int] | None = None
    data_seed: int = 0                     # the split is the same for every searcher and seed
    storage: str = "sqlite:///studies.db"
    study: str | None = None
    logdir: str = "runs"
    sampler: str | None = None
    pruner: str | None = None
    batch_size: int | None = None
    verbose: bool = False
    worker: str | None = None              # set in worker processes of a --workers run
    build_model_factory: Callable[..., Any] | None = field(default=None, compare=False)

    def resolved(self) -> "RunConfig":
        """Fill preset values and reject bad numbers with one clear line."""
        preset = get_preset(self.preset)
        cfg = replace(
            self,
            budget_epochs=self.budget_epochs if self.budget_epochs is not None else preset.budget_epochs,
            epochs_per_trial=(self.epochs_per_trial if self.epochs_per_trial is not None
                              else preset.epochs_per_trial),
            batch_size=self.batch_size if self.batch_size is not None else preset.batch_size,
            image_size=self.image_size or (preset.image_size if self.dataset != "digits" else None),
        )
        for name in ("budget_epochs", "epochs_per_trial", "batch_size", "max_trials"):
            value = getattr(cfg, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be > 0 (got {value})")
        if cfg.timeout is not None and cfg.timeout <= 0:
            raise UserError(f"--timeout must be > 0 seconds (got {cfg.timeout:g})")
        return cfg


@dataclass
class RunSummary:
    study_name: str
    storage: str
    logdir: str
    searcher: str
    best_value: float | None
    best_params: dict[str, Any]
    best_number: int | None
    counts: dict[str, int]
    epochs_used: int
    budget_epochs: int
    wall_seconds: float


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine() -> str:
    import psutil
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU used")


def bench_attrs(cfg: RunConfig, label: str, backend: str, data: Any) -> dict[str, Any]:
    from models.space import space_config
    info = data.describe()
    return {
        "kind": schema.KIND_SEARCH, "searcher": label, "backend": backend, "seed": cfg.seed,
        "dataset": data.name, "fingerprint": info.get("fingerprint"), "dataset_info": info,
        "budget_epochs": cfg.budget_epochs, "max_trials": cfg.max_trials,
        "epochs_per_trial": cfg.epochs_per_trial, "batch_size": cfg.batch_size,
        "objective": schema.OBJECTIVE, "direction": schema.DIRECTION, "space": space_config(),
        "versions": versions(), "preset": cfg.preset, "data_seed": cfg.data_seed,
        "image_size": list(data.input_shape[:2]), "sampler": cfg.sampler, "pruner": cfg.pruner,
    }


@dataclass
class Prepared:
    """A run's study, data and searcher, ready to search (or to hand to workers)."""

    cfg: RunConfig
    searcher: Any
    settings: SearchSettings
    label: str
    study_name: str
    study: Any
    data: Any
    run_dir: Path

    def refresh(self, wall: float = 0.0) -> "RunSummary":
        return _summary(self.cfg, self.study_name, self.label, self.study, self.run_dir, wall)


def prepare_study(cfg: RunConfig) -> Prepared:
    """Validate the run, open the store, load the data, create or reopen the study."""
    cfg = cfg.resolved()
    searcher = get_searcher(cfg.searcher)
    if (cfg.sampler or cfg.pruner) and searcher.backend != "optuna":
        raise UserError(f"--sampler/--pruner apply to Optuna-backed searchers, not {cfg.searcher!r}")
    # Workers of one study sample with different seeds, or they would propose alike.
    sampler_seed = cfg.seed + 7919 * int(cfg.worker.lstrip("w") or 0) if cfg.worker else cfg.seed
    settings = SearchSettings(seed=sampler_seed, epochs_per_trial=cfg.epochs_per_trial,
                              max_trials=cfg.max_trials, sampler=cfg.sampler, pruner=cfg.pruner)
    sampler, pruner = searcher.study_components(settings)  # unknown names fail here
    from bench.data import load_dataset

    data = load_dataset(cfg.dataset, image_size=cfg.image_size, seed=cfg.data_seed)
    storage = store.open_storage(cfg.storage)
    label = searcher.label(settings)
    name = cfg.study or schema.study_name(data.name, label, cfg.seed)
    study = store.open_study(storage, name, bench_attrs(cfg, label, searcher.backend, data),
                             sampler=sampler, pruner=pruner)
    if searcher.backend == "optuna" and study.trials:
        # A resumed study: a sampler seeded as before would replay its first proposals.
        study.sampler, _ = searcher.study_components(
            replace(settings, seed=settings.seed + len(study.trials)))
    run_dir = Path(cfg.logdir) / name
    project = run_dir / "kt" / (f"worker-{cfg.worker}" if cfg.worker else "main")
    if searcher.backend != "optuna" and study.trials and not (project / "oracle.json").exists():
        raise UserError(f"study {name!r} already has {len(study.trials)} trials but its KerasTuner "
                        f"project {project} is missing: a KerasTuner searcher cannot resume "
                        "without it (use another --study)")
    study.set_user_attr(schema.STUDY_BENCH, {**study.user_attrs[schema.STUDY_BENCH],
                                             "budget_epochs": cfg.budget_epochs})
    if searcher.backend == "optuna" and cfg.max_trials and not cfg.worker:
        from searchers.optuna_oracle import top_up_tickets
        top_up_tickets(study, cfg.max_trials)
    return Prepared(cfg, searcher, replace(settings, study=study), label, name, study, data,
                    run_dir)


def _limit_threads() -> None:
    """A worker of N uses its share of the cores (set by ``--workers``)."""
    threads = int(os.environ.get("BENCH_THREADS", "0"))
    if threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def run_search(cfg: RunConfig, printer: Callable[[str], None] | None = None) -> RunSummary:
    """Run (or resume) one search and return its summary. Raises UserError / RunError."""
    p = prepare_study(cfg)
    cfg, searcher, data, name, label, study = p.cfg, p.searcher, p.data, p.study_name, p.label, p.study
    _limit_threads()
    import keras

    from bench.tblog import HParamsLogger
    from bench.tracking import Budget, TrialTracker, tracked
    from models import make_build_model, space_hyperparameters

    kt_dir = p.run_dir / "kt"
    project = f"worker-{cfg.worker}" if cfg.worker else "main"

    keras.utils.set_random_seed(p.settings.seed)
    deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
    tb = HParamsLogger(p.run_dir, space_hyperparameters())
    tracker = TrialTracker(study, Budget(cfg.budget_epochs, deadline), label=label, seed=cfg.seed,
                           dataset=data.name, tb=tb, worker=cfg.worker, printer=printer)
    factory = cfg.build_model_factory or make_build_model
    try:
        tuner = tracked(searcher.tuner_class())(
            hypermodel=factory(data.input_shape, data.num_classes),
            objective=schema.OBJECTIVE, directory=str(kt_dir), project_name=project,
            overwrite=False, tracker=tracker, **searcher.tuner_kwargs(p.settings))
    except RuntimeError as exc:  # KerasTuner cannot reload a damaged project folder
        raise UserError(f"cannot resume from {kt_dir / project}: {str(exc).splitlines()[0]}") from None
    if cfg.max_trials and tuner.oracle.max_trials is None:
        tuner.oracle.max_trials = cfg.max_trials  # Hyperband takes no max_trials argument
    if cfg.worker and hasattr(tuner.oracle, "manage_tickets"):
        tuner.oracle.manage_tickets = False  # the launching process issued them once
    callbacks = [keras.callbacks.TerminateOnNaN()]
    preset = get_preset(cfg.preset)
    if preset.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=schema.OBJECTIVE,
                                                       patience=preset.patience))
    started = time.monotonic()
    (printer or (lambda line: print(line, flush=True)))(f"[{label} s{cfg.seed}{' ' + cfg.worker if cfg.worker else ''}] study {name!r} in "
            f"{cfg.storage} | data {data.name} {data.input_shape[0]}x{data.input_shape[1]} "
            f"train/val/test {len(data.y_train)}/{len(data.y_val)}/{len(data.y_test)} | budget "
            f"{cfg.budget_epochs} epochs ({tracker.used_at_start} used before), "
            f"{cfg.epochs_per_trial} per trial")
    try:
        tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                     epochs=cfg.epochs_per_trial, batch_size=cfg.batch_size, callbacks=callbacks,
                     verbose=1 if cfg.verbose else 0)
    except RuntimeError as exc:
        if "consecutive failures" in str(exc):
            last = [ln for ln in str(exc).splitlines() if ln.strip()]
            raise RunError(f"search stopped: {last[0]} (last error: {last[-1].strip()})") from None
        raise
    finally:
        tb.close()
    return p.refresh(time.monotonic() - started)


def _summary(cfg: RunConfig, name: str, label: str, study: Any, run_dir: Path,
             wall: float) -> RunSummary:
    from optuna.trial import TrialState
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    counts = {s.name: sum(t.state == s for t in trials)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    return RunSummary(study_name=name, storage=cfg.storage, logdir=str(run_dir), searcher=label,
                      best_value=best.value if best else None,
                      best_params=dict(best.params) if best else {},
                      best_number=best.number if best else None, counts=counts,
                      epochs_used=store.epochs_used(study), budget_epochs=cfg.budget_epochs,
                      wall_seconds=wall)


def format_summary(s: RunSummary) -> str:
    best = (f"trial #{s.best_number}: val_loss {s.best_value:.4f}\n    " +
            ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in s.best_params.items())) if s.best_value is not None else "none"
    return "\n".join([
        f"== {s.searcher}: {s.study_name} ==",
        f"best {best}",
        f"trials: {s.counts['COMPLETE']} complete, {s.counts['PRUNED']} pruned, "
        f"{s.counts['FAIL']} failed | epochs {s.epochs_used}/{s.budget_epochs} | "
        f"this run {s.wall_seconds:.0f}s",
        f"study store: {s.storage} (study {s.study_name!r})",
        f"TensorBoard logs: {s.logdir}",
        f"  optuna-dashboard: python -m bench dashboard --storage {s.storage}",
        f"  TensorBoard:      tensorboard --logdir {s.logdir}",
    ])
