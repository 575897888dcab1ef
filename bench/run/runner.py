"""One search run: a searcher, a data set, an epoch budget, one study, one logdir."""
from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import shlex
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from bench.core import backends, kt_project, runlock, schema, store, unstored
from bench.core.diskfull import disk_full_as_run_error
from bench.core.errors import RunError, UserError
from bench.core.provenance import versions
from bench.run.dead_trials import drop_crashed_retries, fail_dead_trials
from bench.run.presets import get_preset
from searchers.base import SearchSettings
from searchers.registry import get_searcher
from searchers.resilient_storage import store_outage_in

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1  # NumPy's and the samplers' seed range



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
    storage: str = schema.DEFAULT_STORAGE
    study: str | None = None
    logdir: str = "runs"
    sampler: str | None = None
    pruner: str | None = None
    batch_size: int | None = None
    patience: int | None = None            # EarlyStopping patience; None: the preset's, 0: none
    kind: str = schema.KIND_SEARCH         # bench["kind"] of the study (bench record: "record")
    verbose: bool = False
    worker: str | None = None              # set in worker processes of a --workers run
    trials_per_process: int | None = None  # replace the trial process after N (0: no child)
    trial_process: tuple[int, int] | None = None  # (cap, index): set in a trial process
    # Issue 15: several objectives make a multi-objective study (Optuna-backed searchers
    # search its front; KerasTuner's sum them as they do, and are stored with every value).
    objectives: tuple[str, ...] = (schema.OBJECTIVE,)
    max_params: int | None = None          # size cap: larger models are infeasible (a constraint)
    artifacts: str | None = None           # the best trials' checkpoints also here (a folder, s3://)
    warm_start: str | None = None          # a KerasTuner project folder or a study in --storage
    backend: str = backends.DEFAULT        # the Keras backend (--backend, KERAS_BACKEND)
    build_model_factory: Callable[..., Any] | None = field(default=None, compare=False)

    @classmethod
    def from_args(cls, args: Any, searcher: str, seed: int) -> "RunConfig":
        """The ``RunConfig`` of a ``run`` or ``compare`` command line (its argparse
        Namespace), for one searcher and seed; ``to_argv`` is the way back."""
        return cls(
            searcher=searcher, seed=seed, preset=args.preset, budget_epochs=args.budget_epochs,
            epochs_per_trial=args.epochs_per_trial, max_trials=args.max_trials, timeout=args.timeout,
            dataset=args.dataset, image_size=args.image_size, data_seed=args.data_seed,
            storage=args.storage, study=getattr(args, "study", None), logdir=args.logdir,
            sampler=args.sampler, pruner=args.pruner, batch_size=args.batch_size,
            patience=args.patience, kind=getattr(args, "kind", None) or schema.KIND_SEARCH,
            verbose=args.verbose, worker=getattr(args, "worker", None),
            trials_per_process=args.trials_per_process,
            trial_process=getattr(args, "trial_process", None),
            objectives=getattr(args, "objectives", None) or (schema.OBJECTIVE,),
            max_params=getattr(args, "max_params", None),
            artifacts=getattr(args, "artifacts", None),
            warm_start=getattr(args, "warm_start", None),
            backend=backends.resolve(getattr(args, "backend", None)))

    def to_argv(self) -> list[str]:
        """The ``bench run`` flags that make this config again in another process (a trial
        process, a worker): ``from_args`` of them gives it back."""
        flags: dict[str, Any] = {
            "--searcher": self.searcher, "--seed": self.seed, "--preset": self.preset,
            "--budget-epochs": self.budget_epochs, "--epochs-per-trial": self.epochs_per_trial,
            "--max-trials": self.max_trials, "--timeout": self.timeout, "--dataset": self.dataset,
            "--image-size": "x".join(map(str, self.image_size)) if self.image_size else None,
            "--data-seed": self.data_seed, "--storage": self.storage, "--study": self.study,
            "--logdir": self.logdir, "--sampler": self.sampler, "--pruner": self.pruner,
            "--batch-size": self.batch_size, "--worker": self.worker, "--patience": self.patience,
            "--kind": self.kind if self.kind != schema.KIND_SEARCH else None,
            "--objectives": ",".join(self.objectives) if self.objectives != (schema.OBJECTIVE,) else None,
            "--max-params": self.max_params, "--artifacts": self.artifacts,
            "--trials-per-process": self.trials_per_process, "--warm-start": self.warm_start,
            "--backend": self.backend if self.backend != backends.DEFAULT else None,
        }
        argv = [item for flag, value in flags.items() if value is not None
                for item in (flag, str(value))]
        return argv + (["-v"] if self.verbose else [])

    def resolved(self) -> "RunConfig":
        """Fill preset values and reject bad numbers with one clear line."""
        preset = get_preset(self.preset)
        backends.select(self.backend)  # installed, agrees with KERAS_BACKEND: before any import
        cfg = replace(
            self,
            budget_epochs=self.budget_epochs if self.budget_epochs is not None else preset.budget_epochs,
            epochs_per_trial=(self.epochs_per_trial if self.epochs_per_trial is not None
                              else preset.epochs_per_trial),
            batch_size=self.batch_size if self.batch_size is not None else preset.batch_size,
            patience=self.patience if self.patience is not None else preset.patience,
            image_size=self.image_size or (preset.image_size if self.dataset == "toon" else None),
        )
        for name in ("trials_per_process", "patience"):
            value = getattr(cfg, name)
            if value is not None and value < 0:
                raise UserError(f"--{name.replace('_', '-')} must be >= 0 (got {value})")
        for name in ("budget_epochs", "epochs_per_trial", "batch_size", "max_trials"):
            value = getattr(cfg, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be > 0 (got {value})")
        if cfg.timeout is not None and cfg.timeout <= 0:
            raise UserError(f"--timeout must be > 0 seconds (got {cfg.timeout:g})")
        for name in ("seed", "data_seed"):
            value = getattr(cfg, name)
            if not 0 <= value <= MAX_SEED:
                raise UserError(f"--{name.replace('_', '-')} must be 0..{MAX_SEED} (got {value})")
        if cfg.study is not None:
            schema.check_study_name(cfg.study)
        check_objectives(cfg.objectives)
        if cfg.max_params is not None and (isinstance(cfg.max_params, bool) or cfg.max_params < 1):
            raise UserError(f"--max-params must be >= 1 (got {cfg.max_params})")
        return cfg

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [schema.OBJECTIVE_DIRECTIONS[o] for o in self.objectives]

    @property
    def under_launcher(self) -> bool:
        """A worker or trial process: its launcher holds the study (lock, tickets)."""
        return bool(self.worker or self.trial_process)

    @property
    def max_pixels(self) -> int:
        """Cap on an image folder's own size (the preset's)."""
        return get_preset(self.preset).max_pixels


def check_objectives(objectives: tuple[str, ...]) -> None:
    """--objectives: known names, no repeats, at least one; one alone must be val_loss
    (the benchmark's objective, what every single-objective view reads)."""
    known = ", ".join(schema.OBJECTIVE_DIRECTIONS)
    if not objectives:
        raise UserError(f"--objectives is empty: give one or more of {known}")
    unknown = [o for o in objectives if o not in schema.OBJECTIVE_DIRECTIONS]
    if unknown:
        raise UserError(f"--objectives: unknown {', '.join(map(repr, unknown))}; choose from {known}")
    if len(set(objectives)) != len(objectives):
        raise UserError(f"--objectives names one twice: {','.join(objectives)}")
    if len(objectives) == 1 and objectives[0] != schema.OBJECTIVE:
        raise UserError(f"--objectives {objectives[0]}: a single objective must be "
                        f"{schema.OBJECTIVE}; give two or more for a multi-objective run "
                        f"(e.g. {schema.OBJECTIVE},params)")


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
    capped: bool = False  # this process stopped at its trial cap; the search may go on
    # multi-objective runs: the objectives, and the size of the study's Pareto front
    # (best_value is then the best first objective among feasible COMPLETE trials)
    objectives: tuple[str, ...] = (schema.OBJECTIVE,)
    front_size: int | None = None
    artifacts: str | None = None  # --artifacts: the dashboard hint names it too


def bench_attrs(cfg: RunConfig, label: str, backend: str, data: Any) -> dict[str, Any]:
    from models.space import space_config
    info = data.describe()
    return {
        "kind": cfg.kind, "searcher": label, "backend": backend, "seed": cfg.seed,
        "dataset": data.name, "fingerprint": info.get("fingerprint"), "dataset_info": info,
        "budget_epochs": cfg.budget_epochs, "max_trials": cfg.max_trials,
        "epochs_per_trial": cfg.epochs_per_trial, "batch_size": cfg.batch_size,
        "objective": schema.OBJECTIVE, "direction": schema.DIRECTION, "space": space_config(),
        "versions": versions(), "preset": cfg.preset, "data_seed": cfg.data_seed,
        "image_size": list(data.input_shape[:2]), "sampler": cfg.sampler, "pruner": cfg.pruner,
        "patience": cfg.patience, "keras_backend": cfg.backend,
        # only where the run is not the default single objective: older studies unchanged
        **({"objectives": list(cfg.objectives), "directions": cfg.directions,
            "max_params": cfg.max_params}
           if cfg.multi_objective or cfg.max_params is not None else {}),
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
    lock: runlock.Lock = field(default_factory=runlock.NoLock)
    finished: bool = False  # nothing left to run: the budget (or --max-trials) is spent
    artifact_store: Any = None  # --artifacts, opened and checked

    def refresh(self, wall: float = 0.0) -> "RunSummary":
        return _summary(self.cfg, self.study_name, self.label, self.study, self.run_dir, wall)


def load_run_data(cfg: RunConfig) -> Any:
    """The run's data set: the same pixels and split for every searcher of a comparison."""
    from bench.data.datasets import load_dataset
    return load_dataset(cfg.dataset, image_size=cfg.image_size, seed=cfg.data_seed,
                        max_pixels=cfg.max_pixels, split_dir=_split_dir(cfg.storage))


def _split_dir(storage_url: str) -> Path | None:
    """A folder's saved split lives beside an SQLite store (None: the user cache)."""
    if storage_url.startswith("sqlite:///") and storage_url != "sqlite:///:memory:":
        return Path(storage_url.split(":///", 1)[1]).expanduser().resolve().parent
    return None


def worker_offset(worker: str | None) -> int:
    """A worker's seed offset: ``wI`` or ``wI.<launch tag>`` (``bench.run.workers``), so that the
    workers of one launch, and of different launches, sample apart."""
    if not worker:
        return 0
    index, _, tag = worker.partition(".")
    return 7919 * int(index.lstrip("w") or 0) + (zlib.crc32(tag.encode()) if tag else 0)


def derived_seed(seed: int, offset: int) -> int:
    """A seed derived from the run's (resume, worker index), kept in the samplers' range."""
    return (seed + offset) % (MAX_SEED + 1)


# The deepest path a run writes below runs/<study>/ (a Hyperband trial's checkpoint, a
# TensorBoard event file named after the host), with room to spare.
_DEEPEST_BELOW_RUN_DIR = 160


def check_logdir(run_dir: Path) -> None:
    """Refuse a --logdir that cannot hold the run before anything is created."""
    path = run_dir.expanduser().absolute()
    try:
        path_max, name_max = os.pathconf("/", "PC_PATH_MAX"), os.pathconf("/", "PC_NAME_MAX")
    except (OSError, ValueError):
        path_max, name_max = 4096, 255
    if any(len(part.encode()) > name_max for part in path.parts):
        raise UserError(f"--logdir: a folder name in {str(path)[:60]}... is longer than the "
                        f"{name_max} bytes this file system allows")
    if len(str(path).encode()) + _DEEPEST_BELOW_RUN_DIR > path_max:
        raise UserError(f"--logdir: {str(path)[:60]}... is too long ({len(str(path))} "
                        f"characters; the run needs {_DEEPEST_BELOW_RUN_DIR} more below it "
                        f"and paths may have {path_max})")
    existing = path
    while not (existing.exists() or existing.is_symlink()):
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--logdir: {existing} is {'a broken link' if existing.is_symlink() else 'a file'}, "
                        "not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--logdir: {existing} is not writable")


def prepare_study(cfg: RunConfig, *, shared_lock: bool = False) -> Prepared:
    """Validate the run, open the store, load the data, create or reopen the study.

    Holds the study's run lock (see ``bench.core.runlock``) until the caller releases
    ``Prepared.lock``; ``shared_lock`` is for a ``--workers`` launch, which other
    launches of the study may join. Worker processes take no lock of their own."""
    from optuna.trial import TrialState
    cfg = cfg.resolved()
    searcher = get_searcher(cfg.searcher)
    if (cfg.sampler or cfg.pruner) and searcher.backend != "optuna":
        raise UserError(f"--sampler/--pruner apply to Optuna-backed searchers, not {cfg.searcher!r}")
    # Workers of one study sample with different seeds, or they would propose alike.
    settings = SearchSettings(seed=derived_seed(cfg.seed, worker_offset(cfg.worker)),
                              epochs_per_trial=cfg.epochs_per_trial,  # type: ignore[arg-type]  # set by resolved()
                              max_trials=cfg.max_trials,
                              sampler=cfg.sampler, pruner=cfg.pruner,
                              objectives=cfg.objectives, max_params=cfg.max_params,
                              budget_epochs=cfg.budget_epochs,
                              # a worker's launcher issued the study's tickets once
                              issue_tickets=not cfg.worker)
    sampler, pruner = searcher.study_components(settings)  # unknown names fail here
    if cfg.multi_objective and pruner is not None and type(pruner).__name__ != "NopPruner":
        # Optuna's Trial.report refuses several objectives: no pruner can act (the oracle
        # refuses it too; said here before any data is loaded, as one line)
        raise UserError(f"--pruner {cfg.pruner}: a multi-objective search "
                        f"({','.join(cfg.objectives)}) cannot prune (Optuna's Trial.report "
                        "refuses several objectives); leave --pruner out or use --pruner none")
    label = searcher.label(settings)
    check_logdir(Path(cfg.logdir) / (cfg.study or "x"))  # before loading any data
    # the process that holds the study adds the history; its workers find it there
    warm_start = _warm_start(cfg, searcher) if cfg.warm_start and not cfg.under_launcher else None
    artifact_store = None
    if cfg.artifacts:
        from bench.core.artifact_store import open_artifact_store
        artifact_store = open_artifact_store(cfg.artifacts)  # checked: before any trial
    data = load_run_data(cfg)
    # a study per Keras backend: toon-optuna-jax-s0 (TensorFlow's names as they always were)
    tag = "-".join(t for t in (backends.name_tag(cfg.backend),
                               schema.MULTI_OBJECTIVE_TAG if cfg.multi_objective else "") if t)
    name = schema.check_study_name(cfg.study or schema.study_name(data.name, label, cfg.seed, tag))
    run_dir = Path(cfg.logdir) / name
    if cfg.study is None:
        check_logdir(run_dir)  # the default name's length is known only now
    # Workers share the study and need heartbeats to find a dead one's trial; a run that
    # holds the study under its lock (and its trial processes) fails dead trials itself.
    storage = store.open_storage(cfg.storage, heartbeat=bool(cfg.worker) or shared_lock)
    # Worker and trial processes run under their launcher's lock.
    lock = (runlock.NoLock() if cfg.under_launcher
            else runlock.acquire(cfg.storage, name, shared=shared_lock))
    try:
        # a project folder resumes one study of one store (not another store's namesake):
        # refused before the study is made
        kt_project.claim(run_dir / "kt", cfg.storage, name, write=False)
        study = store.open_study(storage, name, bench_attrs(cfg, label, searcher.proposed_by, data),
                                 sampler=sampler, pruner=pruner)
        started = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
        if searcher.backend == "optuna" and started:
            # A resumed study: a sampler seeded as before would replay its first proposals.
            # Offset by the trials begun so far, not by all trials: WAITING tickets are there
            # from the start, and a replaced trial process would otherwise reuse one offset.
            study.sampler, _ = searcher.study_components(
                replace(settings, seed=derived_seed(settings.seed, started)))
        project = run_dir / "kt" / (f"worker-{cfg.worker}" if cfg.worker else "main")
        finished = _finished_run(cfg, study)
        if (searcher.backend != "optuna" and study.trials and not finished
                and not (project / "oracle.json").exists()):
            raise UserError(f"study {name!r} already has {len(study.trials)} trials but its "
                            f"KerasTuner project {project} is missing: a KerasTuner searcher "
                            "cannot resume without it (use another --study)")
        kt_project.check_files(project)
        if not (cfg.under_launcher or finished):  # checked above; marked once it runs
            kt_project.claim(run_dir / "kt", cfg.storage, name)
        if not (cfg.under_launcher or shared_lock):
            # this process holds the study: nothing else runs in it
            fail_dead_trials(study, trained=unstored.recorded(run_dir, name))
            unstored.forget(run_dir)
        study.set_user_attr(schema.STUDY_BENCH, {**study.user_attrs[schema.STUDY_BENCH],
                                                 "budget_epochs": cfg.budget_epochs})
        if searcher.backend == "optuna" and cfg.max_trials and shared_lock:
            # a --workers launch issues its workers' tickets once; a single run's trial
            # processes issue theirs one at a time (none left waiting when it stops)
            from searchers.tickets import top_up_tickets, withdraw_extra_tickets
            withdraw_extra_tickets(study, cfg.max_trials)
            top_up_tickets(study, cfg.max_trials)
        if warm_start is not None:
            _add_history(study, warm_start, name)
    except BaseException:
        lock.release()
        raise
    return Prepared(cfg, searcher, replace(settings, study=study), label, name, study, data,
                    run_dir, lock, finished, artifact_store)


def _add_history(study: Any, warm_start: Any, name: str) -> None:
    """The warm start's trials into the run's study, once, by the process that holds the
    study (workers and trial processes find them there: no race between them)."""
    from models.space import space_hyperparameters
    from searchers.warm_start import add_history, load_history
    if getattr(warm_start, "study_name", None) == name:
        raise UserError(f"--warm-start {name}: that is this run's own study")
    note = add_history(study, load_history(warm_start), space_hyperparameters(), schema.OBJECTIVE)
    if note:
        log.info("%s", note)


def _warm_start(cfg: RunConfig, searcher: Any) -> Any:
    """--warm-start PATH|STUDY: a KerasTuner project folder, else a study of --storage."""
    if not searcher.records_live:
        raise UserError(f"--warm-start: {cfg.searcher!r} is KerasTuner's own searcher, which "
                        "cannot learn from earlier trials; use an Optuna-backed one (optuna, tpe, ...)")
    if cfg.multi_objective:
        raise UserError("--warm-start takes a single-objective history; this run has "
                        f"several objectives ({','.join(cfg.objectives)})")
    path = Path(cfg.warm_start).expanduser()  # type: ignore[arg-type]  # set: called only then
    if path.is_dir():
        from searchers.kt_project_reader import read_project
        read_project(path.resolve())  # not one project: one line now, before any data loads
        return str(path.resolve())
    import optuna
    storage = store.open_storage(cfg.storage)
    if cfg.warm_start in optuna.get_all_study_names(storage):
        return optuna.load_study(study_name=cfg.warm_start, storage=storage)
    raise UserError(f"--warm-start {cfg.warm_start}: neither a KerasTuner project folder nor a "
                    f"study in {store.display_url(cfg.storage)}")


def _finished_run(cfg: RunConfig, study: Any) -> bool:
    """Has this run nothing left to do? Then resuming it needs no KerasTuner project (a
    committed store's finished runs, whose logs stayed on another machine)."""
    from optuna.trial import TrialState
    trials = study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
        return False
    if cfg.budget_epochs and store.epochs_used(trials) >= cfg.budget_epochs:
        return True
    from searchers.warm_start import is_history
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not is_history(t)
               for t in trials)
    return cfg.max_trials is not None and cfg.max_trials > 0 and done >= cfg.max_trials


