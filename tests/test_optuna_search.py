"""KerasTuner parity of ``OptunaSearch`` (one test per row of docs/parity.md).

Where it makes sense a test runs KerasTuner's own ``RandomSearch`` on the same build
function and compares. Models are tiny (Dense on 48 random samples with 4 features);
searches that do not need training use ``Cheap``, a ``HyperModel`` whose ``fit`` computes
the objective from the hyperparameters, so they cost only KerasTuner's per-trial overhead.
"""
from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stdout

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from keras_tuner.engine.trial import TrialStatus
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from searchers import OptunaSearch
from searchers.optuna_oracle import top_up_tickets
from tests.tiny import build, data

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

X, Y, XV, YV = data(0)


class Recorder(keras.callbacks.Callback):
    """Records every training run. KerasTuner deep-copies callbacks for each trial, so the
    log lives on the class, not on the instance."""

    runs: list[dict] = []

    def on_train_begin(self, logs=None):
        Recorder.runs.append({"epochs": 0, "batches": 0, "val_loss": []})

    def on_train_batch_end(self, batch, logs=None):
        Recorder.runs[-1]["batches"] += 1

    def on_epoch_end(self, epoch, logs=None):
        Recorder.runs[-1]["epochs"] += 1
        Recorder.runs[-1]["val_loss"].append((logs or {}).get("val_loss"))


def take_runs() -> list[dict]:
    runs, Recorder.runs = Recorder.runs, []
    return runs


class Cheap(keras_tuner.HyperModel):
    """No training: ``fit`` returns a score computed from the hyperparameters."""

    calls: list[dict] = []

    def build(self, hp):
        hp.Int("u", 1, 100)
        hp.Float("f", 0.0, 1.0)
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
        Cheap.calls.append(dict(hp.values))
        score = float((hp["u"] - 50) ** 2 + hp["f"])
        return {"score": score, "val_loss": score,
                "val_accuracy": 1.0 / (1.0 + abs(hp["u"] - 30)) + hp["f"] * 1e-3}


SCORE = keras_tuner.Objective("score", "min")


def ost(hypermodel, path, name="p", **kw):
    kw.setdefault("objective", SCORE)
    return OptunaSearch(hypermodel, directory=str(path), project_name=name, **kw)


def rst(hypermodel, path, name="r", **kw):
    kw.setdefault("objective", SCORE)
    return keras_tuner.RandomSearch(hypermodel, directory=str(path), project_name=name, **kw)


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def captured(fn, *args) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        fn(*args)
    return buf.getvalue()


# ---- one real search per tuner, shared by the cheap assertions below ---------------------
@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """OptunaSearch and RandomSearch, same build, same search() call: 3 trials, 2 epochs.
    OptunaSearch without its default pruner: every trial trains to the end, as in KerasTuner
    (the default's pruning: ``test_default_search_is_tpe_with_successive_halving``)."""
    root = tmp_path_factory.mktemp("parity")
    out = {}
    for kind, make in (("optuna", ost), ("random", rst)):
        take_runs()
        extra = {"pruner": optuna.pruners.NopPruner()} if kind == "optuna" else {}
        tuner = make(build, root / kind, name="proj", objective="val_loss", max_trials=3,
                     seed=11, overwrite=True, **extra)
        tuner.search(X, Y, epochs=2, batch_size=16, validation_data=(XV, YV),
                     callbacks=[Recorder()], verbose=0)
        out[kind] = (tuner, take_runs())
    return out


def test_search_fit_args_callbacks_epochs(searched):
    for kind in ("optuna", "random"):
        tuner, runs = searched[kind]
        assert len(runs) == 3, kind  # the callback ran in every trial
        for run in runs:
            assert run["epochs"] == 2, kind               # epochs=
            assert run["batches"] == 2 * 3, kind          # batch_size=16 on 48 samples
            assert all(v is not None for v in run["val_loss"]), kind  # validation_data=


def test_max_trials(searched):
    for kind in ("optuna", "random"):
        assert len(searched[kind][0].oracle.trials) == 3
    study = searched["optuna"][0].study
    assert states(study) == ["COMPLETE"] * 3  # no ticket left WAITING, none run twice
    kt = searched["optuna"][0].oracle.trials
    assert sorted(t.user_attrs["kt_trial_id"] for t in study.trials) == sorted(kt)
    for t in study.trials:
        assert t.value == pytest.approx(kt[t.user_attrs["kt_trial_id"]].score)


