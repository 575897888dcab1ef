"""`import-kt`: KerasTuner project directories -> Optuna studies.

Real projects are written by the installed KerasTuner (tiny data, tiny model, a few
trials) and compared with KerasTuner's own reload of the same directory; the older 1.0/1.1
layouts come from hand-written fixtures in tests/fixtures/kt_legacy.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from bench.core.errors import RunError, UserError
from bench.core.schema import T_EPOCHS, T_ERROR, T_KT_ID
from bench.run.import_kt import hp_distribution, import_project
from tests.spaces import every_kind

LEGACY = Path(__file__).parent / "fixtures" / "kt_legacy"
STATE = {"COMPLETED": TrialState.COMPLETE, "FAILED": TrialState.FAIL,
         "INVALID": TrialState.FAIL, "STOPPED": TrialState.PRUNED}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def _by_kt_id(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs[T_KT_ID]: t for t in study.get_trials()}


# ------------------------------------------------------------------ distribution mapping


def test_distribution_mapping() -> None:
    assert hp_distribution("Int", {"min_value": 4, "max_value": 18, "step": 4,
                                   "sampling": "linear"}) == IntDistribution(4, 16, step=4)
    # Optuna rejects log together with step: KerasTuner's own (multiplicative) grid, as the
    # searchers decide in it (searchers.seam).
    assert hp_distribution("Int", {"min_value": 16, "max_value": 256, "step": 2, "sampling": "log"}
                           ) == CategoricalDistribution([16, 32, 64, 128, 256])
    assert hp_distribution("Float", {"min_value": 1e-4, "max_value": 1e-1, "step": 10, "sampling": "log"}
                           ) == CategoricalDistribution([1e-4, 1e-3, 1e-2, 1e-1])
    assert hp_distribution("Float", {"min_value": 0.0, "max_value": 0.5, "step": 0.1,
                                     "sampling": "linear"}) == FloatDistribution(0, 0.5, step=0.1)
    assert hp_distribution("Float", {"min_value": 0.7, "max_value": 1.0, "step": 0.1,
                                     "sampling": "linear"}) == FloatDistribution(0.7, 1.0, step=0.1)
    # (high - low) not a multiple of the step: the top is lowered onto the grid (every value
    # KerasTuner can draw), as for Int.
    assert hp_distribution("Float", {"min_value": 0.0, "max_value": 0.45, "step": 0.1,
                                     "sampling": "linear"}) == FloatDistribution(0, 0.4, step=0.1)
    # The seed space's dropout (a hair above 0.9: models/space.py): 0.0..0.9 step 0.1,
    # exactly what the searchers store (import-kt used to store 0..0.900000001 without step).
    assert hp_distribution("Float", {"min_value": 0.0, "max_value": 0.9 + 1e-9, "step": 0.1,
                                     "sampling": "linear"}) == FloatDistribution(0, 0.9, step=0.1)
    # A stored value off the grid drops the grid (the range stays) instead of rejecting the trial.
    assert hp_distribution("Float", {"min_value": 0.0, "max_value": 0.5, "step": 0.1},
                           [0.25]) == FloatDistribution(0, 0.5)
    assert hp_distribution("Int", {"min_value": 16, "max_value": 256, "step": 2, "sampling": "log"},
                           [48]) == IntDistribution(16, 256, log=True)
    assert hp_distribution("Float", {"min_value": 0.0, "max_value": 0.5, "step": 0.1},
                           [0.30000000000000004, 0.5]) == FloatDistribution(0, 0.5, step=0.1)
    assert hp_distribution("Float", {"min_value": 0.5, "max_value": 0.99, "step": None,
                                     "sampling": "reverse_log"}) == FloatDistribution(0.5, 0.99)
    assert hp_distribution("Int", {"min_value": 1, "max_value": 9, "step": None,
                                   "sampling": None}) == IntDistribution(1, 9)
    assert hp_distribution("Int", {"min_value": 1, "max_value": 9, "step": None,
                                   "sampling": "reverse_log"}) == IntDistribution(1, 9)
    assert hp_distribution("Choice", {"values": ["a", "b"]}) == CategoricalDistribution(["a", "b"])
    assert hp_distribution("Choice", {"values": [16, 32]}) == CategoricalDistribution([16, 32])
    assert hp_distribution("Boolean", {"default": False}) == CategoricalDistribution([False, True])
    assert hp_distribution("Fixed", {"value": "adam"}) == CategoricalDistribution(["adam"])
    with pytest.raises(ValueError):
        hp_distribution("Mystery", {})


def test_mapping_is_the_searchers_mapping() -> None:
    """For every kind of hyperparameter, what import-kt maps a stored config to is what
    the searchers decide in and record with (searchers.seam.distribution)."""
    from searchers import seam
    hps = every_kind()
    stored = json.loads(json.dumps(hps.get_config()))  # as oracle.json holds it
    for hp, entry in zip(hps.space, stored["space"]):
        values = list(hp.values) if getattr(hp, "step", None) is not None else None
        assert hp_distribution(entry["class_name"], entry["config"]) == seam.distribution(hp), hp.name
        # KerasTuner's own grid values (with their rounding noise) keep the exact mapping
        assert (hp_distribution(entry["class_name"], entry["config"], values)
                == seam.distribution(hp)), hp.name


def _seed_space_model(hp):  # the replay's hypermodel: declares the seed space, builds nothing
    from models.space import SEARCH_SPACE
    for p in SEARCH_SPACE:
        p.declare(hp)


@pytest.mark.parametrize("searcher_name", ["random", "hyperband", "tpe-hyperband"])
def test_a_runs_own_project_imports_with_the_runs_distributions(tmp_path: Path,
                                                                 searcher_name: str) -> None:
    """A run of a KerasTuner searcher records its trials in the study (the mirror, through
    searchers.seam); importing the run's own KerasTuner project gives exactly the same
    params and distributions, which are also the Optuna-backed searchers' for this space."""
    from models.space import space_hyperparameters
    from searchers import seam
    from searchers.base import SearchSettings
    from searchers.registry import get_searcher

    searcher = get_searcher(searcher_name)
    settings = SearchSettings(seed=3, epochs_per_trial=3)
    tuner = searcher.tuner_class()(hypermodel=_seed_space_model, objective="val_loss",
                                   directory=str(tmp_path / "kt"), project_name="main",
                                   overwrite=True, **searcher.tuner_kwargs(settings))
    oracle = tuner.oracle
    oracle.verbose = 0
    run: dict[str, tuple[dict, dict]] = {}
    status = keras_tuner_status()
    for i in range(12):  # driven as BaseTuner.search drives it (no training)
        trial = oracle.create_trial("tuner0")
        if trial.status != status.RUNNING:
            continue
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0 / (i + 1)}, step=0)
        trial.status = status.COMPLETED
        oracle.end_trial(trial)
        run[trial.trial_id] = seam.active_params(oracle.trials[trial.trial_id].hyperparameters)
    assert len(run) >= 5

    url = _url(tmp_path)
    res = import_project(tmp_path / "kt" / "main", storage=url)
    assert res.added == len(run) and not res.skipped
    imported = _by_kt_id(_load(url, res.study_name))
    optuna_backed = {hp.name: seam.distribution(hp) for hp in space_hyperparameters().space}
    for kt_id, (params, dists) in run.items():
        assert imported[kt_id].params == params
        assert imported[kt_id].distributions == dists
        assert dists == {name: optuna_backed[name] for name in dists}
    assert imported[next(iter(run))].distributions["dropout_1_rate"] == FloatDistribution(
        0.0, 0.9, step=0.1)


