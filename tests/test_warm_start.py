"""Warm start: a KerasTuner RandomSearch project on the seed's space, continued by
``OptunaSearch`` (and by ``bench run --warm-start``): its finished trials become the new
study's history, the sampler sees them before its first proposal, ``max_trials`` counts new
trials only, a re-run imports nothing twice, and the best model is whichever trial is best."""
from __future__ import annotations

from pathlib import Path

import keras_tuner as kt
import numpy as np
import optuna
import pytest

from bench.cli import main
from models import make_build_model
from searchers import OptunaSearch
from searchers.errors import ConfigError
from searchers.warm_start import WARM_START_ATTR, is_history

SHAPE, CLASSES = (48, 16, 3), 4


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((32, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, 32)
    return x[:24], y[:24], x[24:], y[24:]


class CountingTPE(optuna.samplers.TPESampler):
    """Remembers how many COMPLETE trials the study held at its first proposal."""

    seen_at_first: int | None = None

    def before_trial(self, study, trial):
        if CountingTPE.seen_at_first is None:
            CountingTPE.seen_at_first = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
        super().before_trial(study, trial)


@pytest.fixture(scope="module")
def kt_project(tmp_path_factory: pytest.TempPathFactory):
    """A KerasTuner RandomSearch project of 6 trials on the seed's space."""
    root = tmp_path_factory.mktemp("kt")
    tuner = kt.RandomSearch(make_build_model(SHAPE, CLASSES), objective="val_loss", max_trials=6,
                            seed=3, directory=str(root), project_name="seedspace")
    x, y, xv, yv = _data()
    tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    return tuner, root / "seedspace"


def _optuna(tmp_path: Path, warm_start, max_trials: int = 4, **kw) -> OptunaSearch:
    return OptunaSearch(make_build_model(SHAPE, CLASSES), objective="val_loss",
                        max_trials=max_trials, warm_start=warm_start,
                        sampler=CountingTPE(n_startup_trials=5, seed=0),
                        directory=str(tmp_path), project_name="continued", **kw)


def test_a_kerastuner_project_continued_by_optunasearch(kt_project, tmp_path: Path) -> None:
    kt_tuner, project = kt_project
    CountingTPE.seen_at_first = None
    tuner = _optuna(tmp_path, str(project))
    x, y, xv, yv = _data()
    tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    trials = tuner.study.trials
    history = [t for t in trials if is_history(t)]
    assert len(trials) == 10 and len(history) == 6
    assert CountingTPE.seen_at_first == 6                   # the history before any proposal
    assert sum(t.state.name == "COMPLETE" for t in trials if not is_history(t)) == 4
    kt_values = sorted(t.score for t in kt_tuner.oracle.trials.values())
    assert sorted(t.value for t in history) == pytest.approx(kt_values)

    best = min(trials, key=lambda t: (t.value, t.number))
    (top,) = tuner.oracle.get_best_trials(1)
    assert tuner.oracle.study_trial_of(top).number == best.number
    tuner.get_best_models(1)                                # loads, wherever it trained
    # a history trial's model carries the weights its KerasTuner trial trained
    best_old = min(history, key=lambda t: t.value)
    stand_in = next(t for t in tuner.oracle.get_best_trials(10)
                    if tuner.oracle.study_trial_of(t).number == best_old.number)
    kt_trial = next(t for t in kt_tuner.oracle.trials.values() if t.score == pytest.approx(best_old.value))
    got, want = tuner.load_model(stand_in).get_weights(), kt_tuner.load_model(kt_trial).get_weights()
    assert all(np.array_equal(g, w) for g, w in zip(got, want))

    # a re-run resumes: nothing imported twice, max_trials still counts new trials only
    again = _optuna(tmp_path, str(project), max_trials=5)
    again.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    assert sum(is_history(t) for t in again.study.trials) == 6
    assert sum(not is_history(t) and t.state.name == "COMPLETE" for t in again.study.trials) == 5


def test_spaces_that_differ_are_counted_or_refused(tmp_path: Path, caplog) -> None:
    import keras

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            hp.Int("units", 2, 8, step=2), activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-3, 0.3, sampling="log")),
                      loss="binary_crossentropy")
        return model

    old = optuna.create_study(study_name="old")
    dist = {"units": optuna.distributions.IntDistribution(2, 32),
            "lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
    for units, lr, value in [(4, 0.01, 0.5), (32, 0.01, 0.4), (6, 0.5, 0.3)]:  # #1: outside
        old.add_trial(optuna.trial.create_trial(params={"units": units, "lr": lr}, distributions=dist,
                                                value=value))
    old.add_trial(optuna.trial.create_trial(params={"units": 2}, value=0.6,
                                            distributions={"units": dist["units"]}))  # partial
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 2, 16).astype("float32")
    caplog.set_level("INFO", logger="searchers")
    tuner = OptunaSearch(build, objective="val_loss", max_trials=1, warm_start=old,
                         directory=str(tmp_path), project_name="p")
    tuner.search(x, y, epochs=1, validation_data=(x, y), verbose=0)
    history = [t for t in tuner.study.trials if is_history(t)]
    assert len(history) == 2 and all(t.user_attrs[WARM_START_ATTR] == "study 'old'" for t in history)
    (note,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("warm start:")]
    assert "2 trial(s)" in note and "2 outside this space" in note and "1 lacking" in note

    unrelated = optuna.create_study(study_name="unrelated")
    unrelated.add_trial(optuna.trial.create_trial(params={"depth": 3}, value=1.0, distributions={
        "depth": optuna.distributions.IntDistribution(1, 5)}))
    other = OptunaSearch(build, objective="val_loss", max_trials=1, warm_start=unrelated,
                         directory=str(tmp_path), project_name="q")
    with pytest.raises(ConfigError, match="shares no hyperparameter"):
        other.search(x, y, epochs=1, validation_data=(x, y), verbose=0)
    maximised = optuna.create_study(study_name="max", direction="maximize")
    with pytest.raises(ConfigError, match="to maximize"):
        OptunaSearch(build, objective="val_loss", max_trials=1, warm_start=maximised,
                     directory=str(tmp_path), project_name="r").search(
            x, y, epochs=1, validation_data=(x, y), verbose=0)
    with pytest.raises(ConfigError, match="warm_start must be"):
        OptunaSearch(build, objective="val_loss", max_trials=1, warm_start=3,
                     directory=str(tmp_path), project_name="s")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