def _normalise(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.startswith("Results in ")]
    return [re.sub(r"[-+]?\d[\d.e+-]*", "N", ln) for ln in lines]


def test_results_summary_matches_random_search(searched):
    outs = {k: captured(searched[k][0].results_summary, 2) for k in searched}
    assert outs["optuna"].count("Score:") == 2
    assert _normalise(outs["optuna"]) == _normalise(outs["random"])


def test_search_space_summary_matches_random_search(searched):
    outs = {k: captured(searched[k][0].search_space_summary) for k in searched}
    assert "units (Int)" in outs["optuna"] and "lr (Float)" in outs["optuna"]
    assert outs["optuna"] == outs["random"]


def test_get_best_hyperparameters(searched):
    tuner, _ = searched["optuna"]
    scores = {tid: t.score for tid, t in tuner.oracle.trials.items()}
    best_id = min(scores, key=scores.get)
    best = tuner.get_best_hyperparameters(1)[0]
    assert best.values == tuner.oracle.trials[best_id].hyperparameters.values
    assert tuner.study.best_trial.params == best.values
    assert len(tuner.get_best_hyperparameters(3)) == 3


@pytest.mark.parametrize("kind", ["optuna", "random"])
def test_get_best_models(searched, kind):
    tuner, _ = searched[kind]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    assert model.layers[0].units == best_trial.hyperparameters["units"]
    # the checkpoint of the best epoch is loaded: it reproduces the trial's score
    val_loss = model.evaluate(XV, YV, verbose=0)[0]
    assert val_loss == pytest.approx(best_trial.score, rel=1e-4)


def test_hypermodel_build(searched):
    tuner, _ = searched["optuna"]
    best = tuner.get_best_hyperparameters(1)[0]
    model = tuner.hypermodel.build(best)
    assert model.layers[0].units == best["units"]
    assert float(model.optimizer.learning_rate) == pytest.approx(best["lr"], rel=1e-6)


def test_directory_project_name_layout(searched):
    def files(tuner):
        root = tuner.project_dir
        return {os.path.relpath(os.path.join(d, f), root)
                for d, _, fs in os.walk(root) for f in fs}
    ours, theirs = files(searched["optuna"][0]), files(searched["random"][0])
    assert searched["optuna"][0].project_dir.endswith(os.path.join("optuna", "proj"))
    assert ours - theirs == {"optuna.db"}  # the same layout, plus the study store
    assert theirs <= ours


# ---- search() arguments ------------------------------------------------------------------
def test_validation_split(tmp_path):
    take_runs()
    tuner = ost(build, tmp_path, objective="val_loss", max_trials=1)
    tuner.search(X, Y, epochs=1, batch_size=12, validation_split=0.25,
                 callbacks=[Recorder()], verbose=0)
    (run,) = take_runs()
    assert run["batches"] == 3  # 36 training samples after the split
    assert math.isfinite(run["val_loss"][0])
    assert tuner.study.trials[0].value == pytest.approx(run["val_loss"][0])


def test_executions_per_trial_averages(tmp_path):
    take_runs()
    tuner = ost(build, tmp_path, objective="val_loss", max_trials=1, executions_per_trial=2)
    tuner.search(X, Y, epochs=2, validation_data=(XV, YV), callbacks=[Recorder()], verbose=0)
    runs = take_runs()
    assert len(runs) == 2
    expected = np.mean([min(r["val_loss"]) for r in runs])  # KerasTuner: mean of the bests
    assert min(runs[0]["val_loss"]) != pytest.approx(min(runs[1]["val_loss"]))
    trial = tuner.oracle.get_best_trials(1)[0]
    assert trial.score == pytest.approx(expected)
    assert tuner.study.trials[0].value == pytest.approx(expected)
    # intermediate values: one per epoch (the first execution's; a step is reported once)
    assert sorted(tuner.study.trials[0].intermediate_values) == [1, 2]


# ---- objective ---------------------------------------------------------------------------
def test_objective_string_direction_inferred(tmp_path):
    for name, direction in (("val_accuracy", "MAXIMIZE"), ("val_loss", "MINIMIZE")):
        tuner = ost(Cheap(), tmp_path, name=name, objective=name, max_trials=3, seed=1)
        tuner.search(verbose=0)
        assert tuner.study.direction.name == direction
        values = [t.value for t in tuner.study.trials]
        pick = max if direction == "MAXIMIZE" else min
        assert tuner.oracle.get_best_trials(1)[0].score == pick(values)
        assert tuner.study.best_value == pick(values)