def _limit_threads() -> None:
    """A worker of N uses its share of the cores (set by ``--workers``)."""
    threads = int(os.environ.get("BENCH_THREADS", "0"))
    if threads:
        backends.limit_threads(os.environ.get("KERAS_BACKEND", backends.DEFAULT), threads)


def run_search(cfg: RunConfig, printer: Any = None) -> RunSummary:
    """Run (or resume) one search and return its summary. Raises UserError / RunError.

    ``printer``: where progress goes: a ``bench.run.tracking.ProgressPrinter``, or a callback
    for its lines (default: stdout)."""
    p = prepare_study(cfg)
    try:
        if p.finished and not cfg.under_launcher:
            return p.refresh()
        with disk_full_as_run_error(p.run_dir):
            return _search(p, printer)
    finally:
        p.lock.release()


def _search(p: Prepared, printer: Any) -> RunSummary:
    cfg, searcher, data, name, label, study = p.cfg, p.searcher, p.data, p.study_name, p.label, p.study
    _limit_threads()
    import keras

    from bench.run.budget import Budget
    from bench.run.tblog import HParamsLogger
    from bench.run.tracking import RunStarted, TrialTracker, as_printer, tracked
    from models import make_build_model, space_hyperparameters

    kt_project.make_json_writes_atomic()
    kt_dir = p.run_dir / "kt"
    project = f"worker-{cfg.worker}" if cfg.worker else "main"

    keras.utils.set_random_seed(p.settings.seed)
    deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
    from searchers import objectives as mo
    # One objective: the string, as before. Several: KerasTuner's MultiObjective (its own
    # searchers sum it; the Optuna-backed oracle searches the front, see tuner_kwargs).
    objective: Any = mo.create_objective(list(cfg.objectives)) if cfg.multi_objective else schema.OBJECTIVE
    wants_params = mo.wants_params(objective, cfg.max_params)
    tb = HParamsLogger(p.run_dir, space_hyperparameters(), objectives=cfg.objectives,
                       metrics=_TB_METRICS + ((mo.PARAMS,) if wants_params else ()))
    budget = Budget(cfg.budget_epochs, deadline)  # type: ignore[arg-type]  # set by resolved()
    progress = as_printer(printer)
    tracker = TrialTracker(study, budget, label=label, seed=cfg.seed,
                           dataset=data.name, tb=tb, worker=cfg.worker, printer=progress,
                           records_live=searcher.records_live,
                           trial_cap=cfg.trial_process[0] if cfg.trial_process else None,
                           objectives=cfg.objectives, max_params=cfg.max_params)
    tuner_kwargs = searcher.tuner_kwargs(p.settings)
    if p.artifact_store is not None:
        if searcher.records_live:  # OptunaSearch shares its best-k checkpoints itself
            tuner_kwargs["artifact_store"] = p.artifact_store
        else:  # KerasTuner's own searchers: the tracker uploads the study's best k
            from searchers.checkpoint_artifacts import CheckpointArtifacts
            tracker.checkpoints = CheckpointArtifacts(p.artifact_store, study)
    factory = cfg.build_model_factory or make_build_model
    replacement = bool(cfg.trial_process and cfg.trial_process[1])
    try:  # KerasTuner's "Reloading Tuner from ..." is not a line of ours: the run's first
        # line says how many epochs were used before (a resume)
        with contextlib.redirect_stdout(io.StringIO()):
            tuner = tracked(searcher.tuner_class())(
                hypermodel=factory(data.input_shape, data.num_classes),
                objective=objective, directory=str(kt_dir), project_name=project,
                overwrite=False, tracker=tracker, **tuner_kwargs)
    except RuntimeError as exc:  # KerasTuner cannot reload a damaged project folder
        raise UserError(f"cannot resume from {kt_dir / project}: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # the oracle refuses a setting (a pruner on several objectives)
        if not cfg.multi_objective and cfg.max_params is None:
            raise
        raise UserError(str(exc).splitlines()[0] if str(exc).strip() else repr(exc)) from None
    searcher.configure_oracle(tuner.oracle, p.settings)  # e.g. Hyperband's max_trials
    # KerasTuner reloads its project only where the tuner's own file exists, which it
    # first writes when a trial ends: a process killed in its first trial would start
    # over, proposing that trial again. Written now, the next process resumes instead.
    tuner.save()
    drop_crashed_retries(tuner.oracle, study, records_live=searcher.records_live)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if wants_params:  # first: the callbacks after it (KerasTuner's, History) see "params"
        callbacks.insert(0, mo.params_callback())
    preset = get_preset(cfg.preset)
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=schema.OBJECTIVE,
                                                       patience=cfg.patience))
    # Everything alive now (TensorFlow, the data, the tuner) lives as long as the run:
    # moved out of the collector's way, each trial's collections no longer walk it. The
    # same for every searcher, so comparisons stay fair.
    gc.collect()
    gc.freeze()
    started = time.monotonic()
    size = f"{data.input_shape[0]}x{data.input_shape[1]}"
    note = getattr(data, "size_note", "")
    if note == "--image-size" and cfg.image_size == preset.image_size:
        note = f"preset {cfg.preset}"
    if not replacement:  # said once per run
        progress.run_started(RunStarted(
            label=label, seed=cfg.seed, worker=cfg.worker, study=name,
            storage=store.display_url(cfg.storage), data=data.name, image_size=size,
            size_note=note, n_train=len(data.y_train), n_val=len(data.y_val),
            n_test=len(data.y_test), budget_epochs=cfg.budget_epochs,  # type: ignore[arg-type]
            used_before=tracker.used_at_start,
            epochs_per_trial=cfg.epochs_per_trial))  # type: ignore[arg-type]  # set by resolved()
    try:
        tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                     epochs=cfg.epochs_per_trial, batch_size=cfg.batch_size, callbacks=callbacks,
                     verbose=1 if cfg.verbose else 0)
    except RuntimeError as exc:
        if "consecutive failures" in str(exc):
            last = [ln for ln in str(exc).splitlines() if ln.strip()]
            raise RunError(f"search stopped: {last[0]} (last error: {last[-1].strip()})") from None
        raise
    except Exception as exc:
        outage = store_outage_in(exc)
        if outage is None:
            raise
        # what the running trials trained could not be reported: the resume counts it
        unstored.record(p.run_dir, name, tracker.unstored_epochs(tuner.oracle))
        raise RunError(str(outage)) from None
    finally:
        tb.close()
    return replace(p.refresh(time.monotonic() - started), capped=tracker.capped)


