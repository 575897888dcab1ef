"""The one seam between KerasTuner and Optuna.

Everything that translates between the two libraries, or reaches past their public API,
is here and nowhere else:

* **The hyperparameter mapping**, used in both directions and by every consumer: the
  Optuna-backed oracle suggests through it (:func:`suggest`), the mirror of KerasTuner's
  own searchers records their trials with it (:func:`active_params`), ``bench import-kt``
  maps a project's stored configs with it (:func:`distribution_from_config`) and
  ``bench.run.tblog`` declares TensorBoard's domains with it (:func:`tensorboard_domain`).
  So a run's trials, whichever searcher ran them, and the import of the run's own
  KerasTuner project have exactly the same distributions.
* **Every access to either library's internals**, each behind a named function below
  (section "internals"); ``tests/test_seam.py`` has one test per accessor that fails
  loudly when a pinned version moves what it reaches.

Mapping decisions. Where Optuna cannot say what KerasTuner says, the grid is kept exactly:
Optuna rejects ``log=True`` together with ``step`` (and KerasTuner's log ``step`` is a
multiplier), so a stepped log or reverse-log hyperparameter becomes a categorical over
KerasTuner's own grid of values. ``reverse_log`` without a step is sampled uniformly
(Optuna has no such scale); this changes the prior, not the range. A linear step grid's
top is lowered onto the grid (it holds every value KerasTuner can draw).

The 0.9 rounding quirk: KerasTuner counts a linear grid with float floor division
(``0.9 // 0.1 == 8.0``), so its own grid for 0.0..0.9 step 0.1 stops at 0.8 while the
declared range (and Optuna's grid) reaches 0.9. The grid here counts with a tolerance
(:func:`grid_steps`, the one place this is handled); ``models.space`` declares its
dropout tops a hair above 0.9 so that both libraries draw from the same ten values.

This module imports neither KerasTuner nor TensorFlow at import time: ``bench import-kt``
maps stored configs without loading TensorFlow.
"""
from __future__ import annotations

import contextlib
import json
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, cast

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    import keras_tuner

    # what ``BaseStorage.get_all_studies`` returns (Optuna does not export the name)
    from optuna.study._frozen import FrozenStudy  # noqa: F401

# A value this close to a grid point (in steps) is on it: Optuna's own tolerance for a
# stepped distribution.
_GRID_TOLERANCE = 1e-8

__all__ = [
    "distribution", "distribution_from_config", "suggest", "active_params", "to_param",
    "tensorboard_domain", "kt_grid", "grid_steps", "hp_class_name",
]


# ================================================================== the mapping
def grid_steps(low: float, high: float, step: float) -> int:
    """Steps of a linear grid from ``low`` that stay within ``high``, counted with a
    tolerance: ``(0.9 - 0.0) / 0.1`` is 8.999999999999998, and 0.9 is on the grid."""
    return int(math.floor((high - low) / step + 1e-9))


def hp_class_name(hp: Any) -> str:
    """KerasTuner's class name of a hyperparameter object ("Int", "Float", ...)."""
    from keras_tuner.engine import hyperparameters as kth
    for kind in (kth.Boolean, kth.Fixed, kth.Choice, kth.Int, kth.Float):
        if isinstance(hp, kind):
            return kind.__name__
    raise TypeError(f"unsupported hyperparameter type {type(hp).__name__} ({hp.name})")


def _sampling(config: dict[str, Any]) -> str:
    return str(config.get("sampling") or "linear").lower()