def neg_mse(y_true, y_pred):
    return -keras.ops.mean(keras.ops.square(y_true - keras.ops.squeeze(y_pred, -1)))


def build_custom_metric(hp):
    model = build(hp)
    model.compile(optimizer=model.optimizer, loss="binary_crossentropy", metrics=[neg_mse])
    return model


def test_custom_metric_objective_direction_max(tmp_path):
    tuner = ost(build_custom_metric, tmp_path, max_trials=3, seed=2,
                objective=keras_tuner.Objective("val_neg_mse", direction="max"))
    tuner.search(X, Y, epochs=1, validation_data=(XV, YV), verbose=0)
    assert tuner.study.direction.name == "MAXIMIZE"
    values = {t.user_attrs["kt_trial_id"]: t.value for t in tuner.study.trials}
    assert all(v < 0 for v in values.values())
    best_id = max(values, key=values.get)
    assert len(set(values.values())) == 3  # no ties: the max is one trial
    assert tuner.oracle.get_best_trials(1)[0].trial_id == best_id
    assert tuner.get_best_hyperparameters(1)[0].values == tuner.study.best_trial.params
    assert tuner.study.best_trial.user_attrs["kt_trial_id"] == best_id


def test_multi_objective_list_is_scalarised_like_kerastuner(tmp_path):
    objective = ["val_loss", keras_tuner.Objective("val_accuracy", "max")]
    tuner = ost(build, tmp_path, objective=objective, max_trials=2, seed=1)
    tuner.search(X, Y, epochs=1, validation_data=(XV, YV), verbose=0)
    assert tuner.study.direction.name == "MINIMIZE"  # KerasTuner minimises the signed sum
    for t in tuner.study.trials:
        kt = tuner.oracle.trials[t.user_attrs["kt_trial_id"]]
        assert t.value == pytest.approx(kt.score)
        assert kt.score == pytest.approx(kt.metrics.get_last_value("val_loss")
                                         - kt.metrics.get_last_value("val_accuracy"))
        assert t.intermediate_values[1] == pytest.approx(kt.score)


# ---- project lifecycle --------------------------------------------------------------------
def test_overwrite_restarts_from_zero(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    for storage in (None, url):  # default store in the project dir; an explicit store
        name = "default" if storage is None else "explicit"
        first = ost(Cheap(), tmp_path, name=name, max_trials=2, seed=1, storage=storage)
        first.search(verbose=0)
        assert len(first.study.trials) == 2
        again = ost(Cheap(), tmp_path, name=name, max_trials=2, seed=1, storage=storage,
                    overwrite=True)
        assert again.oracle.trials == {} and again.study.trials == []
        again.search(verbose=0)
        assert sorted(again.oracle.trials) == ["0", "1"]
        assert [t.number for t in again.study.trials] == [0, 1]


def test_resume_continues_without_rerunning(tmp_path):
    Cheap.calls = []
    first = ost(Cheap(), tmp_path, max_trials=2, seed=4)
    first.search(verbose=0)
    assert len(Cheap.calls) == 2
    resumed = ost(Cheap(), tmp_path, max_trials=4, seed=4)  # overwrite=False: reload
    assert sorted(resumed.oracle.trials) == ["0", "1"]
    assert resumed.get_best_hyperparameters(1)[0].values == first.study.best_trial.params
    resumed.search(verbose=0)
    assert len(Cheap.calls) == 4  # the two finished trials were not run again
    assert sorted(resumed.oracle.trials) == ["0", "1", "2", "3"]
    study = resumed.study
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert states(study) == ["COMPLETE"] * 4
    configs = [tuple(sorted(c.items())) for c in Cheap.calls]
    assert len(set(configs)) == 4  # a seeded resume does not replay the first configurations


class Interrupt(Cheap):
    """Dies (like a killed process) in the second trial of the first run."""

    die_at = 2

    def fit(self, hp, model, *args, **kwargs):
        if len(Cheap.calls) + 1 == Interrupt.die_at:
            Interrupt.die_at = None
            raise KeyboardInterrupt  # not an Exception: KerasTuner does not catch it
        return super().fit(hp, model, *args, **kwargs)


def test_resume_after_crash_retries_interrupted_trial(tmp_path):
    Cheap.calls, Interrupt.die_at = [], 2
    with pytest.raises(KeyboardInterrupt):
        ost(Interrupt(), tmp_path, max_trials=3, seed=4).search(verbose=0)
    resumed = ost(Interrupt(), tmp_path, max_trials=3, seed=4)
    resumed.search(verbose=0)
    # ids are the numbers of the study trials they first ran as: #1 was interrupted and
    # retried under its id "1" (taking ticket #2), the third new trial ran as #3
    assert sorted(resumed.oracle.trials) == ["0", "1", "3"]
    assert all(t.status == TrialStatus.COMPLETED for t in resumed.oracle.trials.values())
    study = resumed.study
    by_state = {s: [t for t in study.trials if t.state.name == s] for s in set(states(study))}
    assert len(by_state["COMPLETE"]) == 3 and len(by_state["FAIL"]) == 1
    (dead,) = by_state["FAIL"]
    assert dead.user_attrs["error"] == "interrupted"  # failed at once, not left RUNNING
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == dead.number]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.user_attrs["kt_trial_id"] == dead.user_attrs["kt_trial_id"] == "1"
    assert Cheap.calls[1] == {**dead.params}  # the retried trial ran with the same values