_TB_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")  # HParamsLogger's default


def _summary(cfg: RunConfig, name: str, label: str, study: Any, run_dir: Path,
             wall: float) -> RunSummary:
    from optuna.trial import TrialState
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # the first objective (t.value raises on several), among feasible trials (a size cap)
    complete = [t for t in complete if all(c <= 0 for c in t.constraints.values())]
    front_size = len(study.best_trials) if len(study.directions) > 1 else None
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    best = min(complete, key=lambda t: sign * t.values[0]) if complete else None
    counts = {s.name: sum(t.state == s for t in trials)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    return RunSummary(study_name=name, storage=cfg.storage, logdir=str(run_dir), searcher=label,
                      best_value=best.values[0] if best else None,
                      objectives=tuple(cfg.objectives), front_size=front_size,
                      best_params=dict(best.params) if best else {},
                      best_number=best.number if best else None, counts=counts,
                      epochs_used=store.epochs_used(study),
                      budget_epochs=cfg.budget_epochs,  # type: ignore[arg-type]  # set by resolved()
                      wall_seconds=wall, artifacts=cfg.artifacts)


def format_summary(s: RunSummary) -> str:
    best = (f"trial #{s.best_number}: {s.objectives[0]} {s.best_value:.4f}\n    " +
            ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in s.best_params.items())) if s.best_value is not None else "none"
    return "\n".join([
        f"== {s.searcher}: {s.study_name} ==",
        f"best {best}",
        *([f"Pareto front ({', '.join(s.objectives)}): {s.front_size} trial(s)"]
          if s.front_size is not None else []),
        f"trials: {s.counts['COMPLETE']} complete, {s.counts['PRUNED']} pruned, "
        f"{s.counts['FAIL']} failed | epochs {s.epochs_used}/{s.budget_epochs} | "
        f"this run {s.wall_seconds:.0f}s",
        f"study store: {store.display_url(s.storage)} (study {s.study_name!r})",
        f"TensorBoard logs: {s.logdir}",
        f"  optuna-dashboard: python -m bench dashboard --storage "
        f"{shlex.quote(store.display_url(s.storage))}"
        + (f" --artifacts {shlex.quote(s.artifacts)}" if s.artifacts else ""),
        f"  TensorBoard:      tensorboard --logdir {shlex.quote(s.logdir)}",
    ])
