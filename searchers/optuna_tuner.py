"""``OptunaSearch``: a drop-in KerasTuner tuner whose search is driven by Optuna.

    tuner = OptunaSearch(build_model, objective="val_loss", max_trials=20,
                         sampler=optuna.samplers.TPESampler(seed=1),
                         pruner=optuna.pruners.HyperbandPruner(),
                         directory="kt", project_name="toon")
    tuner.search(x, y, epochs=10, validation_data=(xv, yv))
    best = tuner.get_best_models(1)[0]

Everything a ``RandomSearch`` user calls works the same way. With no ``sampler=`` /
``pruner=`` it searches with the benchmark's recommended default, TPE plus successive
halving from epoch 2 (weak trials stop early, so more configurations fit in the same
epochs; ``pruner=optuna.pruners.NopPruner()`` trains every trial to the end, as
KerasTuner does). What it adds: any Optuna sampler and pruner, and an Optuna study in
an SQL store (by default an SQLite file inside the project directory, so
``overwrite=False`` resumes; pass ``storage=`` a PostgreSQL or MySQL URL to share the
study between workers and machines).

Data: NumPy ``x``/``y``/``validation_data`` become one ``tf.data`` pipeline per search,
not one per trial (``searchers.input_pipeline``: Keras's batches, cheaper set-up);
``reuse_input_pipeline=False`` passes them to every ``model.fit`` as given.

Disk: only the best ``keep_best_checkpoints`` trials (default 3) keep their weights file;
``keep_best_checkpoints=None`` keeps every trial's, as KerasTuner does.

Many machines, one study: ``artifact_store=`` any Optuna ``ArtifactStore``
(``FileSystemArtifactStore`` on a folder every machine mounts, ``Boto3ArtifactStore``)
also keeps the best trials' weights there, so ``get_best_models`` on any machine loads the
study's best trials, wherever they trained (``searchers.checkpoint_artifacts``). Without
one, a best trial trained elsewhere is an error naming it, never another trial's weights.

Continuing an earlier search: ``warm_start=`` a KerasTuner project folder or an
``optuna.Study``; its finished trials become the study's history (``searchers.warm_start``).

Several objectives, e.g. accuracy against model size (``"params"`` is the built model's
parameter count, no user code needed)::

    tuner = OptunaSearch(build_model, objective=["val_loss", "params"],
                         multi_objective=True, max_params=60_000, max_trials=40)
    tuner.search(...)
    front = tuner.study.best_trials          # Optuna's Pareto front (feasible trials)
    hps = tuner.get_best_hyperparameters(3)  # Pareto-optimal first, by val_loss

KerasTuner would sum the two into one score; ``multi_objective=True`` keeps them apart
(see ``searchers.objectives``). No pruning then: Optuna cannot prune on several
objectives, and passing a pruner is an error. ``max_params`` marks larger models
infeasible (Optuna's constraint API); it also works with one objective.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import shutil
import signal
import threading
import time
from typing import Any, Callable, Iterator

import keras
import keras_tuner
import optuna
from keras_tuner.engine.trial import TrialStatus

from searchers import arguments, input_pipeline, objectives, seam
from searchers.checkpoint_artifacts import (
    CHECKPOINT_ATTR,
    CheckpointArtifacts,
    CheckpointNotFound,
    check_store,
    checkpoint_files,
    checkpoint_paths,
)
from searchers.optuna_oracle import OptunaOracle
from searchers.resilient_storage import outage_ends_search, store_outage_in
from searchers.warm_start import WARM_START_CHECKPOINT

# A model this large leaves garbage worth a full collection before the next build.
LARGE_MODEL_PARAMS = 1_000_000


class OptunaSearch(keras_tuner.Tuner):
    """KerasTuner ``Tuner`` with an :class:`OptunaOracle`; per-epoch pruning wired in.

    KerasTuner 1.4 hands no per-epoch metric to its oracle, so ``on_epoch_end`` reports
    the objective to the Optuna trial and stops training when the pruner says so (it is
    not asked at the fit's last epoch, where stopping saves nothing). The
    trial then ends PRUNED in the study and STOPPED in KerasTuner (never "best", never a
    failure), and the search goes on.

    ``keep_best_checkpoints=k`` bounds the disk a long search takes: after every trial, the
    weights of trials outside the oracle's best ``k`` are deleted (their ``trial.json``
    stays, resume needs it). ``get_best_models(n)`` for ``n <= k`` is unchanged; ``None``
    keeps every checkpoint, as KerasTuner does.
    """

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int | None = 10,
        *,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        study: optuna.Study | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        keep_best_checkpoints: int | None = 3,
        collect_every: int = 10,
        manage_tickets: bool = True,
        multi_objective: bool = False,
        max_params: int | None = None,
        reuse_input_pipeline: bool = True,
        artifact_store: Any = None,
        warm_start: Any = None,
        **kwargs: Any,
    ) -> None:
        arguments.check_max_trials(max_trials)  # each before anything is created
        arguments.check_directory(kwargs.get("directory"))
        arguments.check_storage(storage)
        if artifact_store is not None:
            check_store(artifact_store)
        if keep_best_checkpoints is not None and (
                isinstance(keep_best_checkpoints, bool)
                or not isinstance(keep_best_checkpoints, int) or keep_best_checkpoints < 1):
            raise ValueError("keep_best_checkpoints must be an int >= 1, or None to keep "
                             f"every trial's checkpoint; got {keep_best_checkpoints!r}")
        self.keep_best_checkpoints = keep_best_checkpoints
        if isinstance(collect_every, bool) or not isinstance(collect_every, int) or collect_every < 1:
            raise ValueError(f"collect_every must be an int >= 1; got {collect_every!r}")
        self.collect_every = collect_every
        self.reuse_input_pipeline = bool(reuse_input_pipeline)
        self._pipeline: input_pipeline.ArrayPipeline | None = None
        self._builds = 0
        self._last_model_params = 0
        self._fit_epochs: int | None = None  # the running fit's `epochs` (_FitLength)
        directory = kwargs.get("directory") or "."
        project_name = kwargs.get("project_name") or "untitled_project"
        project_dir = os.path.join(directory, project_name)
        if kwargs.pop("overwrite", False):
            # KerasTuner would wipe the project after the oracle opened its store in it.
            shutil.rmtree(project_dir, ignore_errors=True)
            if storage is not None and study is None:
                _delete_study_if_any(storage, study_name or project_name)
        if storage is None and study is None:
            os.makedirs(project_dir, exist_ok=True)
            storage = "sqlite:///" + os.path.abspath(os.path.join(project_dir, "optuna.db"))
        oracle = OptunaOracle(
            objective=objective,
            max_trials=max_trials,
            study=study,
            storage=storage,
            study_name=study_name or project_name,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            manage_tickets=manage_tickets,
            multi_objective=multi_objective,
            max_params=max_params,
            warm_start=warm_start,
        )
        super().__init__(oracle=oracle, hypermodel=hypermodel, overwrite=False, **kwargs)
        self.artifacts = (CheckpointArtifacts(artifact_store, oracle.study)
                          if artifact_store is not None else None)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        if self.reuse_input_pipeline and self._fit_args_reach_fit_as_given():
            fit_args, fit_kwargs, self._pipeline = input_pipeline.once_per_search(
                self.hypermodel, fit_args, fit_kwargs)
        try:
            with _remember_stop(self.oracle):
                super().search(*fit_args, **fit_kwargs)
        except BaseException as exc:  # KeyboardInterrupt above all: fail what still runs
            outage = store_outage_in(exc)
            if outage is not None:  # nothing can be written: its trial is failed on resume
                raise outage from None
            self.oracle.fail_live_trials(
                "interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc)[-2000:])
            raise
        finally:
            self.oracle.stop_heartbeats()
            self._pipeline = None

    def _run_and_update_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> None:
        with outage_ends_search():  # not a failed trial, and not the next one's either
            super()._run_and_update_trial(trial, *fit_args, **fit_kwargs)

    def _fit_args_reach_fit_as_given(self) -> bool:
        """No subclass overrides the methods that take ``search()``'s fit arguments to
        ``model.fit`` (KerasTuner's docs tune ``batch_size`` in a ``run_trial`` override),
        except those that declare ``passes_fit_args_through = True``."""
        for cls in type(self).__mro__:
            if cls is OptunaSearch:
                return True
            if (any(name in vars(cls) for name in ("run_trial", "_build_and_fit_model"))
                    and not vars(cls).get("passes_fit_args_through", False)):
                return False
        return True

    @property
    def study(self) -> optuna.Study:
        return self.oracle.study

    def on_trial_end(self, trial: Any) -> None:
        """KerasTuner's, then drop the checkpoints outside the best ``k``: the oracle has
        scored the trial by now, so its ranking is final for this point of the search."""
        # KerasTuner's BaseTuner.on_trial_end is end_trial + save(); save() writes the
        # oracle again (end_trial just did) and the tuner's own state, which is empty:
        # written once when missing, not after every trial.
        planned = self._plan_upload(trial)
        self.oracle.end_trial(trial)
        if not seam.kt_io().exists(self._get_tuner_fname()):
            self.save()
        if self.artifacts is not None:  # after the tell: the result is safe first
            self.artifacts.trial_ended(
                self.oracle.storage_id_of(trial.trial_id), planned,
                checkpoint_paths(self._get_checkpoint_fname(trial.trial_id)),
                self.keep_best_checkpoints)
        if self.keep_best_checkpoints is not None:
            self._delete_checkpoints_outside_best(self.keep_best_checkpoints)

    def _plan_upload(self, trial: Any) -> dict[str, str] | None:
        """Artifact ids for a completed trial's checkpoint, told with its result."""
        if (self.artifacts is None or trial.status != TrialStatus.COMPLETED
                or self.oracle.is_pruned(trial.trial_id)):
            return None
        paths = checkpoint_paths(self._get_checkpoint_fname(trial.trial_id))
        if not paths:
            return None  # not written: best-k retention would have deleted it at once
        planned = CheckpointArtifacts.plan(paths)
        self.oracle.tell_attrs[trial.trial_id] = {CHECKPOINT_ATTR: planned}
        return planned

    def _delete_checkpoints_outside_best(self, k: int) -> None:
        """Delete the weights of every trial not in ``oracle.get_best_trials(k)``.

        KerasTuner's own ranking (direction, ties, STOPPED/FAILED trials only as padding
        while fewer than ``k`` completed), so ``get_best_models(n <= k)``, which loads a
        prefix of that list, finds every file it needs. A trial leaves that list only for
        good, so nothing deleted is needed later. RUNNING trials are skipped: their file
        may be written after this, and they are ranked when they end. One listing of the
        project per call, not one per trial: a long search stays linear.
        """
        keep = {t.trial_id for t in self.oracle.get_best_trials(k)}
        pattern = os.path.join(self.project_dir, "trial_*", "checkpoint*")
        for path in seam.kt_io().glob(pattern):
            trial_id = os.path.basename(os.path.dirname(path))[len("trial_"):]
            trial = self.oracle.trials.get(trial_id)
            if (trial is None or trial_id in keep
                    or trial.status == TrialStatus.RUNNING):
                continue
            name = os.path.basename(path)  # vs KerasTuner's name (its folder exists: found)
            base = os.path.basename(self._get_checkpoint_fname(trial_id))
            if name == base or name.startswith(base + "."):
                seam.kt_remove(path)

    def results_summary(self, num_trials: int = 10) -> None:
        """KerasTuner's; multi-objective: the Pareto front (feasible trials), ordered by
        the first objective, with every objective's value and the hyperparameters."""
        if not self.oracle.multi_objective:
            return super().results_summary(num_trials)
        names = objectives.names(self.oracle.objective)
        sign = -1.0 if self.study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        front = sorted(self.study.best_trials, key=lambda t: sign * t.values[0])
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Pareto front ({', '.join(names)}): {len(front)} trial(s), by {names[0]}")
        for t in front[:num_trials]:
            print()
            print(f"Trial {t.user_attrs.get('kt_trial_id')} (#{t.number}): "
                  + ", ".join(f"{n}={v:.6g}" for n, v in zip(names, t.values)))
            for name, value in t.params.items():
                print(f"{name}: {value}")
        return None

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """KerasTuner's, with a clear error where the checkpoints were not kept."""
        k = self.keep_best_checkpoints
        if k is not None and num_models > k:
            raise ValueError(
                f"get_best_models({num_models}): this tuner keeps only the best {k} trials' "
                f"checkpoints (keep_best_checkpoints={k}). Ask for at most {k} models, pass "
                "keep_best_checkpoints=None (or a larger number) before searching, or rebuild "
                f"from get_best_hyperparameters({num_models}) and train again.")
        return super().get_best_models(num_models)

    def load_model(self, trial: Any) -> Any:
        """KerasTuner's for a trial of this project whose checkpoint is here; otherwise
        (another process or machine trained it, or its local file is gone) its weights
        from the artifact store, or a clear error: never another trial's weights."""
        fname = self._get_checkpoint_fname(trial.trial_id)
        local = self.oracle.is_local(trial)
        if local and checkpoint_files(fname):
            return super().load_model(trial)
        frozen = self.oracle.study_trial_of(trial)
        warm = frozen.user_attrs.get(WARM_START_CHECKPOINT) if frozen is not None else None
        if warm and os.path.isfile(warm):  # a warm start's trial: its own project's file
            config = os.path.join(os.path.dirname(warm), "build_config.json")
            return self._load_files(trial, warm, config if os.path.isfile(config) else None)
        if self.artifacts is not None and frozen is not None:
            return self._load_from_artifacts(trial, frozen)
        if not local:
            value = f", {self.oracle.objective.name} {trial.score:.6g}" if trial.score is not None else ""
            raise CheckpointNotFound(
                f"trial #{frozen.number if frozen else '?'} of study {self.study.study_name!r} "
                f"(KerasTuner trial {trial.trial_id}{value}) was trained by another process or "
                f"machine: its weights are in that process's project folder, not in "
                f"{self.project_dir}, and this tuner has no artifact store. Pass the same "
                "artifact_store= (e.g. optuna.artifacts.FileSystemArtifactStore on a shared "
                "folder) to every process of the study, or rebuild from "
                "get_best_hyperparameters() and train again.")
        unfinished = frozen is not None and frozen.state != optuna.trial.TrialState.COMPLETE
        if not checkpoint_files(fname) and unfinished:
            assert frozen is not None
            raise FileNotFoundError(
                f"trial {trial.trial_id} (#{frozen.number}) has no model: it ended "
                f"{frozen.state.name} ({frozen.user_attrs.get('error', 'no result')}), and no "
                "trial of the study completed with a finite result to take its place")
        if not checkpoint_files(fname):
            raise FileNotFoundError(
                f"trial {trial.trial_id} has no checkpoint ({fname}): OptunaSearch keeps the "
                "weights of only the best keep_best_checkpoints trials (this tuner: "
                f"{self.keep_best_checkpoints}; an earlier search of this project may have "
                "used fewer), and a failed trial writes none. Rebuild the model from "
                "trial.hyperparameters and train it again.")
        return super().load_model(trial)

    def _load_from_artifacts(self, trial: Any, frozen: optuna.trial.FrozenTrial) -> Any:
        """Build the trial's model and load its weights fetched from the artifact store
        (kept under ``<project>/artifact_cache/``)."""
        assert self.artifacts is not None
        paths = self.artifacts.fetch(frozen, os.path.join(
            self.project_dir, "artifact_cache", f"study_trial_{frozen.number}"))
        weights = paths.get(os.path.basename(self._get_checkpoint_fname(trial.trial_id)))
        if weights is None:
            raise CheckpointNotFound(f"trial #{frozen.number}: the artifact store holds "
                                     f"{', '.join(paths)} but no weights file")
        return self._load_files(trial, weights, paths.get(
            os.path.basename(self._get_build_config_fname(trial.trial_id))))

    def _load_files(self, trial: Any, weights: str, config: str | None) -> Any:
        """The trial's model built from its hyperparameters, with the weights of ``weights``
        (and KerasTuner's build config, where the model needs it to be built)."""
        model = self._try_build(trial.hyperparameters)
        if not model.built and config is not None:
            with open(config) as f:
                model.build_from_config(json.load(f))
        model.load_weights(weights)
        return model

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """KerasTuner's ``Tuner.run_trial``, but the best epoch's weights are kept in memory
        and written once when training ends, not at every improving epoch (same file, so
        ``load_model`` / ``get_best_models`` read it as before)."""
        checkpoint = _BestWeightsAtEnd(self.oracle.objective,
                                       self._get_checkpoint_fname(trial.trial_id),
                                       functools.partial(self._may_be_kept, trial.trial_id))
        original_callbacks = kwargs.pop("callbacks", [])
        if objectives.wants_params(self.oracle.objective, self.oracle.max_params):
            original_callbacks = objectives.with_params_callback(original_callbacks)
        histories = []
        for execution in range(self.executions_per_trial):
            copied_kwargs = copy.copy(kwargs)
            callbacks = self._deepcopy_callbacks(original_callbacks)
            self._configure_tensorboard_dir(callbacks, trial, execution)
            callbacks.append(_FitLength(self))
            callbacks.append(seam.tuner_callback(self, trial))
            callbacks.append(checkpoint)  # the best epoch across all executions
            copied_kwargs["callbacks"] = callbacks
            if self._pipeline is not None:
                self._pipeline.reseed()  # this fit's order follows the seed set now
            histories.append(self._build_and_fit_model(trial, *args, **copied_kwargs))
        return histories

    def _may_be_kept(self, trial_id: str, value: float) -> bool:
        """Whether the trial, whose best epoch scored ``value``, can be among the best ``k``
        whose checkpoints are kept; if not, its file would be deleted at once, so it is not
        written. KerasTuner's ranking (``get_best_trials``): completed trials by score, then,
        while fewer than ``k`` completed, the others in trial order. A trial that completes
        is never kept when strictly worse than the k-th best completed trial (on a tie
        KerasTuner's order decides, so the file is written and ranked as usual); a pruned
        one (it ends STOPPED) only while the completed trials and the unfinished ones
        before it leave room. Either ranking only gets worse for the trial later on."""
        k = self.keep_best_checkpoints
        if k is None or self.oracle.multi_objective:  # ranked on a front once it has ended
            return True
        if self.oracle.is_pruned(trial_id):
            return _padding_position(self.oracle.trials, trial_id) < k
        best = self.oracle.get_best_trials(k)
        scored = [t for t in best if t.status == TrialStatus.COMPLETED
                  and t.score is not None]
        if len(scored) < k:
            return True
        return not self.oracle.objective.better_than(scored[-1].score, value)

    def _try_build(self, hp: keras_tuner.HyperParameters) -> Any:
        """KerasTuner's ``Tuner._try_build`` with fewer full garbage collections.

        KerasTuner collects twice before every build (``clear_session()``, then itself):
        a full pass over the heap each time (`bench overhead`: the largest part of its
        per-trial overhead). Here one pass before every ``collect_every``-th build, and
        before any build that follows a model of ``LARGE_MODEL_PARAMS`` or more, whose
        garbage (weights, optimizer slots; on a GPU, device memory) is worth freeing at
        once. Between passes Python's own collector still runs; `bench memory` shows the
        resident memory this leaves (flat within a trial process of `bench run`)."""
        import keras

        collect = (self._builds % self.collect_every == 0
                   or self._last_model_params >= LARGE_MODEL_PARAMS)
        self._builds += 1
        keras.backend.clear_session(free_memory=collect)
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                "Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = seam.model_size(model)
        self._last_model_params = size
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model.")
        return model

    def on_epoch_end(self, trial, model, epoch, logs=None):  # KerasTuner hook
        super().on_epoch_end(trial, model, epoch, logs)
        self.oracle.check_stop()
        objective = self.oracle.objective
        if self.oracle.multi_objective:  # the first objective's curve (nothing prunes)
            objective = objectives.objectives_of(objective)[0]
        if logs and objective.has_value(logs):
            final = self._fit_epochs is not None and epoch + 1 >= self._fit_epochs
            if self.oracle.report(trial.trial_id, objective.get_value(logs), step=epoch + 1,
                                  final=final):
                model.stop_training = True


class _FitLength(keras.callbacks.Callback):
    """Tells the tuner how many epochs the running ``fit`` has (``params["epochs"]``, what
    Keras passes its callbacks; a HyperModel's own ``fit`` may choose it), so that its last
    epoch is known: the pruner is not asked there (stopping would save nothing)."""

    def __init__(self, tuner: OptunaSearch) -> None:
        super().__init__()
        self.tuner = tuner

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        epochs = self.params.get("epochs") if self.params else None
        self.tuner._fit_epochs = int(epochs) if isinstance(epochs, int) else None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.tuner._fit_epochs = None


class _BestWeightsAtEnd(keras.callbacks.Callback):
    """KerasTuner's ``SaveBestEpoch`` with one file write per training instead of one per
    improving epoch: the best weights wait in memory until ``on_train_end``."""

    def __init__(self, objective: Any, filepath: str,
                 may_be_kept: Callable[[float], bool] = lambda value: True) -> None:
        super().__init__()
        self.objective, self.filepath, self.may_be_kept = objective, filepath, may_be_kept
        self.best_value = -math.inf if objective.direction == "max" else math.inf
        self.best_weights: list[Any] | None = None
        self.best_is_last = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.best_is_last = False
        if not self.objective.has_value(logs):  # as SaveBestEpoch: keep the latest
            self.best_weights, self.best_is_last = self.model.get_weights(), True
            return
        value = self.objective.get_value(logs)
        if self.objective.better_than(value, self.best_value):
            self.best_value = value
            self.best_weights, self.best_is_last = self.model.get_weights(), True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is None or not self.may_be_kept(self.best_value):
            return  # nothing trained, or a file that best-k retention would delete at once
        if self.best_is_last:  # the model holds the best weights already
            self.model.save_weights(self.filepath)
            return
        last = self.model.get_weights()
        self.model.set_weights(self.best_weights)
        self.model.save_weights(self.filepath)
        self.model.set_weights(last)


# A second SIGINT/SIGTERM this soon after the first is the same request delivered twice
# (e.g. a job scheduler signals every process and the launcher relays it): not a new one.
_REPEAT_SECONDS = 2.0


@contextlib.contextmanager
def _remember_stop(oracle: Any) -> Iterator[None]:
    """While searching, note SIGINT/SIGTERM in ``oracle.stop_requested`` before the usual
    handler raises KeyboardInterrupt: raised inside a finalizer or a callback that catches
    it, Python ignores it ("Exception ignored in ...") and the search would run on; the
    oracle stops at its next check instead (next epoch or next trial)."""
    oracle.stop_requested = False  # a new search() after an interrupted one
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    stopped_at: list[float] = []

    def wrap(handler: Any) -> Any:
        def on_signal(signum: int, frame: Any) -> None:
            if stopped_at and time.monotonic() - stopped_at[0] < _REPEAT_SECONDS:
                return
            stopped_at[:] = [time.monotonic()]
            oracle.stop_requested = True
            handler(signum, frame)
        return on_signal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    wrapped = {sig: h for sig, h in previous.items() if callable(h)}  # not SIG_DFL/SIG_IGN
    for sig, handler in wrapped.items():
        signal.signal(sig, wrap(handler))
    try:
        yield
    finally:
        for sig, handler in wrapped.items():
            signal.signal(sig, handler)


def _padding_position(trials: dict[str, Any], trial_id: str) -> int:
    """Where a trial that ends without completing lands in KerasTuner's
    ``get_best_trials``: after every completed trial and the unfinished ones created
    before it (the trials dict keeps creation order)."""
    completed = sum(t.status == TrialStatus.COMPLETED for t in trials.values())
    before = 0
    for other_id, other in trials.items():
        if other_id == trial_id:
            break
        if other.status != TrialStatus.COMPLETED:
            before += 1
    return completed + before


def _delete_study_if_any(storage: Any, name: str) -> None:
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