def keras_tuner_status():
    from keras_tuner.engine.trial import TrialStatus
    return TrialStatus


# ----------------------------------------------------------------- hand-written old layouts


def test_legacy_1_0_0_named_conditions(tmp_path: Path) -> None:
    url = _url(tmp_path)
    res = import_project(LEGACY / "v1_0_0_named_conditions", storage=url)
    assert res.study_name == "kt-v1_0_0_named_conditions"
    assert (res.added, res.already_present) == (3, 0)
    [(file, why)] = res.skipped
    assert file == "trial_d00dfeedcafebabe0123456789abcdef/trial.json" and "RUNNING" in why

    study = _load(url, res.study_name)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    src = study.user_attrs["kt_import"]
    assert src["objective"] == "val_loss" and src["layout"]["label"] == "1.0.0"
    assert study.metric_names == ["val_loss"]
    assert src["layout"]["per_step_metrics"] and len(src["space"]) == 6
    trials = _by_kt_id(study)
    mlp = trials["3f0c9a6e1b2d4c5e8f7a6b5c4d3e2f10"]
    assert mlp.state == TrialState.COMPLETE and mlp.value == 0.7
    # Only active hyperparameters are params; the inactive branch's stored default is not.
    assert mlp.params == {"model": "mlp", "model=mlp/units": 32, "lr": 0.0031622776601683794,
                          "use_bn": True, "batch_size": 32}
    assert mlp.user_attrs["kt_inactive_params"] == ["model=cnn/filters"]
    assert mlp.intermediate_values == {0: 0.9, 1: 0.7, 2: 0.75}
    assert mlp.user_attrs["val_accuracy"] == 0.625 and mlp.user_attrs["loss"] == 0.83
    assert mlp.distributions["model=mlp/units"] == IntDistribution(8, 64, step=8)
    assert mlp.distributions["lr"] == FloatDistribution(0.0001, 0.1, log=True)
    assert mlp.distributions["batch_size"] == CategoricalDistribution([32])
    cnn = trials["9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d"]
    assert "model=cnn/filters" in cnn.params and "model=mlp/units" not in cnn.params
    assert study.best_trial.user_attrs[T_KT_ID] == "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
    crashed = trials["5e5e5e5e1a1a1a1a2b2b2b2b3c3c3c3c"]
    assert crashed.state == TrialState.FAIL and crashed.intermediate_values == {0: 12.25}