class Swallowed(Cheap):
    """Its first trial gets SIGINT and swallows the KeyboardInterrupt, as Python does when
    it is raised inside a finalizer ("Exception ignored in ...")."""

    def fit(self, hp, model, *args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        return super().fit(hp, model, *args, **kwargs)


def test_swallowed_interrupt_still_stops_the_search(tmp_path):
    Cheap.calls = []
    tuner = ost(Swallowed(), tmp_path, max_trials=3, seed=4)
    with pytest.raises(KeyboardInterrupt):
        tuner.search(verbose=0)
    assert len(Cheap.calls) == 1  # stopped before the next trial
    assert states(tuner.study) == ["COMPLETE"]  # none left RUNNING, no ticket left waiting
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_metric_names_set_never_overwritten(tmp_path):
    tuner = ost(Cheap(), tmp_path, objective="val_loss", max_trials=1)
    tuner.search(verbose=0)
    assert tuner.study.metric_names == ["val_loss"]  # the dashboard's name, not "Objective 0"
    named = optuna.create_study(study_name="named")
    named.set_metric_names(["mine"])
    ost(Cheap(), tmp_path, name="n", objective="val_loss", max_trials=1, study=named)
    assert named.metric_names == ["mine"]


def test_seed_reproduces_proposals(tmp_path):
    def proposals(make, name, seed):
        tuner = make(Cheap(), tmp_path, name=name, max_trials=3, seed=seed)
        tuner.search(verbose=0)
        return [tuner.oracle.trials[k].hyperparameters.values for k in sorted(tuner.oracle.trials)]
    ours = [proposals(ost, f"o{i}", 7) for i in range(2)]
    theirs = [proposals(rst, f"r{i}", 7) for i in range(2)]
    assert ours[0] == ours[1] and theirs[0] == theirs[1]
    assert len({tuple(sorted(v.items())) for v in ours[0]}) == 3
    assert proposals(ost, "other", 8) != ours[0]


# ---- failures -----------------------------------------------------------------------------
class Failing(Cheap):
    def fit(self, hp, model, *args, **kwargs):
        raise ValueError("boom in fit")


def test_max_consecutive_failed_trials(tmp_path):
    for make in (rst, ost):
        tuner = make(Failing(), tmp_path, max_trials=5, max_consecutive_failed_trials=2)
        with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
            tuner.search(verbose=0)
        assert [t.status for t in tuner.oracle.trials.values()] == [TrialStatus.FAILED] * 2
    failed = [t for t in tuner.study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2
    assert all("boom in fit" in t.user_attrs["error"] for t in failed)
    assert not [t for t in tuner.study.trials if t.state == TrialState.COMPLETE]


class FlakyOnce(Cheap):
    """Every trial fails on its first run and succeeds when KerasTuner retries it."""

    def fit(self, hp, model, *args, **kwargs):
        Cheap.calls.append(dict(hp.values))
        if len(Cheap.calls) % 2:
            raise RuntimeError("transient")
        return float(hp["u"])


def test_max_retries_per_trial(tmp_path):
    Cheap.calls = []
    tuner = ost(FlakyOnce(), tmp_path, max_trials=2, max_retries_per_trial=1, seed=3)
    tuner.search(verbose=0)
    assert len(Cheap.calls) == 4
    assert Cheap.calls[0] == Cheap.calls[1] and Cheap.calls[2] == Cheap.calls[3]
    assert all(t.status == TrialStatus.COMPLETED for t in tuner.oracle.trials.values())
    assert states(tuner.study) == ["COMPLETE", "COMPLETE"]


# ---- model definitions --------------------------------------------------------------------
class WithFit(keras_tuner.HyperModel):
    def build(self, hp):
        hp.Choice("width", [2, 4])
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])

    def fit(self, hp, model, x, y, scale=1.0, **kwargs):
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(x, y, epochs=1, **kwargs)
        return {"custom": scale * hp["width"], "loss": history.history["loss"][-1]}


