"""What every benchmarked tuner does besides searching: count the epoch budget, time
each trial, log it to TensorBoard and the study store, report one event per trial.

It is a mixin over any KerasTuner ``Tuner`` class (``tracked(cls)``), using only
KerasTuner's own hooks, so KerasTuner's searchers stay unmodified in what they decide.

How a trial reaches the study is the searcher's explicit choice
(``Searcher.records_live``, passed to ``TrialTracker``): an Optuna-backed oracle records
it live and the tracker attaches its attrs through the oracle's ``before_tell`` hook; the
trials of KerasTuner's own oracles are mirrored by the tracker.

Progress goes through one printer (``ProgressPrinter``) fed by events (``RunStarted``,
``TrialEvent``, ``note``): it alone formats the lines a run prints. This module imports
no TensorFlow (a run's launcher prints through the same printer).
"""
from __future__ import annotations

import math
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeAlias

import optuna
from optuna.trial import TrialState

from bench.core import schema, store
from bench.core.diskfull import is_disk_full
from bench.run.budget import Budget
from searchers import seam
from searchers.seam import active_params

if TYPE_CHECKING:
    import keras_tuner

# KerasTuner's TrialStatus values are these strings (keras_tuner.engine.trial.TrialStatus).
_STATES = {
    "COMPLETED": TrialState.COMPLETE,
    "STOPPED": TrialState.PRUNED,
}


# ---- progress ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunStarted:
    """A run (or a resumed one) begins searching."""

    label: str
    seed: int
    worker: str | None
    study: str
    storage: str                 # as shown (store.display_url)
    data: str
    image_size: str              # "WxH"
    size_note: str               # why that size ("" when nothing to say)
    n_train: int
    n_val: int
    n_test: int
    budget_epochs: int
    used_before: int
    epochs_per_trial: int


@dataclass(frozen=True)
class TrialEvent:
    """A trial ended (COMPLETE, PRUNED or FAIL) and was recorded."""

    label: str
    seed: int
    worker: str | None
    number: int | None           # the study's trial number (None: not known here)
    kt_id: str                   # KerasTuner's trial id
    state: str                   # TrialState name
    objective: str
    value: float | None
    val_accuracy: float | None
    best: float | None           # the study's best so far
    epochs: int
    wall: float
    used: int                    # epochs of the budget used so far
    budget: int
    eta_seconds: float | None    # None: not estimable yet
    params: dict[str, Any]
    n_params: int | None = None  # shown when model size is an objective or capped
    max_params: int | None = None


def _who(label: str, seed: int, worker: str | None) -> str:
    return f"{label} s{seed}" + (f" {worker}" if worker else "")


