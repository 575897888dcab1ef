"""A KerasTuner ``Oracle`` whose decisions come from an Optuna study.

KerasTuner's split is kept: the oracle decides what to try, the tuner runs it. This
oracle asks the study for each new trial (define-by-run over KerasTuner's space, so
conditional scopes and hyperparameters that appear in a later build work), reports
per-epoch values to it (pruning), and tells it the result. Everything else of
KerasTuner (``search``, ``results_summary``, ``get_best_models``, resume, retries) comes
along unchanged.

Trial allocation: when ``max_trials`` is set, a worker runs a trial only after taking a
trial "ticket" (a WAITING trial) atomically; the tickets are issued once by whoever starts
several workers (``manage_tickets=False`` for them), or, by a process that manages its own,
one at a time just before it takes one (none is left waiting when it stops; tickets beyond
a lowered ``max_trials`` are withdrawn). Several processes or machines sharing the study
therefore run exactly ``max_trials`` trials, never more. FAIL trials do not use up a ticket: an interrupted
search fails its running trial, a killed worker's trial is failed once its heartbeat goes
stale (by the next worker that looks, which reissues its ticket), so a run or re-run always
reaches ``max_trials``.

Trial ids: a KerasTuner trial's id is the number of the study trial it first ran as
(zero-padded like KerasTuner's), not a count of this process's trials: study numbers are
unique, so two processes or machines sharing a study never give two trials one id (their
checkpoint folders, TensorBoard runs and ``kt_trial_id`` attrs stay apart). The best
trials are the study's (``get_best_trials``), whichever process trained them.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import warnings
from typing import Any, Callable, Iterator, Literal

import keras_tuner
import optuna
from keras_tuner.engine.trial import Trial as KTTrial
from keras_tuner.engine.trial import TrialStatus
from optuna.trial import TrialState

from searchers import objectives, ranking, resilient_storage, seam
from searchers import warm_start as warm_start_module
from searchers.errors import ConfigError
from searchers.optuna_components import default_pruner, default_sampler
from searchers.seam import suggest
from searchers.tickets import top_up_tickets, withdraw_extra_tickets  # also imported from here

_KT_ID = "kt_trial_id"
_STUDY_TRIAL = "study_trial_id"  # set on a stand-in KerasTuner trial: its study trial's storage id
log = logging.getLogger(__name__)


class _Heartbeat(threading.Thread):
    """Records the running trial's heartbeat so a killed worker's trial can be failed."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int, interval: float):
        super().__init__(daemon=True)
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                # BaseStorage lacks it; only heartbeat storages (RDB) get a _Heartbeat
                self._storage.record_heartbeat(self._trial_id)  # type: ignore[attr-defined]
            except Exception:  # a missed beat must not kill training
                log.debug("heartbeat of trial %s not recorded", self._trial_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()


_PARAM, _USER_ATTR = seam.PARAM_WRITE, seam.USER_ATTR_WRITE


class _DeferredWrites:
    """Stands in for the storage of one ``optuna.Trial`` while its values are suggested.

    ``set_trial_param`` and ``set_trial_user_attr`` calls for that trial are recorded, in
    order, instead of being written (each would be a transaction and a commit of its own);
    every other call (reads, other trials) goes to the real storage. ``Trial._suggest``
    updates the trial's cached frozen trial itself, so the trial and its sampler see the
    values as before. See ``_writes_at_once``.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self.writes: list[tuple[Any, ...]] = []

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: optuna.distributions.BaseDistribution) -> None:
        if trial_id != self._trial_id:
            return self._storage.set_trial_param(trial_id, param_name, param_value_internal,
                                                 distribution)
        self.writes.append((_PARAM, trial_id, param_name, param_value_internal, distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id != self._trial_id:
            return self._storage.set_trial_user_attr(trial_id, key, value)
        self.writes.append((_USER_ATTR, trial_id, key, value))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


@contextlib.contextmanager
def _writes_at_once(otrial: optuna.Trial) -> Iterator[None]:
    """Within: the parameter and user-attr writes of ``otrial`` are held back; on leaving,
    they reach the store together (one transaction for an RDB store, see
    ``seam.write_in_one_transaction``). Left by an error, what was held back is still written
    (best effort; the error is the one raised), so the store holds what Optuna's own
    write-per-call would have left there."""
    real = seam.trial_storage(otrial)
    deferred = _DeferredWrites(real, seam.storage_trial_id(otrial))
    seam.set_trial_storage(otrial, deferred)  # duck-typed stand-in, see _DeferredWrites
    try:
        yield
    except BaseException:
        seam.set_trial_storage(otrial, real)
        try:
            _write_all(real, deferred.writes)
        except Exception:  # the error that stopped the suggestions matters
            log.debug("held-back writes of an interrupted suggestion failed", exc_info=True)
        raise
    seam.set_trial_storage(otrial, real)
    _write_all(real, deferred.writes)


def _write_all(storage: optuna.storages.BaseStorage, writes: list[tuple[Any, ...]]) -> None:
    """Write recorded ``_DeferredWrites``: in one transaction where the storage allows,
    else (another storage, or the transaction failed: it wrote nothing) one call each, in
    order, exactly as the trial would have written them; a write that fails then raises
    as it would have."""
    if not writes:
        return
    try:
        if seam.write_in_one_transaction(storage, writes):  # looked up here: the profiler times it
            return
    except Exception:  # rolled back; the calls below write or raise as usual
        log.debug("one-transaction write failed; writing call by call", exc_info=True)
    for kind, *args in writes:
        if kind == _PARAM:
            storage.set_trial_param(*args)
        else:
            storage.set_trial_user_attr(*args)


# Two processes opening one new SQLite store at once both create its tables; the loser sees
# "table ... already exists" or alembic_version's UNIQUE constraint. The store is whole by
# then: opening it again succeeds.
_SCHEMA_RACE_TRIES, _SCHEMA_RACE_PAUSE = 5, 0.2


def _create_study(**kwargs: Any) -> optuna.Study:
    """``optuna.create_study``, again (briefly) when another process was creating the same
    new store's schema at that moment."""
    from sqlalchemy.exc import IntegrityError, OperationalError
    url = kwargs.get("storage")
    for attempt in range(_SCHEMA_RACE_TRIES):
        try:
            if isinstance(url, str):  # rides out a short outage (made here: it makes the schema)
                kwargs["storage"] = resilient_storage.open_url(url)
            return optuna.create_study(**kwargs)
        except (IntegrityError, OperationalError) as exc:
            race = "already exists" in str(exc) or "alembic_version" in str(exc)
            if not race or attempt == _SCHEMA_RACE_TRIES - 1:
                raise
            time.sleep(_SCHEMA_RACE_PAUSE * (attempt + 1))
    raise AssertionError("unreachable")


def _direction(objective: Any) -> Literal["minimize", "maximize"]:
    return "maximize" if getattr(objective, "direction", "min") == "max" else "minimize"


class OptunaOracle(keras_tuner.Oracle):
    """KerasTuner oracle backed by an Optuna study (any sampler, any pruner).

    Args:
        objective, max_trials, seed, hyperparameters, allow_new_entries,
        tune_new_entries, max_retries_per_trial, max_consecutive_failed_trials:
            as for every KerasTuner oracle.
        study: an existing ``optuna.Study``; or give ``storage`` and ``study_name``.
        sampler, pruner: used when the oracle creates the study (default: TPE seeded
            with ``seed``, and successive halving from epoch 2: the benchmark's choice,
            ``searchers.optuna_components``; ``optuna.pruners.NopPruner()`` trains every
            trial to the end as KerasTuner does).
        storage: an Optuna storage or URL. Resume needs a persistent one (SQLite,
            PostgreSQL, MySQL): a retried trial must still exist in the study.
        manage_tickets: with ``max_trials``, issue the trial tickets here (True), or only
            take tickets issued once by whoever started several workers on the study
            (False; see ``searchers.tickets.top_up_tickets``).
        multi_objective: with a list of objectives, run a multi-objective study (one
            direction per objective, every value told; ``searchers.objectives``) instead of
            KerasTuner's sum of them. No pruner can act on several objectives (Optuna's
            ``Trial.report`` refuses them): passing one other than ``NopPruner`` is an
            error, and the default is no pruning. ``get_best_trials`` then returns the
            Pareto-optimal (feasible) trials ordered by the first objective, then the
            other finished trials by the first objective.
        warm_start: a KerasTuner project directory or an ``optuna.Study`` whose finished
            trials become the study's history before the first new trial
            (``searchers.warm_start``); ``max_trials`` counts new trials only.
        max_params: a cap on the model's parameter count: larger models are marked
            infeasible with Optuna's constraint API (``set_constraint("max_params",
            n_params - max_params)``); they are trained and kept, and samplers that
            handle constraints (TPE, NSGA-II, GP) steer away from them.
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = None,
        *,
        study: optuna.Study | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        manage_tickets: bool = True,
        multi_objective: bool = False,
        max_params: int | None = None,
        warm_start: Any = None,
    ) -> None:
        if objective is not None:
            objective = objectives.create_objective(objective)  # knows "params"
        self.multi_objective = bool(multi_objective)
        self.max_params = objectives.check_max_params(max_params)
        if self.multi_objective:
            if len(objectives.objectives_of(objective)) < 2:
                raise ValueError("multi_objective=True needs a list of at least two objectives, "
                                 f"got {objective!r}")
            objectives.check_pruner(pruner, objective)
            pruner = pruner or optuna.pruners.NopPruner()
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        given = study
        if study is None:
            study = _create_study(
                storage=storage,
                study_name=study_name,
                sampler=sampler or default_sampler(seed),
                pruner=pruner or default_pruner(),
                directions=self._directions(),
                load_if_exists=True,
            )
            n_existing = len(study.trials)
            if sampler is None and seed is not None and n_existing:
                # A resumed study: a sampler seeded as in the first run would replay the
                # configurations already tried (its random draws ignore the history).
                # Offset the seed by the study's size: still deterministic, not a replay.
                study.sampler = default_sampler((seed + n_existing) % 2**32)
        self.study = study
        self._history = warm_start_module.load_history(warm_start) if warm_start is not None else None
        if self._history is not None and self.multi_objective:
            raise ConfigError("warm_start takes a single-objective history; this search has "
                              "several objectives")
        if len(study.directions) != len(self._directions()):
            raise ValueError(
                f"study {study.study_name!r} has {len(study.directions)} objective(s), this "
                f"search {len(self._directions())} ({', '.join(self._metric_names())}): use "
                "another study name, or the same objectives as the study")
        self._check_objectives(study, named_by_us=given is None)
        if study.metric_names is None:  # the dashboard shows "Objective 0" without a name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self._metric_names())
        self._storage = seam.storage_of(study)
        self._study_id = self._storage.get_study_id_from_name(study.study_name)
        self._live: dict[str, optuna.Trial] = {}          # KerasTuner trial id -> live trial
        self._optuna_ids: dict[str, int] = {}              # persisted with the oracle state
        self._pruned: set[str] = set()
        self._heartbeats: dict[str, _Heartbeat] = {}
        self._reported: dict[str, set[int]] = {}
        self._stand_ins: dict[int, KTTrial] = {}           # study trials of other processes
        self.lost: set[str] = set()  # trials another process ended meanwhile (see _lost)
        # User attrs to set on a trial just before its result is told (kt id -> attrs),
        # in the same commit as the others (OptunaSearch: where its checkpoint goes).
        self.tell_attrs: dict[str, dict[str, Any]] = {}
        # False: only take tickets issued elsewhere (see top_up_tickets), never issue any.
        self.manage_tickets = manage_tickets
        # Called with (kt_trial_id, optuna_trial) just before the result is told, so a
        # caller can attach user attrs while the trial still accepts them.
        self.before_tell: Callable[[str, optuna.Trial], None] | None = None
        # Set when the process was asked to stop (see OptunaSearch.search): checked before
        # every new trial, so a KeyboardInterrupt that Python swallowed still stops us.
        self.stop_requested = False

    # ---- what KerasTuner asks of an oracle ---------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """KerasTuner's hook, for a caller that drives the oracle itself (new trials of a
        search come from ``create_trial``, whose ids follow the study)."""
        self.check_stop()
        self._fail_stale()
        otrial = self._take_trial()
        if otrial is None:
            return {"status": TrialStatus.STOPPED, "values": None}
        return {"status": TrialStatus.RUNNING, "values": self._suggest_all(trial_id, otrial)}

    def _suggest_all(self, trial_id: str, otrial: optuna.Trial) -> dict[str, Any]:
        """The trial's values, suggested by the study over KerasTuner's space (active
        hyperparameters only, as ``Oracle._random_values`` walks it)."""
        hps = keras_tuner.HyperParameters()
        # The trial's parameters and kt_trial_id reach the store in one commit, not one
        # commit each (6-14 ms apiece on a slow disk, inside the trial's overhead).
        with _writes_at_once(otrial):
            self._start(trial_id, otrial)  # first: from here on an interrupt fails it
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):  # only active hyperparameters are suggested
                    hps.values[hp.name] = suggest(otrial, hp)
        return hps.values

    @keras_tuner.synchronized  # as KerasTuner asks of overrides (a lock only for its gRPC chief)
    def create_trial(self, tuner_id: str) -> KTTrial:
        if tuner_id in self.ongoing_trials or seam.retry_queue(self):
            trial = super().create_trial(tuner_id)  # the same trial, or KerasTuner's retry
            if trial.status == TrialStatus.RUNNING and trial.trial_id not in self._live:
                # KerasTuner retries a trial that a crashed process left unfinished.
                if not self._restart(trial):
                    self._skip_retry(tuner_id, trial)
                    return self.create_trial(tuner_id)
            return trial
        return self._create_new_trial(tuner_id)

    def _create_new_trial(self, tuner_id: str) -> KTTrial:
        """KerasTuner's ``Oracle.create_trial`` for a new trial, but the id comes from the
        study trial it runs as (see the module docstring), known only once a trial is
        taken: KerasTuner numbers from ``len(self.trials)``, which each process counts
        for itself."""
        seam.tuner_ids(self).add(tuner_id)
        if self._history is not None:  # the space is known now: KerasTuner declared it
            note = warm_start_module.add_history(self.study, self._history, self.hyperparameters,
                                                 self.objective.name)
            if note:
                log.info("%s", note)
            self._history = None
        otrial = None
        # KerasTuner's own limit on this process's trials (a dropped trial is not one of them)
        if not (self.max_trials and len(self.trials) - len(self.lost) >= self.max_trials):
            self.check_stop()
            self._fail_stale()
            otrial = self._take_trial()
        if otrial is None:
            seam.tuner_ids(self).discard(tuner_id)  # KerasTuner's answer: no more trials
            trial_id = f"{{:0{len(str(self.max_trials))}d}}".format(len(self.trials))
            return KTTrial(hyperparameters=self.hyperparameters.copy(), trial_id=trial_id,
                           status=TrialStatus.STOPPED)
        trial_id = self._trial_id_for(otrial.number)
        hps = self.hyperparameters.copy()
        hps.values = self._suggest_all(trial_id, otrial)
        trial = KTTrial(hyperparameters=hps, trial_id=trial_id, status=TrialStatus.RUNNING)
        seam.begin_new_trial(self, tuner_id, trial)
        return trial

    def _trial_id_for(self, number: int) -> str:
        """The KerasTuner id of a new trial that runs as study trial ``number``: the
        number, padded to ``max_trials``' width as KerasTuner pads its own count. Only a
        project begun before ids came from the study can hold that id already (its ids
        counted this process's trials); such a trial gets ``n<number>``, a form no
        count-based id takes."""
        trial_id = f"{{:0{len(str(self.max_trials))}d}}".format(number)
        return f"n{number}" if trial_id in self.trials else trial_id

    def report(self, trial_id: str, value: float, step: int, final: bool = False) -> bool:
        """Report an intermediate objective value; True when the pruner says stop.

        ``final``: the training's last epoch. The value is stored, but the pruner is not
        asked: stopping now would save no compute, so the trial completes with its value
        (a PRUNED trial is one that trained less than it was given; Optuna's samplers rank
        pruned trials below completed ones). It also spares a store read, and a rung write
        where the epoch is a successive-halving rung.

        Multi-objective: ``value`` is the first objective's; it is stored as the epoch's
        intermediate value (what counts a killed trial's epochs, and draws its curve) but
        nothing prunes: Optuna's ``Trial.report`` refuses several objectives."""
        if trial_id in self._pruned:
            return True  # a later execution (executions_per_trial > 1) of a pruned trial
        otrial = self._live.get(trial_id)
        if otrial is None or value is None:
            return False
        reported = self._reported.setdefault(trial_id, set())
        if step in reported:
            return False  # a second execution of the same epoch: the first value stays
        reported.add(step)
        if self.multi_objective:
            self._storage.set_trial_intermediate_value(seam.storage_trial_id(otrial), step,
                                                       float(value))
            return False
        try:
            otrial.report(float(value), step)
        except optuna.exceptions.UpdateFinishedTrialError:
            return self._lost(trial_id)
        if not final and otrial.should_prune():
            self._pruned.add(trial_id)
            return True
        return False

    def _lost(self, trial_id: str) -> bool:
        """Another process finished this trial (failed it as stale while this one was
        frozen, and reissued its ticket): it is not ours any more. Dropped quietly, once:
        training stops, nothing more is written to it, the search goes on."""
        self.lost.add(trial_id)
        otrial = self._live.pop(trial_id, None)
        beat = self._heartbeats.pop(trial_id, None)
        if beat:
            beat.stop()
        if otrial is not None:
            log.info("trial #%d was ended by another process (its heartbeat went stale): "
                     "dropped here, its place went to another trial", otrial.number)
        return True

    def will_retry(self, trial_id: str) -> bool:
        """Whether KerasTuner will run this (ended) trial again."""
        return trial_id in seam.retry_queue(self)

    def storage_id_of(self, trial_id: str) -> int | None:
        """The storage id of the Optuna trial that ran KerasTuner trial ``trial_id`` last."""
        return self._optuna_ids.get(trial_id)

    def optuna_trial(self, trial_id: str) -> optuna.Trial | None:
        """The live Optuna trial of a running KerasTuner trial (to set user attrs)."""
        return self._live.get(trial_id)

    def check_stop(self) -> None:
        """Raise KeyboardInterrupt if a stop was requested (a safe point to stop at)."""
        if self.stop_requested:
            raise KeyboardInterrupt

    def stop_heartbeats(self) -> None:
        """Stop beating for trials left open by an interrupted search, so that they go
        stale (and FAIL) instead of holding their place forever."""
        for beat in self._heartbeats.values():
            beat.stop()
        self._heartbeats.clear()

    def fail_live_trials(self, reason: str) -> None:
        """Fail the trials an aborted search leaves open, so that the next launch replaces
        them at once instead of counting them as running until their heartbeat goes stale.
        KerasTuner still retries them with the same values on resume (see ``_restart``)."""
        self.stop_heartbeats()
        for kt_id, otrial in list(self._live.items()):
            try:
                otrial.set_user_attr("error", reason)
                otrial.set_user_attr("interrupted", True)  # ended with its process, not by itself
                otrial.set_user_attr("epochs_trained", len(self._reported.get(kt_id, ())))
                self.study.tell(otrial, state=TrialState.FAIL)
            except Exception as exc:  # best effort: it goes stale without a heartbeat
                log.info("could not fail interrupted trial %s (%s); it goes stale instead",
                         kt_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                log.debug("why trial %s could not be failed", kt_id, exc_info=True)
            self._live.pop(kt_id, None)

    def is_pruned(self, trial_id: str) -> bool:
        """Whether the pruner stopped this trial: it will end STOPPED, not COMPLETED."""
        return trial_id in self._pruned

    @keras_tuner.synchronized
    def end_trial(self, trial: KTTrial) -> None:
        if trial.trial_id in self._pruned:
            trial.status = TrialStatus.STOPPED  # neither best nor a failure
        try:
            super().end_trial(trial)  # may raise after too many consecutive failures
        finally:
            kt_trial = self.trials[trial.trial_id]
            if not self.will_retry(kt_trial.trial_id):  # else KerasTuner runs it again
                self._finish(kt_trial)

    def get_best_trials(self, num_trials: int = 1) -> list[KTTrial]:
        """The study's best trials, whichever process or machine trained them, as
        KerasTuner trials: this project's own where it ran them, a stand-in built from the
        study trial otherwise (``is_local`` tells them apart; ``OptunaSearch.load_model``
        fetches a stand-in's weights from the artifact store). KerasTuner's ranking for
        one objective (by score, COMPLETE trials; while fewer than ``num_trials``, this
        project's other trials after them, in trial order); several: the Pareto-optimal
        feasible trials first, then the other completed ones, each group by the first
        objective (KerasTuner's summed score means nothing across objectives)."""
        ranked: list[KTTrial] = []
        by_storage_id = {sid: kt_id for kt_id, sid in self._optuna_ids.items()}
        for frozen in ranking.best_first(self.study):
            kt_id = self._local_id(frozen, by_storage_id)
            if kt_id is None:
                ranked.append(self._stand_in(frozen))
            elif self.trials[kt_id].status == TrialStatus.COMPLETED:
                ranked.append(self.trials[kt_id])
            if len(ranked) >= num_trials:
                return ranked
        if self.multi_objective:
            return ranked  # as before: only trials with every objective's value
        shown = {t.trial_id for t in ranked}
        completed = [t for t in self.trials.values()
                     if t.status == TrialStatus.COMPLETED and t.trial_id not in shown]
        others = [t for t in self.trials.values() if t.status != TrialStatus.COMPLETED]
        return (ranked + completed + others)[:num_trials]

    def is_local(self, trial: KTTrial) -> bool:
        """Whether this project ran ``trial`` (its folder holds the trial's files)."""
        return self.trials.get(trial.trial_id) is trial

    def study_trial_of(self, trial: KTTrial) -> optuna.trial.FrozenTrial | None:
        """The study trial a KerasTuner trial (this project's, or a stand-in) last ran as."""
        storage_id = getattr(trial, _STUDY_TRIAL, None)
        if storage_id is None:
            storage_id = self._optuna_ids.get(trial.trial_id)
        if storage_id is None:
            return None
        return self._storage.get_trial(storage_id)

    def _local_id(self, frozen: optuna.trial.FrozenTrial, by_storage_id: dict[int, str]) -> str | None:
        """The id of this project's KerasTuner trial that ran as ``frozen``, or None. By
        the study trial's storage id (kept in the oracle's state), never by its
        ``kt_trial_id``: in a study written before ids came from the study, two machines
        could each have a trial "0"."""
        kt_id = by_storage_id.get(seam.storage_trial_id(frozen))
        return kt_id if kt_id in self.trials else None

    def _stand_in(self, frozen: optuna.trial.FrozenTrial) -> KTTrial:
        """A KerasTuner trial for a study trial another process or machine ran: its
        hyperparameters, its value as the score, an id no trial of this project has."""
        storage_id = seam.storage_trial_id(frozen)
        cached = self._stand_ins.get(storage_id)
        if cached is not None:
            return cached
        hps = self.hyperparameters.copy()
        hps.values.update(frozen.params)
        named = frozen.user_attrs.get(_KT_ID)
        trial_id = str(named) if named is not None and named not in self.trials else f"n{frozen.number}"
        trial = KTTrial(hyperparameters=hps, trial_id=trial_id, status=TrialStatus.COMPLETED)
        trial.score = frozen.values[0]
        setattr(trial, _STUDY_TRIAL, storage_id)
        self._stand_ins[storage_id] = trial
        return trial

    def _check_objectives(self, study: optuna.Study, named_by_us: bool) -> None:
        """A study searched for another direction or metric is refused: its best trial would
        be this search's worst (a resumed project, or ``study=``, with another objective).
        Metric names are compared where this oracle named them (a study it opened); a study
        passed in may carry the user's own name."""
        want = [optuna.study.StudyDirection[d.upper()] for d in self._directions()]
        names = self._metric_names()
        theirs = study.metric_names
        if list(study.directions) != want or (named_by_us and theirs is not None and theirs != names):
            them = ", ".join(f"{d.name.lower()} {n}" for d, n in zip(
                study.directions, theirs or ["its objective"] * len(study.directions)))
            us = ", ".join(f"{d} {n}" for d, n in zip(self._directions(), names))
            raise ConfigError(
                f"study {study.study_name!r} is to {them}; this search is to {us}: use another "
                "project_name / study_name, overwrite=True, or the study's own objective")

    def _directions(self) -> list[Literal["minimize", "maximize"]]:
        if self.multi_objective:
            return objectives.optuna_directions(self.objective)
        return [_direction(self.objective)]

    def _metric_names(self) -> list[str]:
        return objectives.names(self.objective) if self.multi_objective else [self.objective.name]

    # ---- KerasTuner state (resume) ------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["optuna_trial_ids"] = dict(self._optuna_ids)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._optuna_ids = dict(state.get("optuna_trial_ids", {}))

    # ---- internals -----------------------------------------------------------------
    def _take_trial(self) -> optuna.Trial | None:
        """A new trial to run, or None when every ticket is used.

        With no ticket left while other trials still run, wait until they finish or one of
        them goes stale (its worker died: failed here, its ticket reissued and taken), at
        most one grace period: by then a dead worker's trial is stale.
        """
        if self.max_trials is None:
            return self.study.ask()
        interval = self._heartbeat_interval()
        grace = seam.grace_period(self._storage) or 2 * (interval or 0)
        deadline = time.monotonic() + (grace + interval if interval else 0)
        while (trial_id := self._take_ticket()) is None:
            running = self._storage.get_all_trials(self._study_id, deepcopy=False,
                                                   states=(TrialState.RUNNING,))
            if not running or time.monotonic() > deadline:
                return None
            time.sleep(interval)  # type: ignore[arg-type]  # None only with a deadline already past
            self.check_stop()
            self._fail_stale()
        return seam.live_trial(self.study, trial_id)

    def _take_ticket(self) -> int | None:
        """Take a ticket (a WAITING trial) atomically: its storage id, None if none left."""
        if self.manage_tickets:  # this process issues its own tickets: one at a time
            withdraw_extra_tickets(self.study, self.max_trials)
            top_up_tickets(self.study, self.max_trials, at_most=1)
        beats = bool(self._heartbeat_interval())
        for waiting in self._storage.get_all_trials(self._study_id, deepcopy=False,
                                                     states=(TrialState.WAITING,)):
            try:
                if beats:  # before taking it: a RUNNING trial must never lack a heartbeat,
                    self._storage.record_heartbeat(  # type: ignore[attr-defined]  # heartbeat storage
                        seam.storage_trial_id(waiting))  # or it never goes stale
                if self._storage.set_trial_state_values(seam.storage_trial_id(waiting),
                                                        TrialState.RUNNING):
                    return seam.storage_trial_id(waiting)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker took it
        return None

    def _heartbeat_interval(self) -> int | None:
        return getattr(self._storage, "get_heartbeat_interval", lambda: None)()

    def _fail_stale(self) -> None:
        """Fail the RUNNING trials whose heartbeat went stale (their worker died).

        As Optuna's ``fail_stale_trials``, plus: with tickets issued elsewhere
        (``manage_tickets`` False) the process whose FAIL went through reissues that
        trial's ticket, exactly once, so the run still reaches ``max_trials``.
        """
        if not self._heartbeat_interval():
            return
        for stale_id in seam.stale_trial_ids(self._storage, self._study_id):
            try:
                failed = self._storage.set_trial_state_values(stale_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first
            if failed and self.max_trials and not self.manage_tickets:
                self.study.enqueue_trial({}, skip_if_exists=False)

    def _start(self, trial_id: str, otrial: optuna.Trial) -> None:
        storage_id = seam.storage_trial_id(otrial)
        self._live[trial_id] = otrial
        self._optuna_ids[trial_id] = storage_id
        otrial.set_user_attr(_KT_ID, trial_id)
        interval = self._heartbeat_interval()
        if interval:
            self._storage.record_heartbeat(storage_id)  # type: ignore[attr-defined]  # heartbeat storage
            beat = _Heartbeat(self._storage, storage_id, interval)
            beat.start()
            self._heartbeats[trial_id] = beat

    def _restart(self, trial: KTTrial) -> bool:
        """Give a retried KerasTuner trial a fresh Optuna trial with the same values.

        The old Optuna trial belonged to a process that is gone. Still RUNNING: it is
        failed here and the retry takes over its place. Already FAIL (interrupted, or
        stale): its place was given back, so the retry takes a ticket like any new trial,
        and is skipped (False) when none is left or the old trial finished after all.
        """
        old = self._optuna_ids.get(trial.trial_id)
        new_id: int | None
        if old is not None and self._fail(old):
            new_id = self._storage.create_new_trial(self._study_id)
        elif old is None or self._storage.get_trial(old).state == TrialState.FAIL:
            new_id = (self._storage.create_new_trial(self._study_id)
                      if self.max_trials is None else self._take_ticket())
            if new_id is None:
                return False
        else:
            return False
        hps = trial.hyperparameters
        fixed = {hp.name: hps.values[hp.name] for hp in hps.space
                 if hp.name in hps.values and hps.is_active(hp)}
        seam.fix_params(self._storage, new_id, fixed)
        otrial = seam.live_trial(self.study, new_id)
        with _writes_at_once(otrial):  # params, retry_of and kt_trial_id: one commit
            for hp in hps.space:
                if hp.name in fixed:
                    suggest(otrial, hp)  # records params + distributions from the fixed values
            # The trial number (what users and the dashboard see), not the storage id.
            otrial.set_user_attr("retry_of", self._storage.get_trial_number_from_id(old)
                                 if old is not None else None)
            self._start(trial.trial_id, otrial)
        return True

    def _fail(self, trial_id: int) -> bool:
        """Fail a RUNNING trial; False if it finished meanwhile (another process)."""
        try:
            return self._storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False

    def _skip_retry(self, tuner_id: str, trial: KTTrial) -> None:
        """End a KerasTuner retry that gets no place in the study (see ``_restart``).

        Recorded FAILED, but not through ``Oracle.end_trial``: that would count it among
        KerasTuner's consecutive failed trials, and a few interrupted runs of a project
        would then stop a search whose configurations never failed."""
        self.ongoing_trials.pop(tuner_id, None)
        trial.status = TrialStatus.FAILED
        trial.message = "interrupted; its place in the study went to another trial"
        seam.save_trial(self, trial)
        self.save()

    def _finish(self, kt_trial: KTTrial) -> None:
        # Stays in _live until told: interrupted before that, fail_live_trials fails it.
        otrial = self._live.get(kt_trial.trial_id)
        self._reported.pop(kt_trial.trial_id, None)
        beat = self._heartbeats.pop(kt_trial.trial_id, None)
        if beat:
            beat.stop()
        if otrial is None:
            return
        status = kt_trial.status
        extra = self.tell_attrs.pop(kt_trial.trial_id, {})
        if self.before_tell is not None or extra:
            try:
                with _writes_at_once(otrial):  # the caller's user attrs: one commit, not one each
                    if self.before_tell is not None:
                        self.before_tell(kt_trial.trial_id, otrial)
                    for key, value in extra.items():
                        otrial.set_user_attr(key, value)
            except optuna.exceptions.UpdateFinishedTrialError:
                self._lost(kt_trial.trial_id)  # ended meanwhile by another process
                return
        values: float | list[float] | None = kt_trial.score
        if self.multi_objective and status == TrialStatus.COMPLETED:
            values = objectives.values_of(kt_trial, self.objective)
            if values is None:
                kt_trial.message = (f"no value for every objective ({', '.join(self._metric_names())})"
                                    " in the trial's metrics")
        try:
            if self.max_params is not None:
                n_params = (kt_trial.metrics.get_last_value(objectives.PARAMS)
                            if kt_trial.metrics.exists(objectives.PARAMS) else None)
                if n_params is not None:
                    otrial.set_constraint(objectives.MAX_PARAMS,
                                          objectives.constraint(n_params, self.max_params))
            if status == TrialStatus.COMPLETED and values is not None and all(
                    math.isfinite(v) for v in (values if isinstance(values, list) else [values])):
                self.study.tell(otrial, values)
            elif status == TrialStatus.STOPPED:
                self.study.tell(otrial, state=TrialState.PRUNED)
            else:
                if kt_trial.message:
                    otrial.set_user_attr("error", kt_trial.message.strip()[-2000:])
                elif status == TrialStatus.COMPLETED and values is not None:  # NaN or inf
                    otrial.set_user_attr("error", f"{', '.join(self._metric_names())} = {values}: "
                                         "not a finite number (the training diverged)")
                self.study.tell(otrial, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # failed meanwhile as stale (a very long pause): keep what the store has
        self._live.pop(kt_trial.trial_id, None)