def test_legacy_1_0_two_executions_maximised_objective(tmp_path: Path) -> None:
    url = _url(tmp_path)
    res = import_project(LEGACY / "v1_0_conditions_two_executions", storage=url,
                         study_name="legacy")
    assert (res.study_name, res.added, res.skipped) == ("legacy", 3, [])
    study = _load(url, "legacy")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["kt_import"]["objective"] == "val_accuracy"
    assert study.metric_names == ["val_accuracy"]  # optuna-dashboard shows it by name
    assert study.user_attrs["kt_import"]["layout"]["label"] == "1.0/1.1"
    trials = _by_kt_id(study)
    deep = trials["5a1b"]
    # Observations of two executions are averaged, as KerasTuner does.
    assert deep.intermediate_values == pytest.approx({0: 0.55, 1: 0.75})
    # stored snapped onto the grid (KerasTuner wrote 0.30000000000000004), as the searchers store it
    assert deep.params == {"kind": "deep", "layers": 3, "dropout": 0.3, "batch": 16}
    assert deep.distributions["dropout"] == FloatDistribution(0.0, 0.5, step=0.1)
    assert deep.distributions["batch"] == CategoricalDistribution([16, 32, 64])
    assert "layers" not in trials["6c2d"].params
    stopped = trials["7e3f"]
    assert stopped.state == TrialState.PRUNED and stopped.value is None
    assert stopped.intermediate_values == pytest.approx({0: 0.45})
    assert study.best_trial.user_attrs[T_KT_ID] == "5a1b"