class ProgressPrinter:
    """The one place a run's progress lines are formatted; ``write`` gets each line
    (default: stdout, flushed, so progress shows even when piped)."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or _print_flushed

    def run_started(self, e: RunStarted) -> None:
        note = f" ({e.size_note})" if e.size_note else ""
        self.write(
            f"[{_who(e.label, e.seed, e.worker)}] study {e.study!r} in {e.storage} | data "
            f"{e.data} {e.image_size}{note} train/val/test {e.n_train}/{e.n_val}/{e.n_test} | "
            f"budget {e.budget_epochs} epochs ({e.used_before} used before), "
            f"{e.epochs_per_trial} per trial")

    def trial_ended(self, e: TrialEvent) -> None:
        self.write(self.trial_line(e))

    def note(self, label: str, seed: int, worker: str | None, text: str) -> None:
        """Anything else a run tells its user, tagged as its other lines are."""
        self.write(f"[{_who(label, seed, worker)}] {text}")

    @staticmethod
    def trial_line(e: TrialEvent) -> str:
        shown = f"{e.value:.4f}" if e.value is not None else "-"
        best = f"{e.best:.4f}" if e.best is not None else "-"
        eta = _fmt_seconds(e.eta_seconds) if e.eta_seconds is not None else "?"
        ident = f"#{e.number}" if e.number is not None else f"kt {e.kt_id}"
        acc = f" acc={e.val_accuracy:.3f}" if e.val_accuracy is not None else ""
        if e.n_params is not None:
            over = e.max_params is not None and e.n_params > e.max_params
            acc += f" params={e.n_params}" + (" (infeasible)" if over else "")
        return (f"[{_who(e.label, e.seed, e.worker)}] trial {ident} {e.state:<8} "
                f"{e.objective}={shown}{acc} best={best} | {e.epochs} ep {e.wall:.1f}s"
                f" | budget {e.used}/{e.budget} ep | ETA {eta} | "
                + " ".join(f"{k}={_fmt(v)}" for k, v in e.params.items()))


def _print_flushed(line: str) -> None:
    print(line, flush=True)


def as_printer(printer: ProgressPrinter | Callable[[str], None] | None) -> ProgressPrinter:
    """A ``ProgressPrinter`` from what callers pass: one, a line callback, or None."""
    if isinstance(printer, ProgressPrinter):
        return printer
    return ProgressPrinter(printer)


@dataclass
class _Running:
    """Measurements of the trial in progress."""

    started: float
    epochs: int = 0
    trained: int = 0               # epochs whose training ended (before anything is stored)
    fit_seconds: float = 0.0
    epoch_started: float = 0.0
    n_params: int | None = None
    budget_cut: bool = False
    record_id: int | None = None   # the trial's live record in the store (KerasTuner's searchers)
    intermediate: dict[int, float] = field(default_factory=dict)
    logs: dict[int, dict[str, float]] = field(default_factory=dict)
    epoch_seconds: dict[int, float] = field(default_factory=dict)  # fit seconds per epoch
    epoch_seconds_open: float = 0.0


class TrialTracker:
    """Per-run bookkeeping shared by all searchers.

    ``study`` is the run's study: the Optuna-backed oracle decides in it, KerasTuner's
    oracles are mirrored into it. ``tb`` is a ``bench.run.tblog.HParamsLogger`` (or None).
    """

    def __init__(self, study: optuna.Study, budget: Budget, *, label: str, seed: int,
                 dataset: str, objective: str = schema.OBJECTIVE, tb: Any = None,
                 worker: str | None = None,
                 printer: ProgressPrinter | Callable[[str], None] | None = None,
                 records_live: bool = True, trial_cap: int | None = None,
                 objectives: Sequence[str] = (), max_params: int | None = None) -> None:
        """``records_live`` (the searcher's ``Searcher.records_live``): True, the tuner's
        oracle (an ``OptunaOracle``) records each trial in the study itself; False, the
        searcher decides outside the study (KerasTuner's own), so each trial is mirrored
        here as it runs: RUNNING with every epoch's value, then finished. A process killed
        mid-trial thus leaves the epochs it spent in the store, and the next run counts
        them (``bench.run.dead_trials.fail_dead_trials``).
        ``printer``: where progress goes (a ``ProgressPrinter``, or a callback for its lines).
        ``trial_cap``: this process runs at most that many trials (``bench.run.supervisor``
        replaces it with a fresh one, which resumes the study).
        ``objectives``: several make a multi-objective run: a trial's values are each
        objective at the epoch KerasTuner chose (``searchers.objectives.values_of``),
        mirrored as the trial's values; per-epoch intermediate values, the progress line
        and "best so far" stay on the first one (``objective``). ``max_params``: the size
        cap, mirrored as Optuna's constraint ``n_params - max_params``."""
        self.study, self.budget, self.label, self.seed = study, budget, label, seed
        self.records_live = records_live
        self.dataset, self.objective, self.tb, self.worker = dataset, objective, tb, worker
        self.objectives = list(objectives) or [objective]
        if len(self.objectives) > 1:
            self.objective = self.objectives[0]
        self.max_params = max_params
        # the first objective's direction: what "best so far" means
        self._sign = -1.0 if schema.OBJECTIVE_DIRECTIONS.get(self.objective) == "maximize" else 1.0
        # Workers share the budget: read it from the store (this epoch is reported there
        # already), so N workers stop together instead of overshooting.
        self.shared = worker is not None
        self.printer = as_printer(printer)
        self.mirrored = store.recorded_kt_ids(study)
        self.used_at_start = store.epochs_used(study)
        self.used_base = self.used_at_start
        self.run_started = time.monotonic()
        # the study's, on resume too: the first objective (``t.value`` raises on several),
        # feasible trials only (a size cap)
        values = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if t.values and all(c <= 0 for c in t.constraints.values())]
        self.best: float | None = (min(values, key=lambda v: self._sign * v) if values
                                   else None)
        self.counts = {s: 0 for s in ("COMPLETE", "PRUNED", "FAIL")}
        self.trial_cap = trial_cap
        self.capped = False  # True once the search stopped because of ``trial_cap``
        self._running: dict[str, _Running] = {}
        self._pending_start: float | None = None
        # --artifacts for a searcher that does not record live (KerasTuner's own): the
        # study's best k checkpoints go to the artifact store from here (OptunaSearch
        # does it itself): a searchers.checkpoint_artifacts.CheckpointArtifacts
        self.checkpoints: Any = None

    # ---- budget ---------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the epochs used from the store (other workers); True if budget spent."""
        self.used_base = store.epochs_used(self.study)
        return self.budget.spent(self.used_base)

    def at_cap(self) -> bool:
        """True when this process has run its share of trials (see ``trial_cap``)."""
        self.capped = self.trial_cap is not None and sum(self.counts.values()) >= self.trial_cap
        return self.capped

    def used(self, trial_id: str | None = None) -> int:
        running = self._running.get(trial_id) if trial_id else None
        return self.used_base + (running.epochs if running else 0)

    # ---- trial lifecycle (called from the mixin's KerasTuner hooks) ----------------------
    def before_create(self) -> None:
        self._pending_start = time.perf_counter()

    def training_seed(self, trial_id: str) -> int:
        """The seed a trial's weights and shuffling start from: the run's seed and the
        trial's id, not the trial's place in its process, so a trial trains the same in a
        replaced trial process, and two trainings of one configuration (``bench record``'s
        repeats) differ."""
        return (self.seed * 1_000_003 + zlib.crc32(str(trial_id).encode())) % 2**32

    def begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        start = self._pending_start or time.perf_counter()
        run = self._running[trial.trial_id] = _Running(started=start)
        if not self.records_live and trial.trial_id not in self.mirrored:
            run.record_id = self._open_record(trial)
        if self.tb:
            self.tb.start_trial(self._tb_id(trial), dict(trial.hyperparameters.values))

    def epoch_begin(self, trial_id: str) -> None:
        self._running[trial_id].epoch_started = time.perf_counter()

    def epoch_stop(self, trial_id: str) -> None:
        """The epoch's training and validation are done: what follows (a report to the
        study, a mirrored record, TensorBoard) is the tuner's overhead, for every searcher."""
        run = self._running[trial_id]
        run.epoch_seconds_open = time.perf_counter() - run.epoch_started
        run.fit_seconds += run.epoch_seconds_open
        run.trained += 1

    def epoch_end(self, trial: keras_tuner.engine.trial.Trial, model: Any, epoch: int,
                  logs: dict[str, float]) -> bool:
        """Record one epoch; True when the budget says this trial must stop now."""
        run = self._running[trial.trial_id]
        run.epochs += 1
        if run.n_params is None:
            run.n_params = int(model.count_params())
        logs = {k: float(v) for k, v in (logs or {}).items()}
        run.logs[epoch + 1] = logs
        run.epoch_seconds[epoch + 1] = run.epoch_seconds_open
        if self.objective in logs:
            run.intermediate[epoch + 1] = logs[self.objective]
            value = logs[self.objective]
            if run.record_id is not None and math.isfinite(value):
                seam.storage_of(self.study).set_trial_intermediate_value(run.record_id, epoch + 1,
                                                                         value)
        if self.tb:
            self.tb.log_epoch(self._tb_id(trial), epoch + 1, logs)
        used = store.epochs_used(self.study) if self.shared else self.used(trial.trial_id)
        if self.budget.spent(used):
            planned = getattr(getattr(model, "history", None), "params", {}).get("epochs")
            run.budget_cut = self.budget.cut_short(epoch, planned)
            return True
        return False

    def attrs(self, trial: keras_tuner.engine.trial.Trial) -> dict[str, Any]:
        """User attrs of a trial (before its status is known)."""
        run = self._running[trial.trial_id]
        best_epoch = (min(run.intermediate, key=run.intermediate.__getitem__)
                      if run.intermediate else None)
        attrs: dict[str, Any] = {
            schema.T_SEARCHER: self.label, schema.T_SEED: self.seed,
            schema.T_DATASET: self.dataset, schema.T_EPOCHS: run.epochs,
            schema.T_WALL: round(time.perf_counter() - run.started, 4),
            schema.T_FIT: round(run.fit_seconds, 4), schema.T_PARAMS: run.n_params,
            schema.T_KT_ID: trial.trial_id, schema.T_PROCESS: _process(),
            schema.T_TRAIN_SEED: self.training_seed(trial.trial_id),
        }
        if best_epoch is not None and "val_accuracy" in run.logs[best_epoch]:
            attrs[schema.T_VAL_ACC] = run.logs[best_epoch]["val_accuracy"]
        if run.logs:
            attrs[schema.T_CURVE] = _curve(run)
        if self.worker:
            attrs["worker"] = self.worker
        if run.budget_cut:
            attrs[schema.T_BUDGET_CUT] = True
        attrs.update({k: v for k, v in trial.hyperparameters.values.items() if k.startswith("tuner/")})
        return attrs

    def wall(self, trial_id: str) -> float:
        return round(time.perf_counter() - self._running[trial_id].started, 4)

    def unstored_epochs(self, oracle: Any) -> dict[int, int]:
        """Epochs each running trial trained, by its storage id: what a store outage kept
        from being written (``bench.core.unstored`` keeps them for the resume to count)."""
        out = {}
        for trial_id, run in self._running.items():
            record = run.record_id
            if record is None and self.records_live:
                live = oracle.optuna_trial(trial_id)
                record = seam.storage_trial_id(live) if live is not None else None
            if record is not None and run.trained:
                out[int(record)] = run.trained
        return out

    def drop(self, trial_id: str) -> None:
        """Forget a trial that another process ended meanwhile (a stale heartbeat): its
        epochs are that process's to count, its result is not this run's."""
        self._running.pop(trial_id, None)
        self.printer.note(self.label, self.seed, self.worker,
                          f"trial {trial_id} was ended by another process while this one was "
                          "stalled (its heartbeat went stale): dropped, the search goes on")

    def end(self, trial: keras_tuner.engine.trial.Trial, attrs: dict[str, Any],
            mirror: bool, number: int | None = None) -> int | None:
        """Store (mirror) the finished trial, close its TensorBoard session, print a line;
        returns the storage id of the mirrored record (None: not mirrored here)."""
        run = self._running.pop(trial.trial_id)
        state = _STATES.get(trial.status, TrialState.FAIL)
        value = trial.score if state == TrialState.COMPLETE else None
        values = [value] if value is not None else None
        if state == TrialState.COMPLETE and len(self.objectives) > 1:
            # KerasTuner's score is its sum; the study gets each objective at that epoch
            from searchers import objectives as mo  # imports TensorFlow: only in a trial's process
            values = mo.values_of(trial, self.objectives)
            if values is None:
                state, value = TrialState.FAIL, None
                attrs[schema.T_ERROR] = (f"an objective of {', '.join(self.objectives)} is "
                                         "missing from the trial's metrics")
            else:
                value = values[0]
        if values is not None and not all(math.isfinite(v) for v in values):
            state, value, values = TrialState.FAIL, None, None
        if state == TrialState.FAIL and trial.message:
            attrs[schema.T_ERROR] = trial.message.strip()[-2000:]
        constraint = (float(run.n_params) - float(self.max_params)
                      if self.max_params is not None and run.n_params is not None else None)
        if mirror:
            attrs[schema.T_WALL] = round(time.perf_counter() - run.started, 4)
        if mirror and run.record_id is not None:
            self._close_record(run.record_id, state, values, attrs, constraint)
            self.mirrored.add(trial.trial_id)
            number = seam.storage_of(self.study).get_trial_number_from_id(run.record_id)
        self.used_base += run.epochs
        self.counts[state.name] += 1
        feasible = constraint is None or constraint <= 0
        if value is not None and feasible and (
                self.best is None or self._sign * value < self._sign * self.best):
            self.best = value
        if self.tb:
            final = {"epochs_trained": float(run.epochs)}
            if values is not None:  # pruned / failed trials leave the objective cells blank
                final.update(zip(self.objectives, values))
            if schema.T_VAL_ACC in attrs:
                final["val_accuracy"] = attrs[schema.T_VAL_ACC]
            self.tb.end_trial(self._tb_id(trial), state.name, final)
        self.printer.trial_ended(self._event(trial, state, value, run, attrs, number))
        return run.record_id if mirror else None

    # ---- live records of KerasTuner's trials -------------------------------------------
    def _open_record(self, trial: keras_tuner.engine.trial.Trial) -> int:
        """A RUNNING trial in the study with KerasTuner's values, in one transaction."""
        params, dists = active_params(trial.hyperparameters)
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING, params=params, distributions=dists,
            user_attrs={schema.T_SEARCHER: self.label, schema.T_SEED: self.seed,
                        schema.T_DATASET: self.dataset, schema.T_KT_ID: trial.trial_id})
        # Optuna's public add_trial does not say which trial it created; the storage does.
        return seam.storage_of(self.study).create_new_trial(seam.study_id(self.study),
                                                            template_trial=template)

    def _close_record(self, record_id: int, state: TrialState, values: list[float] | None,
                      attrs: dict[str, Any], constraint: float | None = None) -> None:
        storage = seam.storage_of(self.study)
        for key, item in attrs.items():
            storage.set_trial_user_attr(record_id, key, item)
        if constraint is not None:
            # Optuna's constraint attr, in the form Optuna itself writes it (its public
            # create_trial(constraints=...) makes the system attr; trial.set_constraint
            # needs a live trial, and this record was created through the storage)
            form = optuna.trial.create_trial(state=TrialState.RUNNING,
                                             constraints={schema.MAX_PARAMS_CONSTRAINT: constraint})
            for key, item in form.system_attrs.items():
                storage.set_trial_system_attr(record_id, key, item)
        storage.set_trial_state_values(record_id, state, values)

    # ---- presentation ------------------------------------------------------------------
    def _tb_id(self, trial: keras_tuner.engine.trial.Trial) -> str:
        return f"{self.worker}-{trial.trial_id}" if self.worker else str(trial.trial_id)

    def _event(self, trial: keras_tuner.engine.trial.Trial, state: TrialState,
               value: float | None, run: _Running, attrs: dict[str, Any],
               number: int | None) -> TrialEvent:
        used = self.used_base
        elapsed = time.monotonic() - self.run_started
        done_here = used - self.used_at_start
        eta = (max(0.0, elapsed / done_here * (self.budget.epochs - used))
               if done_here > 0 else None)
        params, _ = active_params(trial.hyperparameters)
        return TrialEvent(
            label=self.label, seed=self.seed, worker=self.worker, number=number,
            kt_id=str(trial.trial_id), state=state.name, objective=self.objective,
            value=value, val_accuracy=attrs.get(schema.T_VAL_ACC), best=self.best,
            epochs=run.epochs, wall=attrs[schema.T_WALL], used=used,
            budget=self.budget.epochs, eta_seconds=eta, params=params,
            n_params=(run.n_params if len(self.objectives) > 1 or self.max_params is not None
                      else None),
            max_params=self.max_params)