def kt_grid(class_name: str, config: dict[str, Any], limit: int | None = None) -> list[float] | None:
    """Every value of a stepped numeric hyperparameter, by KerasTuner's own formulas
    (``Numerical._get_value_by_index``; a linear grid counted by :func:`grid_steps`), or
    None when it has no step (or a log step KerasTuner would reject), or more than
    ``limit`` values."""
    if class_name not in ("Int", "Float"):
        return None
    step = config.get("step")
    sampling = _sampling(config)
    if step is None and class_name == "Int" and sampling == "linear":
        step = 1  # KerasTuner's Int sets it
    if not step:
        return None
    lo, hi = config["min_value"], config["max_value"]
    if sampling == "linear":
        n = grid_steps(lo, hi, step) + 1
    else:
        if step <= 1 or lo <= 0:
            return None
        n = int(math.log(hi / lo, step) + 1e-8) + 1
    if n < 1 or (limit is not None and n > limit):
        return None
    if sampling == "linear":
        return [lo + i * step for i in range(n)]
    if sampling == "log":
        return [lo * math.pow(step, i) for i in range(n)]
    return [hi + lo - lo * math.pow(step, i) for i in range(n)]  # reverse_log


def _categorical_grid(class_name: str, config: dict[str, Any]) -> CategoricalDistribution:
    convert: Callable[[float], Any] = int if class_name == "Int" else float
    return CategoricalDistribution(sorted({convert(round(v, 12))
                                           for v in kt_grid(class_name, config) or []}))