def test_layout_1_2_retry_queue_failures_and_odd_spaces(tmp_path: Path) -> None:
    url = _url(tmp_path)
    res = import_project(LEGACY / "v1_2_retry_queue", storage=url)
    assert res.added == 3
    assert [f for f, _ in res.skipped] == ["trial_2/trial.json"]
    assert "retry" in res.skipped[0][1]
    study = _load(url, res.study_name)
    # Optuna's numbering follows KerasTuner's end order.
    assert [t.user_attrs[T_KT_ID] for t in study.trials] == ["1", "0", "3"]
    failed, ok = study.trials[0], study.trials[1]
    assert failed.state == TrialState.FAIL and "out of memory" in failed.user_attrs[T_ERROR]
    assert ok.params == {"units": 64, "drop": 0.3, "momentum": 0.93}  # drop snapped onto its grid
    assert isinstance(ok.params["units"], int)
    # the searchers' mapping (searchers.seam): a log step is KerasTuner's grid, a linear
    # step's top is lowered onto the grid, reverse_log without a step is linear
    assert ok.distributions == {"units": CategoricalDistribution([16, 32, 64, 128, 256]),
                                "drop": FloatDistribution(0.0, 0.4, step=0.1),
                                "momentum": FloatDistribution(0.5, 0.99)}
    assert ok.user_attrs["kt_unmapped_values"] == {"extra": 5}
    assert ok.intermediate_values == {3: 0.45}
    assert study.user_attrs["kt_import"]["layout"]["label"] == "1.2+"