def test_hypermodel_subclass_with_own_fit(tmp_path):
    tuner = ost(WithFit(), tmp_path, max_trials=2, seed=1,
                objective=keras_tuner.Objective("custom", "max"))
    tuner.search(X, Y, scale=10.0, verbose=0)  # extra search() kwargs reach fit()
    for t in tuner.study.trials:
        assert t.value == 10.0 * t.params["width"]
    assert tuner.get_best_hyperparameters(1)[0]["width"] == max(
        t.params["width"] for t in tuner.study.trials)


class Conditional(keras_tuner.HyperModel):
    seen: list[dict] = []

    def build(self, hp):
        kind = hp.Choice("kind", ["a", "b"])
        with hp.conditional_scope("kind", "a"):
            if kind == "a":
                hp.Int("a_units", 1, 4)
        with hp.conditional_scope("kind", "b"):
            if kind == "b":
                hp.Float("b_rate", 0.0, 1.0)
        if hp.Boolean("extra"):
            hp.Int("late", 1, 9)  # first appears in the build of a trial with extra=True
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
        Conditional.seen.append(dict(hp.values))
        return 1.0


def test_conditional_scopes_and_late_hyperparameters(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, study_name="cond")
    study.enqueue_trial({"kind": "a", "extra": True})  # Optuna's warm start still works
    study.enqueue_trial({"kind": "b", "extra": True})
    Conditional.seen = []
    tuner = ost(Conditional(), tmp_path, name="cond", storage=url, max_trials=5, seed=1)
    tuner.search(verbose=0)
    trials = tuner.study.trials
    assert states(tuner.study) == ["COMPLETE"] * 5
    # trial 0: "late" is not in the space yet; the build gives it its default (as KerasTuner)
    assert set(trials[0].params) == {"kind", "a_units", "extra"}
    assert Conditional.seen[0]["late"] == 1
    assert set(trials[1].params) == {"kind", "b_rate", "extra", "late"}
    for t, seen in zip(trials, Conditional.seen):
        assert ("a_units" in t.params) == (t.params["kind"] == "a")
        assert ("b_rate" in t.params) == (t.params["kind"] == "b")
        assert {k: seen[k] for k in t.params} == t.params  # the build got Optuna's values
    for t in trials[1:]:
        assert "late" in t.params  # in the space from then on (KerasTuner does the same)


class AllTypes(keras_tuner.HyperModel):
    seen: list[dict] = []

    def build(self, hp):
        hp.Int("i_step", 0, 10, step=5)
        hp.Int("i_log", 1, 1000, sampling="log")
        hp.Int("i_logstep", 1, 64, step=2, sampling="log")
        hp.Float("f_step", 0.0, 1.0, step=0.25)
        hp.Float("f_log", 1e-4, 1e-1, sampling="log")
        hp.Float("f_rlog", 0.1, 0.9, sampling="reverse_log")
        hp.Choice("c", [8, 16, 32])
        hp.Boolean("b")
        hp.Fixed("fx", "relu")
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
        AllTypes.seen.append(dict(hp.values))
        return float(hp["i_log"])