def _exact(class_name: str, config: dict[str, Any]) -> BaseDistribution:
    """The distribution the searchers decide and record in (see the module docstring)."""
    if class_name == "Fixed":
        return CategoricalDistribution([config["value"]])
    if class_name == "Boolean":
        return CategoricalDistribution([False, True])
    if class_name == "Choice":
        return CategoricalDistribution(list(config["values"]))
    if class_name not in ("Int", "Float"):
        raise ValueError(f"unsupported hyperparameter type {class_name!r}")
    sampling, step = _sampling(config), config.get("step")
    if class_name == "Int":
        low, high = int(config["min_value"]), int(config["max_value"])
        if sampling == "linear":
            istep = int(step or 1)
            return IntDistribution(low, low + (high - low) // istep * istep, step=istep)
        if not step:
            return IntDistribution(low, high, log=sampling == "log")
        return _categorical_grid(class_name, config)
    lo, hi = float(config["min_value"]), float(config["max_value"])
    if step is None:
        return FloatDistribution(lo, hi, log=sampling == "log")
    if sampling == "linear":
        # rounded: 0.0 + 3 * 0.3 = 0.8999999999999999, which Optuna would cut to 0.6
        top = round(lo + grid_steps(lo, hi, float(step)) * float(step), 12)
        return FloatDistribution(lo, top, step=float(step))
    return _categorical_grid(class_name, config)


def _loose(class_name: str, config: dict[str, Any]) -> BaseDistribution:
    """The range without its grid: for stored values that are off the declared grid."""
    if class_name == "Int":
        return IntDistribution(int(config["min_value"]), int(config["max_value"]),
                               log=_sampling(config) == "log")
    if class_name == "Float":
        return FloatDistribution(float(config["min_value"]), float(config["max_value"]),
                                 log=_sampling(config) == "log")
    return _exact(class_name, config)


def distribution_from_config(class_name: str, config: dict[str, Any],
                             values: Iterable[Any] | None = None) -> BaseDistribution:
    """The Optuna distribution of one KerasTuner hyperparameter, from its class name and
    ``get_config()`` (as KerasTuner stores it in ``oracle.json`` / ``trial.json``).

    ``values``: what trials drew from it. When one of them is not on the exact
    distribution's grid (a foreign project: another KerasTuner version, a space edited
    between runs), the grid is dropped and the range kept (:func:`_loose`) rather than
    rejecting those trials; values a searcher drew here always fit the exact one.
    """
    exact = _exact(class_name, config)
    if values is None or all(to_param(exact, v, strict=True) is not _OFF for v in values):
        return exact
    return _loose(class_name, config)


def distribution(hp: Any) -> BaseDistribution:
    """The Optuna distribution equivalent to one KerasTuner hyperparameter."""
    return _exact(hp_class_name(hp), hp.get_config())


class _Off:
    """Marks a value that is not on a distribution (``None`` can be a legal choice)."""

    def __repr__(self) -> str:
        return "<off the distribution>"


_OFF: Any = _Off()


def _on_choice(value: Any, choices: tuple[Any, ...]) -> Any:
    """The choice ``value`` equals up to float rounding, or ``_OFF``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _OFF
    for choice in choices:
        if (isinstance(choice, (int, float)) and not isinstance(choice, bool)
                and math.isclose(value, choice, rel_tol=1e-9, abs_tol=1e-12)):
            return choice
    return _OFF


def to_param(dist: BaseDistribution, value: Any, *, strict: bool = False) -> Any:
    """``value`` as Optuna stores it under ``dist``: snapped onto the grid (KerasTuner
    computes stepped floats with rounding noise), an Int's value as an ``int``; a
    categorical value matched up to float rounding. Returns ``seam.OFF`` for a value that
    cannot be a value of ``dist``.

    ``strict``: also off when a numeric value lies outside the range or more than
    Optuna's tolerance away from a grid point (``bench import-kt``); not strict, any
    number snaps to the nearest grid point (the mirror: KerasTuner drew it from the
    same space)."""
    if isinstance(dist, CategoricalDistribution):
        if value in dist.choices and not (isinstance(value, float) and math.isnan(value)):
            return value
        return _on_choice(value, dist.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _OFF if strict else value
    if isinstance(dist, IntDistribution):
        if not strict:
            return int(value)
        if not float(value).is_integer() or not dist.low <= value <= dist.high:
            return _OFF
        if (int(value) - dist.low) % dist.step:
            return _OFF
        return int(value)
    fdist = cast(FloatDistribution, dist)
    if not fdist.step:
        if strict and not fdist.low <= value <= fdist.high:
            return _OFF
        return value if not strict else float(value)
    k = (value - fdist.low) / fdist.step
    if strict and (abs(k - round(k)) >= _GRID_TOLERANCE
                   or not fdist.low - 1e-12 <= value <= fdist.high + 1e-12):
        return _OFF
    return round(fdist.low + round(k) * fdist.step, 12)


OFF = _OFF  # what to_param returns for a value that is not on the distribution


def suggest(trial: optuna.Trial, hp: Any) -> Any:
    """Ask ``trial`` for a value of ``hp`` (public suggest API, define-by-run)."""
    dist = distribution(hp)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(hp.name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(hp.name, dist.low, dist.high, step=dist.step, log=dist.log)
    fdist = cast(FloatDistribution, dist)  # distribution() maps the rest to floats
    value = trial.suggest_float(hp.name, fdist.low, fdist.high, step=fdist.step, log=fdist.log)
    return round(value, 12) if fdist.step else value


def active_params(hps: keras_tuner.HyperParameters) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """Values and distributions of the active, searchable hyperparameters of ``hps``.

    KerasTuner's bookkeeping values (Hyperband's ``tuner/*``) are not in the space and
    are left out; values off the distribution's grid are snapped to it so that Optuna
    accepts them (KerasTuner computes stepped floats with rounding noise).
    """
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for hp in hps.space:
        if hp.name not in hps.values or not hps.is_active(hp):
            continue
        dist = distribution(hp)
        value = to_param(dist, hps.values[hp.name])
        if value is _OFF:
            continue  # e.g. a value outside a Choice after a space change: not comparable
        params[hp.name] = value
        dists[hp.name] = dist
    return params, dists


# ------------------------------------------------------------- TensorBoard domains
MAX_DISCRETE = 50  # a numeric grid larger than this is declared as an interval


def _clean_float(x: float) -> float:
    """Round away binary noise (0.1 * 3 -> 0.3) so grid values print and compare cleanly."""
    return float(f"{float(x):.12g}")


def tensorboard_domain(hp: Any) -> Any:
    """TensorBoard HParams domain (``hp_api.Domain``) of a KerasTuner hyperparameter, as
    declared (not as sampled), or None for a kind TensorBoard should infer. A stepped
    numeric grid of at most ``MAX_DISCRETE`` values is discrete, the same grid as
    :func:`distribution`'s."""
    # summary_v2, not hparams.api: the api module imports TensorFlow (its Keras callback)
    from tensorboard.plugins.hparams import summary_v2 as hp_api
    try:
        kind = hp_class_name(hp)
    except TypeError:
        return None  # unknown kind: TensorBoard infers it from the values
    if kind == "Boolean":
        return hp_api.Discrete([False, True])
    if kind == "Fixed":
        return hp_api.Discrete([hp.value])
    if kind == "Choice":
        values = list(hp.values)
        if all(isinstance(v, bool) for v in values) or all(isinstance(v, str) for v in values):
            return hp_api.Discrete(values)
        if any(isinstance(v, float) for v in values):
            return hp_api.Discrete([_clean_float(v) for v in values])
        return hp_api.Discrete([int(v) for v in values])
    grid = (kt_grid(kind, hp.get_config(), limit=MAX_DISCRETE)
            if getattr(hp, "step", None) is not None else None)
    if kind == "Int":
        if grid is not None:
            return hp_api.Discrete(sorted({int(round(v)) for v in grid}))
        return hp_api.IntInterval(int(hp.min_value), int(hp.max_value))
    if grid is not None:
        return hp_api.Discrete(sorted({_clean_float(v) for v in grid}))
    return hp_api.RealInterval(float(hp.min_value), float(hp.max_value))


# ================================================================== internals
# Each function below reaches past a public API (pinned: keras-tuner 1.4.8, optuna 5.0.0).
# tests/test_seam.py exercises every one of them; when a version moves one, that test
# names it.

# ---- Optuna ------------------------------------------------------------------------
FIXED_PARAMS = "fixed_params"  # Optuna's system attr holding enqueued parameter values


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (``Study._storage``; Optuna has no
    public getter). For an RDB URL this is Optuna's cache around the RDBStorage."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of a study (``Study._study_id``)."""
    return study._study_id


def storage_trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial, live or frozen (``_trial_id``: the public ``number``
    counts within a study; the storage API takes this id)."""
    return trial._trial_id


def live_trial(study: optuna.Study, trial_storage_id: int) -> optuna.Trial:
    """An ``optuna.Trial`` for an existing RUNNING trial (the constructor Optuna's docs
    say not to call; it runs the sampler's ``before_trial``: keep the object)."""
    return optuna.Trial(study, trial_storage_id)


def trial_storage(trial: optuna.Trial) -> Any:
    """The storage a live trial writes through (``Trial.storage``, undocumented)."""
    return trial.storage


def set_trial_storage(trial: optuna.Trial, storage: Any) -> None:
    """Make a live trial write through ``storage``: its suggest calls end in
    ``storage.set_trial_param``, ``set_user_attr`` in ``storage.set_trial_user_attr``
    (``Trial._suggest`` / ``Trial.set_user_attr`` call them on ``Trial.storage``)."""
    trial.storage = storage


def fix_params(storage: optuna.storages.BaseStorage, trial_storage_id: int,
               params: dict[str, Any]) -> None:
    """Make a trial's suggest calls return ``params`` (what ``enqueue_trial`` does, for a
    trial that already exists): Optuna's ``fixed_params`` system attr."""
    storage.set_trial_system_attr(trial_storage_id, FIXED_PARAMS, params)


def stale_trial_ids(storage: optuna.storages.BaseStorage, sid: int) -> list[int]:
    """RUNNING trials of a study whose heartbeat went stale (``_get_stale_trial_ids`` of
    a heartbeat storage; Optuna's public ``fail_stale_trials`` fails them all without
    saying which, and we must reissue exactly their tickets)."""
    return storage._get_stale_trial_ids(sid)  # type: ignore[attr-defined]  # heartbeat storages


def grace_period(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds after its last heartbeat that a RUNNING trial goes stale (an RDB store's
    ``grace_period``, which the cache Optuna puts around it, ``_CachedStorage._backend``,
    does not pass on); None when the store sets none (Optuna then waits 2 x interval)."""
    backend = getattr(storage, "_backend", storage)
    return getattr(backend, "grace_period", None)


def constraint_system_attrs(name: str, value: float) -> dict[str, float]:
    """The system attr ``Trial.set_constraint(name, value)`` writes (``constraints:<name>``),
    for a trial created whole (a mirrored KerasTuner trial) rather than asked."""
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
    return {f"{_CONSTRAINTS_KEY}:{name}": float(value)}


def pareto_front(trials: list[optuna.trial.FrozenTrial],
                 directions: list[optuna.study.StudyDirection]) -> list[optuna.trial.FrozenTrial]:
    """The feasible non-dominated COMPLETE trials among ``trials`` (what
    ``Study.best_trials`` computes, for trials from several studies:
    ``optuna.study._multi_objective._get_pareto_front_trials_by_trials``)."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
    return _get_pareto_front_trials_by_trials(trials, directions, consider_constraint=True)


def hypervolume(points: Any, reference: Any) -> float:
    """The hypervolume dominated by ``points`` (minimised, n x m) up to ``reference`` (m):
    Optuna's own ``optuna._hypervolume.compute_hypervolume``."""
    from optuna._hypervolume import compute_hypervolume
    return float(compute_hypervolume(points, reference))


def dashboard_trial_artifact_key(trial_storage_id: int, artifact_id: str) -> str:
    """The study system attr under which optuna-dashboard (0.21, ``artifact/_backend.py``,
    ``_dashboard_artifact_prefix``) lists an artifact among one trial's artifacts. Unlike a
    trial's own attrs (Optuna refuses writes to a finished trial), a study attr can be set
    to ``null`` later, which the dashboard reads as "removed": the checkpoint of a trial
    that left the best k disappears from its page."""
    from optuna_dashboard.artifact._backend import DASHBOARD_ARTIFACTS_ATTR_PREFIX
    return f"{DASHBOARD_ARTIFACTS_ATTR_PREFIX}{trial_storage_id}:{artifact_id}"


def dashboard_trial_artifact_prefix() -> str:
    """The prefix of every :func:`dashboard_trial_artifact_key`."""
    from optuna_dashboard.artifact._backend import DASHBOARD_ARTIFACTS_ATTR_PREFIX
    return DASHBOARD_ARTIFACTS_ATTR_PREFIX


def artifact_folder(store: Any) -> str | None:
    """The folder of a ``FileSystemArtifactStore`` (its ``_base_path``; Optuna has no
    public getter), None for any other store: where messages say the files are."""
    from optuna.artifacts import FileSystemArtifactStore
    if isinstance(store, FileSystemArtifactStore):
        import os
        return os.fspath(store._base_path)
    return None


PARAM_WRITE, USER_ATTR_WRITE = "param", "user_attr"


def write_in_one_transaction(storage: optuna.storages.BaseStorage,
                             writes: list[tuple[Any, ...]]) -> bool:
    """Write ``writes`` (``(PARAM_WRITE, trial_id, name, internal value, distribution)`` /
    ``(USER_ATTR_WRITE, trial_id, key, value)``, in order) in ONE transaction and commit
    of an RDB store; False, writing nothing, for any other storage (InMemoryStorage,
    JournalStorage, ...). On failure it raises, having written nothing.

    Optuna has no public batch write. This uses Optuna internals, as of Optuna 5.0
    (optuna/storages/_rdb/storage.py, optuna/storages/_cached_storage.py):

    * ``optuna.storages._rdb.storage._create_scoped_session(RDBStorage.scoped_session)``:
      the session context every RDBStorage write runs in (commit, or rollback and raise).
      Given ``ignore_integrity_error=False`` (``set_trial_param`` passes True): an
      IntegrityError fails the whole batch, which the caller then replays call by call,
      each ignoring it as Optuna does.
    * ``RDBStorage._set_trial_param_without_commit`` and
      ``RDBStorage._set_trial_attr_without_commit`` with
      ``optuna.storages._rdb.models.TrialUserAttributeModel``: the bodies of
      ``set_trial_param`` and ``set_trial_user_attr`` (the trial must still be updatable,
      a parameter's distribution must agree with the study's).
    * ``_CachedStorage``, which ``optuna.create_study`` wraps around every RDBStorage
      (``storage_of(study)`` is one for any RDB URL): its ``_backend``, ``_lock``,
      ``_trial_id_to_study_id_and_number`` and ``_studies[study_id].param_distribution``,
      the cache of each parameter's first distribution that its ``set_trial_param``
      passes to the backend as ``previous_distribution`` and fills.
    """
    from optuna.storages import RDBStorage
    from optuna.storages._cached_storage import _CachedStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    cache = storage if isinstance(storage, _CachedStorage) else None
    rdb = cache._backend if cache is not None else storage
    if not isinstance(rdb, RDBStorage):
        return False
    with cache._lock if cache is not None else contextlib.nullcontext():
        known: dict[int, dict[str, Any]] = {}  # trial id -> the cache's distributions
        if cache is not None:
            for kind, trial_id, *_ in writes:
                if kind == PARAM_WRITE and trial_id not in known:
                    sid, _number = cache._trial_id_to_study_id_and_number[trial_id]
                    known[trial_id] = cache._studies[sid].param_distribution
        first_seen = []
        with _create_scoped_session(rdb.scoped_session) as session:
            for kind, trial_id, name, value, *dist in writes:
                if kind == PARAM_WRITE:
                    cached = known.get(trial_id, {}).get(name)
                    rdb._set_trial_param_without_commit(session, trial_id, name, value,
                                                        dist[0], cached)
                    if cache is not None and cached is None:
                        first_seen.append((known[trial_id], name, dist[0]))
                else:
                    rdb._set_trial_attr_without_commit(
                        session, models.TrialUserAttributeModel, trial_id, name, value)
        for distributions, name, dist in first_seen:  # committed: as set_trial_param does
            distributions.setdefault(name, dist)
    return True


# ---- KerasTuner ----------------------------------------------------------------------
def retry_queue(oracle: keras_tuner.Oracle) -> list[str]:
    """The ids of trials KerasTuner will run again (``Oracle._retry_queue``, the live
    list: removing an id cancels that retry). KerasTuner exposes no public handle."""
    return oracle._retry_queue


def save_trial(oracle: keras_tuner.Oracle, trial: Any) -> None:
    """Write one trial's ``trial.json`` (``Oracle._save_trial``)."""
    oracle._save_trial(trial)


def begin_new_trial(oracle: keras_tuner.Oracle, tuner_id: str, trial: Any) -> None:
    """What ``Oracle.create_trial`` does with a new RUNNING trial once its id and values
    are chosen (keras-tuner 1.4.8, ``engine/oracle.py``): record its values' hash
    (``_record_values``), make it the tuner's ongoing trial, keep it in ``trials`` and
    ``start_order``, write ``trial.json`` and ``oracle.json``, show it (``_display``).
    For an oracle that picks its own trial ids (``OptunaOracle``: from the study)."""
    oracle._record_values(trial)
    oracle.ongoing_trials[tuner_id] = trial
    oracle.trials[trial.trial_id] = trial
    oracle.start_order.append(trial.trial_id)
    oracle._save_trial(trial)
    oracle.save()
    oracle._display.on_trial_begin(trial)


def max_collisions(oracle: keras_tuner.Oracle) -> int:
    """How many proposals an oracle may draw before it gives up finding untried values
    (``Oracle._max_collisions``, the constructor's ``max_collisions``)."""
    return int(oracle._max_collisions)


def claim_untried(oracle: keras_tuner.Oracle, values: dict[str, Any]) -> bool:
    """True, and the values recorded as tried, if the oracle has not tried these values yet
    (``Oracle._compute_values_hash`` into ``Oracle._tried_so_far``, as KerasTuner's own
    ``_random_values`` does); False if it has."""
    values_hash = oracle._compute_values_hash(values)
    if values_hash in oracle._tried_so_far:
        return False
    oracle._tried_so_far.add(values_hash)
    return True


def tuner_ids(oracle: keras_tuner.Oracle) -> set[str]:
    """The ids of the tuners an oracle serves (``Oracle.tuner_ids``, undocumented):
    ``create_trial`` adds the caller's, and removes it when it answers STOPPED."""
    return oracle.tuner_ids


def end_order(oracle: keras_tuner.Oracle) -> list[str]:
    """The ids of ended trials in their end order (``Oracle.end_order``, undocumented)."""
    return oracle.end_order


def kt_module(name: str) -> Any:
    """A module of KerasTuner's implementation (``keras_tuner.src.<name>``, e.g.
    ``engine.tuner``): where its classes and functions are looked up, which the benchmark's
    overhead profiler times in place (``bench.measure.overhead``)."""
    import importlib
    return importlib.import_module(f"keras_tuner.src.{name}")


def cached_storage_class() -> type:
    """Optuna's ``_CachedStorage``, which ``optuna.create_study`` wraps around every
    ``RDBStorage`` (what the overhead profiler times besides the RDBStorage itself)."""
    from optuna.storages._cached_storage import _CachedStorage
    return _CachedStorage


def model_size(model: Any) -> int:
    """A built model's parameter count as KerasTuner's ``max_model_size`` check counts it
    (``keras_tuner.src.engine.tuner.maybe_compute_model_size``)."""
    from keras_tuner.src.engine.tuner import maybe_compute_model_size
    return int(maybe_compute_model_size(model))


def tuner_callback(tuner: Any, trial: Any) -> Any:
    """The callback KerasTuner's ``Tuner.run_trial`` adds to every fit: it calls the
    tuner's ``on_epoch_*`` hooks (``keras_tuner.src.engine.tuner_utils.TunerCallback``)."""
    from keras_tuner.src.engine import tuner_utils
    return tuner_utils.TunerCallback(tuner, trial)


def kt_io() -> Any:
    """KerasTuner's file layer (``keras_tuner.src.backend.io``: ``exists``, ``glob``, and
    ``tf``, TensorFlow or None), which reads and writes ``gs://`` paths too."""
    from keras_tuner.src.backend import io
    return io


def kt_remove(path: str) -> None:
    """Delete a file where KerasTuner writes: local, or ``gs://`` through TensorFlow."""
    io = kt_io()
    if io.tf is not None:
        io.tf.io.gfile.remove(path)
    else:
        import os
        os.remove(path)


def route_kt_json_writes(save_json: Callable[[str, object], str]) -> None:
    """Make every KerasTuner state file (``tuner0.json``, ``oracle.json``,
    ``trial_*/trial.json``) be written by ``save_json``: KerasTuner writes them all
    through ``keras_tuner.src.utils.save_json``, looked up at call time."""
    from keras_tuner.src import utils
    utils.save_json = save_json


def kt_create_objective(objective: Any) -> Any:
    """KerasTuner's own objective factory (``keras_tuner.src.engine.objective.
    create_objective``: a name's direction inferred, a list made a ``MultiObjective``)."""
    from keras_tuner.src.engine import objective as objective_module
    return objective_module.create_objective(objective)