def test_reimport_picks_up_a_finished_retry(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(LEGACY / "v1_2_retry_queue", proj)
    url = _url(tmp_path)
    assert import_project(proj, storage=url).added == 3
    # KerasTuner ran the queued retry: trial 2 now COMPLETED; trial 0 is being re-run, which
    # must not un-import it or list it as skipped.
    retried = json.loads((proj / "trial_2" / "trial.json").read_text())
    retried.update(status="COMPLETED", score=0.4, best_step=0,
                   metrics={"metrics": {"val_loss": {"direction": "min",
                                                     "observations": [{"value": [0.4], "step": 0}]}}})
    (proj / "trial_2" / "trial.json").write_text(json.dumps(retried))
    rerun = json.loads((proj / "trial_0" / "trial.json").read_text())
    (proj / "trial_0" / "trial.json").write_text(json.dumps({**rerun, "status": "RUNNING"}))
    res = import_project(proj, storage=url)
    assert (res.added, res.already_present, res.skipped) == (1, 3, [])
    study = _load(url, "kt-proj")
    assert study.best_trial.user_attrs[T_KT_ID] == "2" and study.best_value == 0.4


# --------------------------------------------------------------- bad input, nothing half-written


def test_not_a_project_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    url = _url(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="not a KerasTuner project"):
        import_project(empty, storage=url)
    with pytest.raises(UserError, match="no such directory"):
        import_project(tmp_path / "missing", storage=url)
    with pytest.raises(UserError, match="holds KerasTuner projects"):
        import_project(LEGACY, storage=url)
    assert optuna.get_all_study_names(url) == []


def test_corrupt_trial_file_is_skipped_by_name(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(LEGACY / "v1_2_retry_queue", proj)
    (proj / "trial_3" / "trial.json").write_text('{"trial_id": "3", "hyperpa')
    (proj / "trial_4").mkdir()
    url = _url(tmp_path)
    res = import_project(proj, storage=url)
    reasons = dict(res.skipped)
    assert "not valid JSON" in reasons["trial_3/trial.json"]
    assert "missing" in reasons["trial_4/trial.json"]
    assert res.added == 2
    assert set(_by_kt_id(_load(url, "kt-proj"))) == {"0", "1"}


def test_nothing_importable_creates_no_study(tmp_path: Path) -> None:
    proj = tmp_path / "broken"
    (proj / "trial_0").mkdir(parents=True)
    (proj / "oracle.json").write_text("")
    (proj / "trial_0" / "trial.json").write_text("[1, 2")
    url = _url(tmp_path)
    with pytest.raises(UserError, match=r"nothing importable.*trial_0/trial\.json"):
        import_project(proj, storage=url)
    assert optuna.get_all_study_names(url) == []


def test_failed_write_removes_the_study_it_created(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = optuna.study.Study.add_trial
    calls = []

    def flaky(self: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        calls.append(trial)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(self, trial)

    monkeypatch.setattr(optuna.study.Study, "add_trial", flaky)
    url = _url(tmp_path)
    with pytest.raises(RunError, match="disk full.*removed again"):
        import_project(LEGACY / "v1_2_retry_queue", storage=url)
    assert optuna.get_all_study_names(url) == []


def test_study_of_another_project_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    import_project(LEGACY / "v1_2_retry_queue", storage=url, study_name="shared")
    with pytest.raises(UserError, match="holds KerasTuner project 'v1_2_retry_queue'"):
        import_project(LEGACY / "v1_0_0_named_conditions", storage=url, study_name="shared")
    optuna.create_study(study_name="mine", storage=url)
    with pytest.raises(UserError, match="not imported from KerasTuner"):
        import_project(LEGACY / "v1_2_retry_queue", storage=url, study_name="mine")
    assert len(_load(url, "shared").trials) == 3


def test_cli_prints_summary_and_skips(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.cli import build_parser
    parser = build_parser()
    args = parser.parse_args(["import-kt", str(LEGACY / "v1_2_retry_queue"),
                              "--storage", _url(tmp_path)])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("imported 3 trial(s)") and "kt-v1_2_retry_queue" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("skipped ") and "trial_2" in lines[1]
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("nothing new")
    defaults = parser.parse_args(["import-kt", "x"])
    assert (defaults.study, defaults.storage) == (None, "sqlite:///studies.db")


# ------------------------------------------------------ real projects from installed KerasTuner


def _build(hp):  # type: ignore[no-untyped-def]
    import keras

    model = keras.Sequential([keras.Input((4,))])
    kind = hp.Choice("kind", ["small", "big"])
    with hp.conditional_scope("kind", ["big"]):
        if kind == "big":
            model.add(keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                  "binary_crossentropy", metrics=["accuracy"])
    return model


def _tuner(kind: str, directory: Path, overwrite: bool):  # type: ignore[no-untyped-def]
    import keras_tuner as kt

    class FailingRandomSearch(kt.RandomSearch):
        """Trial "1" raises: KerasTuner records it as FAILED."""

        def run_trial(self, trial, *args, **kwargs):  # type: ignore[no-untyped-def]
            if trial.trial_id == "1":
                raise ValueError("boom")
            return super().run_trial(trial, *args, **kwargs)

    common = dict(directory=str(directory), project_name=kind, overwrite=overwrite, seed=1)
    if kind == "random":
        return FailingRandomSearch(_build, objective="val_loss", max_trials=3, **common)
    if kind == "hyperband":
        return kt.Hyperband(_build, objective="val_loss", max_epochs=3, factor=3, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(_build, objective="val_accuracy", max_trials=3, **common)
    objectives = [kt.Objective("val_loss", "min"), kt.Objective("val_accuracy", "max")]
    return kt.RandomSearch(_build, objective=objectives, max_trials=2, **common)


KINDS = ("random", "hyperband", "bayesian", "multi")


@pytest.fixture(scope="module")
def kt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real projects (about 15 s on two busy cores)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, xv = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")
    y, yv = (x.sum(1) > 0).astype("float32"), (xv.sum(1) > 0).astype("float32")
    root = tmp_path_factory.mktemp("kt")
    for kind in KINDS:
        _tuner(kind, root, overwrite=True).search(x, y, validation_data=(xv, yv), epochs=2,
                                                  verbose=0)
    return root


@pytest.mark.parametrize("kind", KINDS[:3])
def test_real_project_matches_kerastuner_reload(kind: str, kt_dir: Path, tmp_path: Path) -> None:
    url = _url(tmp_path)
    res = import_project(kt_dir / kind, storage=url)
    assert res.skipped == []
    study = _load(url, f"kt-{kind}")
    reloaded = _tuner(kind, kt_dir, overwrite=False)   # KerasTuner's own reading of the files
    kt_trials = reloaded.oracle.trials
    trials = _by_kt_id(study)
    assert res.added == len(kt_trials) == len(trials) and set(trials) == set(kt_trials)
    objective = reloaded.oracle.objective
    assert study.user_attrs["kt_import"]["objective"] == objective.name
    assert study.direction.name.lower()[:3] == objective.direction
    for tid, kt_trial in kt_trials.items():
        t = trials[tid]
        assert t.state == STATE[kt_trial.status], tid
        values = dict(kt_trial.hyperparameters.values)
        tuner_values = {k: values.pop(k) for k in list(values) if k.startswith("tuner/")}
        assert t.params == values
        assert ("units" in t.params) == (t.params["kind"] == "big")
        assert {k: t.user_attrs[k] for k in tuner_values} == tuner_values
        if kt_trial.status == "COMPLETED":
            assert t.value == kt_trial.score
            assert t.intermediate_values == {kt_trial.best_step: kt_trial.score}
            for name in kt_trial.metrics.metrics:
                assert t.user_attrs[name] == kt_trial.metrics.get_last_value(name)
        else:
            assert t.value is None
    # The same best score; among trials tied at it (val_accuracy on 16 samples ties often)
    # Optuna and KerasTuner may each pick another, so KerasTuner's pick is checked by id.
    kt_best = reloaded.oracle.get_best_trials(1)[0]
    assert study.best_trial.value == kt_best.score
    assert trials[kt_best.trial_id].value == kt_best.score
    assert trials[kt_best.trial_id].params == {
        k: v for k, v in kt_best.hyperparameters.values.items() if not k.startswith("tuner/")}
    if kind == "random":
        assert trials["1"].state == TrialState.FAIL and "boom" in trials["1"].user_attrs[T_ERROR]
    if kind == "hyperband":
        continued = [t for t in trials.values() if "tuner/trial_id" in t.user_attrs]
        assert continued and all(t.user_attrs[T_EPOCHS] == t.user_attrs["tuner/epochs"]
                                 - t.user_attrs["tuner/initial_epoch"] for t in continued)
        assert study.user_attrs["kt_import"]["oracle"] == "Hyperband"


def test_reimport_adds_only_new_trials(kt_dir: Path, tmp_path: Path) -> None:
    proj = tmp_path / "hyperband"
    shutil.copytree(kt_dir / "hyperband", proj)
    held_back = sorted(proj.glob("trial_*"))[-1]
    held_back.rename(tmp_path / "later")
    url = _url(tmp_path)
    first = import_project(proj, storage=url)
    (tmp_path / "later").rename(held_back)
    second = import_project(proj, storage=url)
    third = import_project(proj, storage=url)
    assert (second.added, second.already_present) == (1, first.added)
    assert (third.added, third.already_present) == (0, first.added + 1)
    study = _load(url, "kt-hyperband")
    ids = [t.user_attrs[T_KT_ID] for t in study.trials]
    assert len(ids) == len(set(ids)) == first.added + 1
    assert study.user_attrs["kt_import"]["last_import"]["added"] == 1


def test_multi_objective_stays_single_objective(kt_dir: Path, tmp_path: Path) -> None:
    url = _url(tmp_path)
    import_project(kt_dir / "multi", storage=url)
    study = _load(url, "kt-multi")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    src = study.user_attrs["kt_import"]
    assert src["objective"] == "multi_objective"
    assert sorted(src["objectives"], key=lambda o: o["name"]) == [
        {"name": "val_accuracy", "direction": "max"}, {"name": "val_loss", "direction": "min"}]
    reloaded = _tuner("multi", kt_dir, overwrite=False)
    for tid, kt_trial in reloaded.oracle.trials.items():
        t = _by_kt_id(study)[tid]
        assert t.value == kt_trial.score
        # KerasTuner's score is the sum of the objectives, maximised ones negated.
        assert math.isclose(t.value, t.user_attrs["val_loss"] - t.user_attrs["val_accuracy"],
                            rel_tol=1e-9)
    assert json.dumps(src)   # the record stays plain JSON