def test_hyperparameter_types_step_and_log(tmp_path):
    AllTypes.seen = []
    tuner = ost(AllTypes(), tmp_path, max_trials=4, seed=5)
    tuner.search(verbose=0)
    assert len(AllTypes.seen) == 4
    d = optuna.distributions
    expected = {
        "i_step": d.IntDistribution(0, 10, step=5),
        "i_log": d.IntDistribution(1, 1000, log=True),
        "i_logstep": d.CategoricalDistribution([1, 2, 4, 8, 16, 32, 64]),  # KerasTuner's grid
        "f_step": d.FloatDistribution(0.0, 1.0, step=0.25),
        "f_log": d.FloatDistribution(1e-4, 1e-1, log=True),
        "f_rlog": d.FloatDistribution(0.1, 0.9),  # Optuna has no reverse-log: uniform
        "c": d.CategoricalDistribution([8, 16, 32]),
        "b": d.CategoricalDistribution([False, True]),
        "fx": d.CategoricalDistribution(["relu"]),  # Fixed: recorded as a one-choice categorical
    }
    for t, v in zip(tuner.study.trials, AllTypes.seen):
        assert t.params == v  # every type, Fixed included; the build got exactly Optuna's values
        assert t.distributions == expected
        assert v["i_step"] in (0, 5, 10) and isinstance(v["i_step"], int)
        assert 1 <= v["i_log"] <= 1000 and isinstance(v["i_log"], int)
        assert v["i_logstep"] in (1, 2, 4, 8, 16, 32, 64)
        assert v["f_step"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert 1e-4 <= v["f_log"] <= 1e-1
        assert 0.1 <= v["f_rlog"] <= 0.9
        assert v["c"] in (8, 16, 32) and v["b"] in (True, False) and v["fx"] == "relu"


def test_hyperparameters_argument_and_tune_new_entries(tmp_path):
    for make in (ost, rst):
        hp = keras_tuner.HyperParameters()
        hp.Int("u", 40, 60)
        Cheap.calls = []
        tuner = make(Cheap(), tmp_path, name=make.__name__, max_trials=3, seed=2,
                     hyperparameters=hp, tune_new_entries=False)
        tuner.search(verbose=0)
        assert [c["f"] for c in Cheap.calls] == [0.0] * 3  # untuned: default value
        assert all(40 <= c["u"] <= 60 for c in Cheap.calls)
        if make is ost:
            assert all(set(t.params) == {"u"} for t in tuner.study.trials)


class SubclassTuner(OptunaSearch):
    def run_trial(self, trial, *args, **kwargs):
        x = trial.hyperparameters.Float("x", -2.0, 2.0)
        return (x - 1.0) ** 2


def test_tuner_subclass_run_trial(tmp_path):
    tuner = SubclassTuner(objective="loss", max_trials=3, seed=1,
                          directory=str(tmp_path), project_name="sub")
    tuner.search(verbose=0)
    trials = tuner.study.trials
    assert trials[0].params == {}  # the space is unknown before the first run (as KT)
    for t in trials[1:]:
        assert -2.0 <= t.params["x"] <= 2.0
        assert t.value == pytest.approx((t.params["x"] - 1.0) ** 2)


def test_exhausted_space_kerastuner_stops_optuna_runs_max_trials(tmp_path):
    class Tiny(Cheap):
        def build(self, hp):
            hp.Choice("u", [1, 2])
            hp.Fixed("f", 0.0)
            return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    theirs = rst(Tiny(), tmp_path, max_trials=4, seed=1)
    theirs.search(verbose=0)
    ours = ost(Tiny(), tmp_path, max_trials=4, seed=1)
    ours.search(verbose=0)
    assert len(theirs.oracle.trials) == 2   # RandomSearch stops: no new combination left
    assert len(ours.oracle.trials) == 4     # Optuna samplers may repeat a configuration
    assert states(ours.study) == ["COMPLETE"] * 4


# ---- Optuna-only --------------------------------------------------------------------------
SAMPLERS = {
    "tpe": lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=1),
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    "qmc": lambda: optuna.samplers.QMCSampler(seed=0),
    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=0, n_startup_trials=1),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_any_sampler(tmp_path, name):
    if name == "cmaes":
        pytest.importorskip("cmaes", reason="CmaEsSampler needs the cmaes package")
    sampler = SAMPLERS[name]()
    proposed: dict[int, dict[str, tuple[str, object]]] = {}  # trial number -> name -> (how, value)
    relative, independent = sampler.sample_relative, sampler.sample_independent

    def sample_relative(study, trial, search_space):
        values = relative(study, trial, search_space)
        proposed.setdefault(trial.number, {}).update({k: ("relative", v) for k, v in values.items()})
        return values

    def sample_independent(study, trial, param_name, param_distribution):
        value = independent(study, trial, param_name, param_distribution)
        proposed.setdefault(trial.number, {})[param_name] = ("independent", value)
        return value

    sampler.sample_relative, sampler.sample_independent = sample_relative, sample_independent
    tuner = ost(Cheap(), tmp_path, max_trials=3, sampler=sampler)
    tuner.search(verbose=0)
    assert tuner.study.sampler is sampler
    assert states(tuner.study) == ["COMPLETE"] * 3
    # every value of every trial is the one this sampler proposed
    assert {t.number: t.params for t in tuner.study.trials} == {
        n: {k: v for k, (_, v) in got.items()} for n, got in proposed.items()}
    for t in tuner.study.trials:
        assert 1 <= t.params["u"] <= 100 and 0.0 <= t.params["f"] <= 1.0
    if name in ("qmc", "cmaes"):  # once the space is known, their own joint proposal is used
        assert {how for n in (1, 2) for how, _ in proposed[n].values()} == {"relative"}