def kt_multi_objective(objectives: list[Any]) -> Any:
    """KerasTuner's ``MultiObjective`` (it sums its objectives into one score)."""
    from keras_tuner.src.engine import objective as objective_module
    return objective_module.MultiObjective(objectives)


# KerasTuner's private methods the benchmark overrides or calls on its own subclasses
# (OptunaSearch, TPEHyperbandOracle, bench.run.supervisor): a subclass hook that KerasTuner
# renamed would silently never run. tests/test_seam.py checks each is still there.
KT_PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "Tuner": ("_try_build", "_build_hypermodel", "_build_and_fit_model", "_run_and_update_trial",
              "_deepcopy_callbacks", "_configure_tensorboard_dir",
              "_get_checkpoint_fname", "_get_tuner_fname", "_get_build_config_fname"),
    "Oracle": ("_random_values", "_compute_values_hash", "_save_trial", "_record_values"),
    "HyperbandOracle": ("_random_values",),
}
# ... and the private attributes of an oracle instance they read.
KT_PRIVATE_ORACLE_ATTRS = ("_retry_queue", "_tried_so_far", "_max_collisions", "end_order",
                           "ongoing_trials", "start_order", "tuner_ids", "_display")


def add_trials_at_once(storage: optuna.storages.BaseStorage, study_name: str,
                       trials: Sequence[FrozenTrial]) -> None:
    """Add finished ``trials`` to a study that has none yet, in ONE transaction of an RDB
    store; other storages get ``create_new_trial`` per trial.

    Optuna's ``add_trials`` commits each trial on its own, and each parameter, attribute
    and intermediate value first looks itself up (is the distribution compatible with the
    study's, does the key exist): ~1,300 queries for one replayed Hyperband run, most of a
    replay's time. Here every row is Optuna's own ORM model, filled as Optuna fills it, for a
    study known to be empty (so nothing can exist or conflict), in one flush per trial.

    Uses Optuna internals as of 5.0 (optuna/storages/_rdb/): ``_create_scoped_session``
    (commit, or rollback and raise), ``StudyModel.find_or_raise_by_id(for_update=True)`` as
    ``_create_new_trial`` locks the study, the row models ``TrialModel``, ``TrialValueModel``,
    ``TrialParamModel``, ``TrialUserAttributeModel``, ``TrialSystemAttributeModel``,
    ``TrialIntermediateValueModel`` and their ``*_to_stored_repr`` helpers, as
    ``RDBStorage._get_prepared_new_trial`` and the ``_set_*_without_commit`` methods use them.
    ``tests/test_store_writes.py`` reads trials written this way back equal to
    ``add_trials``'s."""
    from optuna.distributions import distribution_to_json
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    study_id = storage.get_study_id_from_name(study_name)
    if not isinstance(storage, RDBStorage):
        for trial in trials:
            storage.create_new_trial(study_id, template_trial=trial)
        return
    with _create_scoped_session(storage.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        if session.query(models.TrialModel).filter(models.TrialModel.study_id == study_id).first():
            raise ValueError(f"add_trials_at_once: study {study_name!r} already has trials")
        for number, trial in enumerate(trials):
            row = models.TrialModel(study_id=study_id, number=number, state=trial.state,
                                    datetime_start=trial.datetime_start,
                                    datetime_complete=trial.datetime_complete)
            session.add(row)
            session.flush()  # its trial_id, for the rows below
            tid = row.trial_id
            rows: list[Any] = []
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                rows.append(models.TrialValueModel(trial_id=tid, objective=objective,
                                                   value=stored, value_type=kind))
            for name, value in trial.params.items():
                dist = trial.distributions[name]
                rows.append(models.TrialParamModel(
                    trial_id=tid, param_name=name, param_value=dist.to_internal_repr(value),
                    distribution_json=distribution_to_json(dist)))
            for key, value in trial.user_attrs.items():
                rows.append(models.TrialUserAttributeModel(trial_id=tid, key=key,
                                                           value_json=json.dumps(value)))
            for key, value in trial.system_attrs.items():
                rows.append(models.TrialSystemAttributeModel(trial_id=tid, key=key,
                                                             value_json=json.dumps(value)))
            for step, value in trial.intermediate_values.items():
                stored_step, step_kind = (
                    models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value))
                rows.append(models.TrialIntermediateValueModel(
                    trial_id=tid, step=step, intermediate_value=stored_step,
                    intermediate_value_type=step_kind))
            session.add_all(rows)