_CURVE_KEYS = ("val_loss", "val_accuracy", "loss", "accuracy")


def _curve(run: _Running) -> dict[str, list[float | None]]:
    """Every epoch's metrics and fit seconds, as lists over ``epochs`` (absolute epoch
    numbers: a Hyperband continuation starts after its initial epoch). What ``bench record``
    keeps and the replay surrogate learns from; about 1 kB per trial."""
    epochs = sorted(run.logs)
    curve: dict[str, list[Any]] = {"epochs": epochs}
    for key in _CURVE_KEYS:
        if any(key in run.logs[e] for e in epochs):
            curve[key] = [_finite(run.logs[e].get(key)) for e in epochs]
    curve["seconds"] = [round(run.epoch_seconds.get(e, 0.0), 4) for e in epochs]
    return curve


def _finite(value: float | None) -> float | None:
    """As reported (a replay of the run must see the very values its searcher saw)."""
    return value if value is not None and math.isfinite(value) else None


def _process() -> dict[str, Any]:
    """Which process ran the trial and its resident memory then (``bench memory``)."""
    import psutil
    return {"pid": os.getpid(), "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_seconds(s: float) -> str:
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


if TYPE_CHECKING:  # mypy sees the Tuner hooks the mixin overrides (untyped: Any)
    _TunerHooks: TypeAlias = keras_tuner.Tuner
else:  # at run time a plain mixin; tracked() puts the real Tuner class after it
    _TunerHooks = object


class TrackingMixin(_TunerHooks):
    """KerasTuner hooks -> ``TrialTracker``. Put before the Tuner class in the MRO."""

    passes_fit_args_through = True  # its run_trial hands them on unchanged (OptunaSearch)

    def __init__(self, *args: Any, tracker: TrialTracker, **kwargs: Any) -> None:
        self.tracker = tracker
        self._ending: dict[str, Any] = {}
        super().__init__(*args, **kwargs)
        if tracker.records_live:  # the searcher says its oracle records in the study
            _live_oracle(self.oracle).before_tell = self._before_tell

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        if self.tracker.refresh():
            return  # budget already spent (a finished run re-run): nothing to do
        super().search(*fit_args, **fit_kwargs)

    def pre_create_trial(self) -> None:
        super().pre_create_trial()
        if self.tracker.refresh() or self.tracker.at_cap():
            # KerasTuner's oracles stop on max_trials: make "no more trials" the answer.
            self.oracle.max_trials = max(len(self.oracle.trials), 1)
        self.tracker.before_create()

    def on_trial_begin(self, trial) -> None:
        super().on_trial_begin(trial)
        import keras
        keras.utils.set_random_seed(self.tracker.training_seed(trial.trial_id))
        self.tracker.begin(trial)

    def on_epoch_begin(self, trial, model, epoch, logs=None) -> None:
        super().on_epoch_begin(trial, model, epoch, logs)
        self.tracker.epoch_begin(trial.trial_id)

    def on_epoch_end(self, trial, model, epoch, logs=None) -> None:
        self.tracker.epoch_stop(trial.trial_id)  # before the searcher's own epoch work
        super().on_epoch_end(trial, model, epoch, logs)
        if self.tracker.epoch_end(trial, model, epoch, logs or {}):
            model.stop_training = True

    def run_trial(self, trial, *args: Any, **kwargs: Any):
        try:
            return super().run_trial(trial, *args, **kwargs)
        except Exception as exc:
            if is_disk_full(exc):  # not this trial's fault: every next one would fail too
                import keras_tuner
                raise keras_tuner.errors.FatalError(str(exc)) from exc
            raise

    def _run_and_update_trial(self, trial, *fit_args: Any, **fit_kwargs: Any) -> None:
        from searchers.resilient_storage import outage_ends_search
        with outage_ends_search():  # KerasTuner's own searchers too
            super()._run_and_update_trial(trial, *fit_args, **fit_kwargs)

    def on_trial_end(self, trial) -> None:
        self._ending = attrs = self.tracker.attrs(trial)
        records_live = self.tracker.records_live
        live = self.oracle.optuna_trial(trial.trial_id) if records_live else None
        number = live.number if live is not None else None
        planned = self._plan_checkpoint(trial, attrs)
        try:
            super().on_trial_end(trial)  # the oracle ends the trial (Optuna: _before_tell)
        finally:
            ended = self.oracle.trials[trial.trial_id]
            if trial.trial_id in getattr(self.oracle, "lost", ()):  # another process ended it
                self.tracker.drop(trial.trial_id)
            elif ended.trial_id not in seam.retry_queue(self.oracle):  # else run again
                record = self.tracker.end(ended, attrs, mirror=not records_live, number=number)
                if self.tracker.checkpoints is not None:  # KerasTuner's own searchers
                    from searchers.checkpoint_artifacts import checkpoint_paths
                    self.tracker.checkpoints.trial_ended(
                        record, planned, checkpoint_paths(self._get_checkpoint_fname(trial.trial_id)),
                        ARTIFACT_BEST_K)

    def _plan_checkpoint(self, trial, attrs: dict[str, Any]) -> dict[str, str] | None:
        """A mirrored trial's artifact ids, stored with its other attrs (--artifacts)."""
        import keras_tuner
        if (self.tracker.checkpoints is None
                or trial.status != keras_tuner.engine.trial.TrialStatus.COMPLETED):
            return None
        from searchers.checkpoint_artifacts import CHECKPOINT_ATTR, CheckpointArtifacts, checkpoint_paths
        paths = checkpoint_paths(self._get_checkpoint_fname(trial.trial_id))
        if not paths:
            return None
        attrs[CHECKPOINT_ATTR] = planned = CheckpointArtifacts.plan(paths)
        return planned

    def _before_tell(self, trial_id: str, live: optuna.Trial) -> None:
        """Optuna-backed oracle hook: attrs on the live trial, timed like a mirrored one."""
        attrs = self._ending
        attrs[schema.T_WALL] = self.tracker.wall(trial_id)
        for key, value in attrs.items():
            live.set_user_attr(key, value)


# --artifacts with KerasTuner's own searchers: the checkpoints of the study's best k trials
# are kept in the artifact store (OptunaSearch's keep_best_checkpoints default)
ARTIFACT_BEST_K = 3


def _live_oracle(oracle: Any) -> Any:
    """The oracle of a searcher that records live: it must be an ``OptunaOracle``."""
    from searchers.optuna_oracle import OptunaOracle
    if not isinstance(oracle, OptunaOracle):
        raise TypeError(f"records_live: the tuner's oracle must be an OptunaOracle, not "
                        f"{type(oracle).__name__} (a KerasTuner oracle is mirrored: "
                        "TrialTracker(records_live=False))")
    return oracle


def tracked(tuner_cls: type[keras_tuner.Tuner]) -> type[keras_tuner.Tuner]:
    """``tuner_cls`` with the benchmark's tracking hooks."""
    return type(f"Tracked{tuner_cls.__name__}", (TrackingMixin, tuner_cls), {})