class PruneTrialZero(optuna.pruners.BasePruner):
    """Prunes trial 0 as soon as it has reported a step; never prunes the others."""

    def prune(self, study, trial):
        return trial.number == 0 and trial.last_step is not None and trial.last_step >= 1


def test_pruner_stops_training_and_trial_is_never_best(tmp_path):
    take_runs()
    tuner = ost(build, tmp_path, objective="val_loss", max_trials=2, seed=3,
                executions_per_trial=2, pruner=PruneTrialZero())
    tuner.search(X, Y, epochs=3, validation_data=(XV, YV), callbacks=[Recorder()], verbose=0)
    runs = take_runs()
    study = tuner.study
    assert states(study) == ["PRUNED", "COMPLETE"]  # the search went on after pruning
    assert sorted(study.trials[0].intermediate_values) == [1]
    assert sorted(study.trials[1].intermediate_values) == [1, 2, 3]
    # epochs actually trained: trial 0 stops after epoch 1 in both executions
    assert [r["epochs"] for r in runs] == [1, 1, 3, 3]
    pruned_id = study.trials[0].user_attrs["kt_trial_id"]
    done_id = study.trials[1].user_attrs["kt_trial_id"]
    assert tuner.oracle.trials[pruned_id].status == TrialStatus.STOPPED
    assert tuner.oracle.trials[done_id].status == TrialStatus.COMPLETED
    assert tuner.oracle.get_best_trials(1)[0].trial_id == done_id
    assert tuner.get_best_hyperparameters(1)[0].values == study.trials[1].params
    assert study.best_trial.number == 1


class AlwaysPrune(optuna.pruners.BasePruner):
    """Says "prune" at every step it is asked about, and counts the questions."""

    asked: list[tuple[int, int]] = []

    def prune(self, study, trial):
        AlwaysPrune.asked.append((trial.number, trial.last_step))
        return True


def test_the_pruner_is_not_asked_at_the_last_epoch(tmp_path):
    """Stopping at the last epoch saves nothing: a 1-epoch trial completes with its value
    even under a pruner that always prunes; a 3-epoch one is pruned after epoch 1."""
    AlwaysPrune.asked = []
    short = ost(build, tmp_path, name="short", objective="val_loss", max_trials=2, seed=3,
                pruner=AlwaysPrune())
    short.search(X, Y, epochs=1, validation_data=(XV, YV), verbose=0)
    assert states(short.study) == ["COMPLETE", "COMPLETE"]
    assert [sorted(t.intermediate_values) for t in short.study.trials] == [[1], [1]]
    assert AlwaysPrune.asked == []
    longer = ost(build, tmp_path, name="longer", objective="val_loss", max_trials=1, seed=3,
                 pruner=AlwaysPrune())
    longer.search(X, Y, epochs=3, validation_data=(XV, YV), verbose=0)
    assert states(longer.study) == ["PRUNED"]
    assert AlwaysPrune.asked == [(0, 1)]


def test_sql_persistence(tmp_path):
    tuner = ost(Cheap(), tmp_path, name="proj", max_trials=2, seed=1)
    tuner.search(verbose=0)
    db = tmp_path / "proj" / "optuna.db"
    assert db.exists()  # default: an SQLite file in the project directory
    loaded = optuna.load_study(study_name="proj", storage=f"sqlite:///{db}")
    assert [t.value for t in loaded.trials] == [
        tuner.oracle.trials[t.user_attrs["kt_trial_id"]].score for t in loaded.trials]
    # any Optuna storage object works too, e.g. the journal file storage
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    other = ost(Cheap(), tmp_path, name="journal", max_trials=2, seed=1, storage=journal)
    other.search(verbose=0)
    reread = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    assert states(optuna.load_study(study_name="journal", storage=reread)) == ["COMPLETE"] * 2


class WorkerA(Cheap):
    """Worker A: while its first trial runs, worker B runs its whole search."""

    other: OptunaSearch | None = None

    def fit(self, hp, model, *args, **kwargs):
        other, WorkerA.other = WorkerA.other, None
        if other is not None:
            other.search(verbose=0)
        return super().fit(hp, model, *args, **kwargs)


