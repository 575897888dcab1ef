"""``OptunaSearch`` with several objectives: a real multi-objective Optuna study
(searchers/objectives.py), not KerasTuner's sum, with model size as an objective and a
size cap as an Optuna constraint. Tiny Dense models on random data, 1-2 epochs."""
from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout

import keras_tuner
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from searchers import OptunaSearch
from searchers.objectives import check_pruner, create_objective, values_of
from tests.tiny import build, data

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

X, Y, XV, YV = data(1)
CAP = 30  # units 2, 4 -> 13, 25 parameters (feasible); 6, 8 -> 37, 49 (infeasible)


def n_params(units: int) -> int:
    return 4 * units + units + units + 1


def search(tmp_path, **kwargs) -> OptunaSearch:
    kwargs.setdefault("sampler", optuna.samplers.RandomSampler(seed=3))
    tuner = OptunaSearch(build, objective=["val_loss", "params"], max_trials=kwargs.pop("trials", 8),
                         directory=str(tmp_path), project_name="mo", **kwargs)
    tuner.search(X, Y, validation_data=(XV, YV), epochs=2, verbose=0)
    return tuner


def test_two_objectives_end_to_end(tmp_path):
    tuner = search(tmp_path, multi_objective=True, max_params=CAP)
    study = tuner.study
    assert study.directions == [StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_loss", "params"]  # what the dashboard shows
    assert isinstance(study.pruner, optuna.pruners.NopPruner)  # nothing prunes several objectives
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 8
    feasible = set()
    for t in done:
        assert len(t.values) == 2
        assert t.values[1] == n_params(t.params["units"])  # the built model's size, no user code
        kt = tuner.oracle.trials[t.user_attrs["kt_trial_id"]]
        # val_loss at the epoch KerasTuner chose for the trial (the checkpointed one)
        assert t.values[0] == pytest.approx(min(kt.metrics.get_history("val_loss")[0].value))
        assert t.constraints == {"max_params": t.values[1] - CAP}  # Optuna's constraint API
        # each epoch's val_loss (no pruning: stored, not reported to a pruner)
        assert sorted(t.intermediate_values) == [1, 2]
        assert min(t.intermediate_values.values()) == pytest.approx(t.values[0])
        if t.values[1] <= CAP:
            feasible.add(t.number)
    assert feasible and feasible != {t.number for t in done}  # the cap cut the space

    front = study.best_trials
    assert front and {t.number for t in front} <= feasible  # infeasible never on the front
    for t in front:  # no feasible trial dominates a front member
        assert not any(o.values[0] <= t.values[0] and o.values[1] <= t.values[1]
                       and o.values != t.values for o in done if o.number in feasible)

    # KerasTuner's API: the front first, by val_loss, then the rest by val_loss
    ordered = sorted(front, key=lambda t: t.values[0])
    best = tuner.oracle.get_best_trials(len(done))
    by_kt = {t.user_attrs["kt_trial_id"]: t for t in done}
    assert [by_kt[b.trial_id].number for b in best[:len(front)]] == [t.number for t in ordered]
    rest = [by_kt[b.trial_id] for b in best[len(front):]]
    assert [t.values[0] for t in rest] == sorted(t.values[0] for t in rest)
    hps = tuner.get_best_hyperparameters(1)[0]
    assert hps.values["units"] == ordered[0].params["units"]
    model = tuner.get_best_models(1)[0]
    assert model.count_params() == ordered[0].values[1]

    out = io.StringIO()
    with redirect_stdout(out):
        tuner.results_summary()
    text = out.getvalue()
    assert f"Pareto front (val_loss, params): {len(front)} trial(s)" in text
    for t in front:
        assert f"#{t.number}" in text


def test_a_pruner_with_several_objectives_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="cannot prune a multi-objective search.*Trial.report"):
        OptunaSearch(build, objective=["val_loss", "params"], multi_objective=True,
                     pruner=optuna.pruners.MedianPruner(), directory=str(tmp_path))
    check_pruner(optuna.pruners.NopPruner(), create_objective(["val_loss", "params"]))  # allowed


def test_bad_multi_objective_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least two objectives"):
        OptunaSearch(build, objective="val_loss", multi_objective=True, directory=str(tmp_path))
    with pytest.raises(ValueError, match="max_params must be an int >= 1"):
        OptunaSearch(build, objective="val_loss", max_params=0, directory=str(tmp_path))
    single = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="one")
    with pytest.raises(ValueError, match="has 1 objective.*this search 2 .val_loss, params."):
        OptunaSearch(build, objective=["val_loss", "params"], multi_objective=True, study=single,
                     directory=str(tmp_path))


def test_without_multi_objective_a_list_is_kerastuners_sum(tmp_path):
    """KerasTuner parity: a list of objectives and no ``multi_objective`` is KerasTuner's
    MultiObjective (one summed score), in a single-objective study."""
    tuner = search(tmp_path, trials=3, pruner=optuna.pruners.NopPruner())
    study = tuner.study
    assert study.directions == [StudyDirection.MINIMIZE]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        kt = tuner.oracle.trials[t.user_attrs["kt_trial_id"]]
        assert t.value == pytest.approx(kt.score)
        assert t.value == pytest.approx(values_of(kt, tuner.oracle.objective)[0]
                                        + n_params(t.params["units"]))


def test_max_params_with_one_objective(tmp_path):
    tuner = OptunaSearch(build, objective="val_loss", max_params=CAP, max_trials=4,
                         sampler=optuna.samplers.RandomSampler(seed=5),
                         pruner=optuna.pruners.NopPruner(), directory=str(tmp_path), project_name="cap")
    tuner.search(X, Y, validation_data=(XV, YV), epochs=1, verbose=0)
    for t in tuner.study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.constraints == {"max_params": n_params(t.params["units"]) - CAP}


def test_params_objective_direction_is_known():
    objective = create_objective(["val_accuracy", "params"])
    assert [(o.name, o.direction) for o in objective.objectives] == [
        ("val_accuracy", "max"), ("params", "min")]
    assert isinstance(create_objective("params"), keras_tuner.Objective)


def test_the_clis_objective_table_agrees_with_the_library():
    """bench.core.schema lists what --objectives accepts without importing KerasTuner; each
    direction there is the one the library (KerasTuner's inference, "params") gives."""
    from bench.core.schema import OBJECTIVE_DIRECTIONS
    from searchers.objectives import optuna_directions
    for name, direction in OBJECTIVE_DIRECTIONS.items():
        assert optuna_directions(name) == [direction], name
