"""tpe-hyperband: KerasTuner's Hyperband schedule with Optuna's TPE proposing."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from bench.cli import main
from bench.core import schema, store
from bench.replay.simulation import ReplaySpec, replay_run
from tests.test_replay import _synthetic_record


@pytest.fixture(scope="module")
def surrogate():
    from bench.replay import surrogate as surrogate_module
    from models.space import space_config
    return surrogate_module.fit(_synthetic_record(epochs=9), space_config(), model="random_forest",
                                evaluate=False)


def test_schedule_is_hyperbands_and_tpe_takes_over_new_configurations(surrogate, tmp_path: Path) -> None:
    spec = dict(seed=4, budget_epochs=120, epochs_per_trial=9, patience=0, dataset="toon", preset="x")
    hb = replay_run(ReplaySpec("hyperband", **spec), surrogate, tmp_path)
    bohb = replay_run(ReplaySpec("tpe-hyperband", **spec), surrogate, tmp_path)
    assert bohb.backend == "optuna" and hb.backend == "keras_tuner"

    def schedule(run):
        return [(t.attrs.get("tuner/bracket"), t.attrs.get("tuner/round"), t.attrs.get("tuner/epochs"),
                 t.attrs.get("tuner/initial_epoch")) for t in run.trials]

    # The same brackets, rounds and epochs, trial for trial: KerasTuner decides the schedule.
    n = min(len(hb.trials), len(bohb.trials))
    assert schedule(bohb)[:n] == schedule(hb)[:n]
    assert any("tuner/trial_id" in t.attrs for t in bohb.trials)  # continued from checkpoints
    new = [i for i, t in enumerate(bohb.trials) if "tuner/trial_id" not in t.attrs]
    # Until 5 trials finished at one budget, new configurations are KerasTuner's random ones...
    first = new[:5]
    assert [bohb.trials[i].params for i in first] == [hb.trials[i].params for i in first]
    # ...then TPE's: the proposals part ways with Hyperband's random draws.
    later = [i for i in new[5:] if i < n and "tuner/trial_id" not in hb.trials[i].attrs]
    assert later and any(bohb.trials[i].params != hb.trials[i].params for i in later)
    assert bohb.epochs_used == hb.epochs_used == 120


def test_runs_as_a_real_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--searcher", "tpe-hyperband", "--preset", "quick", "--epochs-per-trial", "3",
                 "--budget-epochs", "24", "--trials-per-process", "0", "--storage", url]) == 0
    study = optuna.load_study(study_name="toon-tpe-hyperband-s0", storage=url)
    assert study.user_attrs[schema.STUDY_BENCH]["backend"] == "optuna"
    assert store.epochs_used(study) == 24
    assert any("tuner/trial_id" in t.user_attrs for t in study.trials)