def test_shared_study_several_workers_max_trials_exact(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    worker_b = ost(Cheap(), tmp_path / "b", storage=url, study_name="shared",
                   max_trials=4, seed=2)
    worker_a = ost(WorkerA(), tmp_path / "a", storage=url, study_name="shared",
                   max_trials=4, seed=1)
    WorkerA.other = worker_b
    worker_a.search(verbose=0)
    assert len(worker_a.oracle.trials) == 1 and len(worker_b.oracle.trials) == 3
    study = optuna.load_study(study_name="shared", storage=url)
    assert states(study) == ["COMPLETE"] * 4  # exactly max_trials between the two workers


WORKER = r"""
import os, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
import keras, keras_tuner, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from searchers import OptunaSearch
optuna.logging.set_verbosity(optuna.logging.WARNING)

class Cheap(keras_tuner.HyperModel):
    def build(self, hp):
        hp.Int("u", 1, 100)
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    def fit(self, hp, model, *args, **kwargs):
        return float(hp["u"])

root, worker = sys.argv[1], int(sys.argv[2])
storage = JournalStorage(JournalFileBackend(os.path.join(root, "journal.log")))
tuner = OptunaSearch(Cheap(), objective=keras_tuner.Objective("score", "min"), max_trials=5,
                     seed=worker, storage=storage, study_name="shared",
                     directory=root, project_name=f"worker{worker}",
                     manage_tickets=False)  # take the tickets issued by the launcher, issue none
tuner.search(verbose=0)
print("RAN", len(tuner.oracle.trials))
"""


def test_shared_study_two_processes_journal_storage(tmp_path):
    # the supported pattern for workers started at once: issue the tickets once, up front
    launcher = optuna.create_study(study_name="shared", storage=JournalStorage(
        JournalFileBackend(str(tmp_path / "journal.log"))))
    assert top_up_tickets(launcher, 5) == 5 and top_up_tickets(launcher, 5) == 0
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2)]
    ran = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        ran += [int(line.split()[1]) for line in out.splitlines() if line.startswith("RAN")]
    assert sum(ran) == 5  # two concurrent workers, exactly max_trials trials between them
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    assert states(optuna.load_study(study_name="shared", storage=storage)) == ["COMPLETE"] * 5


def test_best_epoch_weights_written_once_at_train_end(tmp_path) -> None:
    """OptunaSearch's checkpoint keeps the best epoch (not the last), written when training
    ends, and leaves the model with its last weights (what KerasTuner's SaveBestEpoch gives)."""
    import keras
    import numpy as np

    from searchers.optuna_tuner import _BestWeightsAtEnd

    def model():
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.compile("sgd", "mse")
        return m

    m, path = model(), str(tmp_path / "checkpoint.weights.h5")
    cb = _BestWeightsAtEnd(keras_tuner.Objective("val_loss", "min"), path)
    cb.set_model(m)
    weights = {}
    for epoch, val_loss in enumerate([0.5, 0.3, 0.9]):
        m.set_weights([np.full((2, 1), float(epoch)), np.full((1,), float(epoch))])
        weights[epoch] = m.get_weights()
        cb.on_epoch_end(epoch, {"val_loss": val_loss})
    assert not (tmp_path / "checkpoint.weights.h5").exists()  # nothing written per epoch
    cb.on_train_end()
    reloaded = model()
    reloaded.load_weights(path)
    for got, want in zip(reloaded.get_weights(), weights[1]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(m.get_weights(), weights[2]):
        np.testing.assert_array_equal(got, want)


def test_default_search_is_tpe_with_successive_halving(tmp_path):
    """No sampler/pruner given: the benchmark's default, which stops weak trials early."""
    from searchers.optuna_components import SHA_MIN_RESOURCE, SHA_REDUCTION_FACTOR
    tuner = ost(build, tmp_path, name="d", objective="val_loss", max_trials=8, seed=3)
    sampler, pruner = tuner.study.sampler, tuner.study.pruner
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 10
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert (pruner._min_resource, pruner._reduction_factor) == (SHA_MIN_RESOURCE,
                                                                SHA_REDUCTION_FACTOR)
    tuner.search(X, Y, epochs=4, batch_size=16, validation_data=(XV, YV), verbose=0)
    trials = tuner.study.trials
    assert len(trials) == 8 and "PRUNED" in states(tuner.study)   # it really prunes
    for t in trials:
        if t.state.name == "PRUNED":   # at a rung: epoch 2 (or 6, beyond these 4)
            assert max(t.intermediate_values) == SHA_MIN_RESOURCE