QUICK = ["--preset", "quick", "--trials-per-process", "0"]


def test_bench_run_warm_start(kt_project, workdir: Path, storage_url: str, capsys) -> None:
    """``bench run --warm-start``: a KerasTuner project, then a study; KerasTuner's own
    searchers and a path that is neither are refused in one line, with nothing made."""
    _, project = kt_project
    rc = main(["run", "--searcher", "random", *QUICK, "--storage", storage_url,
               "--warm-start", str(project)])
    assert rc == 2 and "KerasTuner's own searcher" in _one_line(capsys.readouterr().err)
    rc = main(["run", "--searcher", "tpe", *QUICK, "--storage", storage_url,
               "--warm-start", "no-such-thing"])
    assert rc == 2 and "neither a KerasTuner project folder" in _one_line(capsys.readouterr().err)
    assert not (workdir / "studies.db").exists() or optuna.get_all_study_names(storage_url) == []

    # the seed project's images are 48x16, as the quick preset's toon images
    rc = main(["run", "--searcher", "tpe", *QUICK, "--budget-epochs", "4", "--storage", storage_url,
               "--warm-start", str(project)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "warm start: 6 trial(s) from KerasTuner project" in out.err
    study = optuna.load_study(study_name="toon-tpe-s0", storage=storage_url)
    assert sum(is_history(t) for t in study.trials) == 6
    new = [t for t in study.trials if not is_history(t)]
    assert sum(int(t.user_attrs.get("epochs_trained", 0)) for t in new) == 4  # budget: new trials

    rc = main(["run", "--searcher", "optuna", *QUICK, "--budget-epochs", "4", "--storage", storage_url,
               "--warm-start", "toon-tpe-s0"])
    assert rc == 0, capsys.readouterr().err
    continued = optuna.load_study(study_name="toon-optuna-s0", storage=storage_url)
    # the other study's own trials (its history stays behind): 2 new trials of 2 epochs
    assert sum(is_history(t) for t in continued.trials) == len(new)


def test_replayed_warm_start_sees_the_history_and_keeps_the_budget(tmp_path: Path) -> None:
    """A replayed warm run goes through OptunaSearch(warm_start=...): its study starts with
    the N history trials, its new trials spend the same budget as the cold run's."""
    from bench.replay import surrogate
    from bench.replay.simulation import ReplaySpec, random_history, replay_run
    from models.space import space_config
    from tests.test_replay import _synthetic_record
    fitted = surrogate.fit(_synthetic_record(epochs=4), space_config(), model="random_forest",
                           evaluate=False)
    cold = replay_run(ReplaySpec("optuna", 3, 24, 4, 3, "toon", "quick"), fitted, tmp_path / "c")
    spec = ReplaySpec("optuna", 3, 24, 4, 3, "toon", "quick", warm_start=10)
    warm = replay_run(spec, fitted, tmp_path / "w")
    history = random_history(spec, fitted)
    assert len(history.trials) == 10 and warm.history_best == history.best_value
    assert warm.label == "optuna+warm10" and cold.label == "optuna"
    assert warm.epochs_used == cold.epochs_used == 24
    assert [t.params for t in warm.trials] != [t.params for t in cold.trials]  # it learned
    # the same history for the same seed (the measurement pairs seeds)
    assert [t.params for t in random_history(spec, fitted).trials] == [t.params for t in history.trials]


def test_warm_start_replay_command_records_and_reports(tmp_path: Path, capsys) -> None:
    from bench.report import results as report
    from tests.test_replay import _record_store
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _record_store(url)
    rc = main(["replay", "--searchers", "optuna", "--seeds", "3", "--preset", "quick", "--jobs", "1",
               "--warm-start-random", "5", "--storage", url])
    assert rc == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="toon-replay-quick-warm5", storage=url)
    rows = study.user_attrs["bench"]["rows"]
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert all(r["cold_used"] == r["warm_used"] for r in rows)
    md = "\n".join(report.render_dataset("toon", report.collect(url)["toon"], tmp_path, tmp_path))
    assert "### Warm start from 5 random trials" in md
    assert "| `optuna` | 3 |" in md
    rc = main(["replay", "--searchers", "random", "--seeds", "1", "--preset", "quick",
               "--warm-start-random", "5", "--storage", url])
    err = capsys.readouterr().err
    assert rc == 2 and "KerasTuner's own searcher" in err
