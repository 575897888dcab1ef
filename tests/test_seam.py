"""searchers/seam.py: the one KerasTuner <-> Optuna seam.

One test per accessor of a library internal: each fails, naming the accessor, when a
pinned version (keras-tuner 1.4.8, optuna 5.0.0) moves what it reaches. Then the mapping's
own promises: one grid for Optuna and TensorBoard, the 0.9 quirk handled in one place.
"""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_tuner
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from searchers import seam

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sqlite_study(tmp_path: Path, **storage_kwargs: Any) -> optuna.Study:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'seam.db'}", **storage_kwargs)
    return optuna.create_study(storage=storage, study_name="seam")


# ---- Optuna internals ------------------------------------------------------------------
def test_storage_of_and_study_id(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    storage = seam.storage_of(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert storage.get_study_id_from_name("seam") == seam.study_id(study)
    study.ask()
    assert len(storage.get_all_trials(seam.study_id(study))) == 1  # the study's own view


def test_storage_trial_id_of_live_and_frozen_trials(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    study.ask()
    live = study.ask()
    frozen = study.get_trials()[1]
    storage = seam.storage_of(study)
    assert seam.storage_trial_id(live) == seam.storage_trial_id(frozen)
    assert storage.get_trial(seam.storage_trial_id(live)).number == live.number == 1


def test_live_trial_for_an_existing_trial(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    tid = seam.storage_of(study).create_new_trial(seam.study_id(study))
    trial = seam.live_trial(study, tid)
    assert isinstance(trial, optuna.Trial) and trial.number == 0
    trial.suggest_int("x", 0, 3)
    study.tell(trial, 1.0)
    assert study.trials[0].state == TrialState.COMPLETE and "x" in study.trials[0].params


def test_trial_storage_swap_routes_suggest_and_user_attr_writes() -> None:
    study = optuna.create_study()
    trial = study.ask()
    real = seam.trial_storage(trial)
    assert real is seam.storage_of(study)
    calls: list[str] = []

    class Spy:
        def set_trial_param(self, *args: Any) -> None:
            calls.append("param")
            real.set_trial_param(*args)

        def set_trial_user_attr(self, *args: Any) -> None:
            calls.append("user_attr")
            real.set_trial_user_attr(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    seam.set_trial_storage(trial, Spy())
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("a", 1)
    seam.set_trial_storage(trial, real)
    assert calls == ["param", "user_attr"]


def test_fix_params_is_what_enqueue_trial_writes(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    study.enqueue_trial({"x": 2})
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert waiting.system_attrs[seam.FIXED_PARAMS] == {"x": 2}
    storage = seam.storage_of(study)
    tid = storage.create_new_trial(seam.study_id(study))
    seam.fix_params(storage, tid, {"x": 3})
    assert seam.live_trial(study, tid).suggest_int("x", 0, 9) == 3


def test_stale_trial_ids(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path, heartbeat_interval=1, grace_period=1)
    storage = seam.storage_of(study)
    trial = study.ask()
    storage.record_heartbeat(seam.storage_trial_id(trial))  # type: ignore[attr-defined]
    assert seam.stale_trial_ids(storage, seam.study_id(study)) == []
    time.sleep(2.2)
    assert seam.stale_trial_ids(storage, seam.study_id(study)) == [seam.storage_trial_id(trial)]


def test_grace_period(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path, heartbeat_interval=5, grace_period=30)
    assert seam.grace_period(seam.storage_of(study)) == 30
    (tmp_path / "b").mkdir()
    assert seam.grace_period(seam.storage_of(_sqlite_study(tmp_path / "b"))) is None


def test_write_in_one_transaction(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    trial = study.ask()
    tid = seam.storage_trial_id(trial)
    dist = IntDistribution(0, 9)
    writes = [(seam.PARAM_WRITE, tid, "x", 4.0, dist), (seam.USER_ATTR_WRITE, tid, "a", "b")]
    assert seam.write_in_one_transaction(seam.storage_of(study), writes) is True
    frozen = optuna.load_study(study_name="seam", storage=f"sqlite:///{tmp_path / 'seam.db'}").trials[0]
    assert frozen.params == {"x": 4} and frozen.user_attrs == {"a": "b"}
    # the cache knows the parameter's distribution now, as after set_trial_param
    study.tell(trial, 0.0)
    other = study.ask()
    assert other.suggest_int("x", 0, 9) in range(10)
    memory = optuna.create_study()
    assert seam.write_in_one_transaction(seam.storage_of(memory), writes) is False


# ---- KerasTuner internals -------------------------------------------------------------
def _declare(hp: Any) -> None:
    hp.Int("u", 1, 4)


@pytest.fixture()
def tuner(tmp_path: Path) -> Any:
    t = keras_tuner.RandomSearch(hypermodel=_declare, objective="val_loss", max_trials=5,
                                 seed=1, directory=str(tmp_path), project_name="p")
    t.oracle.verbose = 0
    return t


def _run_one(oracle: Any) -> Any:
    from keras_tuner.engine.trial import TrialStatus
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_loss": 1.0}, step=0)
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial


def test_constraint_system_attrs_is_what_set_constraint_writes(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    asked = study.ask()
    asked.set_constraint("max_params", 7.0)
    study.tell(asked, 1.0)
    written = {k: v for k, v in study.trials[0].system_attrs.items() if k.startswith("constraints")}
    assert written == seam.constraint_system_attrs("max_params", 7)
    made = optuna.trial.create_trial(value=2.0, system_attrs=seam.constraint_system_attrs("c", -1))
    assert made.constraints == {"c": -1.0}  # read back as Optuna reads its own


def test_pareto_front_is_best_trials_and_hypervolume_is_optunas(tmp_path: Path) -> None:
    import numpy as np
    study = optuna.create_study(directions=["minimize", "minimize"])
    points = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0), (0.5, 9.0), (4.0, 1.0)]
    for i, (a, b) in enumerate(points):
        attrs = seam.constraint_system_attrs("cap", 1.0 if i == 3 else -1.0)  # (0.5, 9) infeasible
        study.add_trial(optuna.trial.create_trial(values=[a, b], system_attrs=attrs))
    front = seam.pareto_front(study.trials, study.directions)
    assert {t.number for t in front} == {t.number for t in study.best_trials} == {0, 1, 4}
    # dominated area up to (5, 10): a staircase over (1,5), (2,2), (4,1)
    expected = (2 - 1) * (10 - 5) + (4 - 2) * (10 - 2) + (5 - 4) * (10 - 1)
    got = seam.hypervolume(np.array([[1.0, 5.0], [2.0, 2.0], [4.0, 1.0]]), np.array([5.0, 10.0]))
    assert got == pytest.approx(expected)


def test_kerastuner_objective_factory_and_multi_objective() -> None:
    assert seam.kt_create_objective("val_accuracy").direction == "max"
    multi = seam.kt_multi_objective([keras_tuner.Objective("a", "min"), keras_tuner.Objective("b", "max")])
    assert multi.get_value({"a": 3.0, "b": 1.0}) == 2.0  # KerasTuner's signed sum
    assert [o.name for o in multi.objectives] == ["a", "b"]


def test_retry_queue_is_the_oracles_live_list(tuner: Any) -> None:
    queue = seam.retry_queue(tuner.oracle)
    assert queue == [] and queue is tuner.oracle.get_state()["retry_queue"]


def test_save_trial_writes_its_file(tuner: Any, tmp_path: Path) -> None:
    trial = tuner.oracle.create_trial("tuner0")
    trial.message = "seam"
    seam.save_trial(tuner.oracle, trial)
    assert "seam" in (tmp_path / "p" / f"trial_{trial.trial_id}" / "trial.json").read_text()


def test_end_order(tuner: Any) -> None:
    trial = _run_one(tuner.oracle)
    assert seam.end_order(tuner.oracle)[-1] == trial.trial_id


def test_model_size() -> None:
    import keras
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert seam.model_size(model) == model.count_params() == 8


def test_tuner_callback(tuner: Any) -> None:
    import keras
    trial = tuner.oracle.create_trial("tuner0")
    callback = seam.tuner_callback(tuner, trial)
    assert isinstance(callback, keras.callbacks.Callback)
    assert callback.tuner is tuner and callback.trial is trial


def test_kt_io_and_kt_remove(tmp_path: Path) -> None:
    io = seam.kt_io()
    path = tmp_path / "f.txt"
    path.write_text("x")
    assert io.exists(str(path)) and io.glob(str(tmp_path / "*.txt")) == [str(path)]
    seam.kt_remove(str(path))
    assert not path.exists()


def test_route_kt_json_writes(tuner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_tuner.src import utils
    monkeypatch.setattr(utils, "save_json", utils.save_json)  # restored after the test
    written: list[str] = []
    real = utils.save_json

    def spy(path: str, obj: object) -> str:
        written.append(os.path.basename(path))
        return real(path, obj)

    seam.route_kt_json_writes(spy)
    _run_one(tuner.oracle)
    tuner.save()
    assert {"oracle.json", "trial.json", "tuner0.json"} <= set(written)


def test_private_methods_the_benchmark_overrides_or_calls_exist(tuner: Any) -> None:
    classes = {"Tuner": keras_tuner.Tuner, "Oracle": keras_tuner.Oracle,
               "HyperbandOracle": keras_tuner.oracles.HyperbandOracle}
    missing = [f"{cls}.{name}" for cls, names in seam.KT_PRIVATE_METHODS.items()
               for name in names if not callable(getattr(classes[cls], name, None))]
    assert not missing, f"KerasTuner moved: {missing}"
    hyperband = keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=3)
    for oracle in (tuner.oracle, hyperband):
        absent = [a for a in seam.KT_PRIVATE_ORACLE_ATTRS if not hasattr(oracle, a)]
        assert not absent, f"KerasTuner moved: {type(oracle).__name__} {absent}"


def test_public_kerastuner_paths_used_instead_of_src() -> None:
    from keras_tuner.engine import hyperparameters as kth
    from keras_tuner.engine.trial import Trial, TrialStatus
    assert {TrialStatus.COMPLETED, TrialStatus.STOPPED} == {"COMPLETED", "STOPPED"}  # bench.run.tracking
    assert Trial and all(hasattr(kth, k) for k in ("Int", "Float", "Choice", "Boolean", "Fixed"))


def test_oracle_overrides_are_synchronized(tmp_path: Path) -> None:
    """KerasTuner asks for ``@keras_tuner.synchronized`` on ``create_trial`` / ``end_trial``
    overrides; re-entrant within a thread (our create_trial calls itself for a skipped
    retry), exclusive across threads."""
    from searchers import OptunaSearch
    from searchers.optuna_oracle import OptunaOracle
    for name in ("create_trial", "end_trial"):
        assert getattr(OptunaOracle, name).__qualname__.startswith("synchronized."), name
    oracle = OptunaSearch(_declare, objective="val_loss", max_trials=None, seed=1,
                          directory=str(tmp_path), project_name="o").oracle
    results: list[str] = []
    threads = [threading.Thread(target=lambda tuner_id=f"t{i}": results.append(
        oracle.create_trial(tuner_id).status)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == ["RUNNING", "RUNNING"]


# ---- the mapping: one grid, one 0.9 fix --------------------------------------------------
def test_the_09_quirk_is_handled_once() -> None:
    assert 0.9 // 0.1 == 8.0  # KerasTuner's own count would stop at 0.8
    assert seam.grid_steps(0.0, 0.9, 0.1) == 9
    assert seam.grid_steps(0.0, 0.9 + 1e-9, 0.1) == 9  # models.space's declared top
    hps = keras_tuner.HyperParameters()
    hp = hps.Float("d", 0.0, 0.9, step=0.1)
    assert seam.distribution(hps.space[0]) == FloatDistribution(0.0, 0.9, step=0.1)
    assert hp == 0.0


def test_tensorboard_domain_is_the_distributions_grid() -> None:
    from models.space import space_hyperparameters
    for hp in space_hyperparameters().space:
        dist = seam.distribution(hp)
        domain = seam.tensorboard_domain(hp)
        if isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step:
            n = round((dist.high - dist.low) / dist.step) + 1
            grid = [round(dist.low + i * dist.step, 12) for i in range(n)]
        else:
            grid = sorted(dist.choices)  # type: ignore[attr-defined]
        assert list(domain.values) == pytest.approx(grid), hp.name


def test_begin_new_trial_is_what_create_trial_does_with_a_new_trial(tuner: Any, tmp_path: Path) -> None:
    from keras_tuner.engine.trial import Trial, TrialStatus
    oracle = tuner.oracle
    made = oracle.create_trial("tuner0")          # KerasTuner's own path
    hps = oracle.hyperparameters.copy()
    hps.values = dict(made.hyperparameters.values)
    hps.values["u"] = 1 if hps.values["u"] != 1 else 2  # values not tried yet
    ours = Trial(hyperparameters=hps, trial_id="77", status=TrialStatus.RUNNING)
    seam.begin_new_trial(oracle, "tuner1", ours)
    seam.tuner_ids(oracle).add("tuner1")
    assert oracle.ongoing_trials["tuner1"] is ours and oracle.trials["77"] is ours
    assert oracle.start_order[-2:] == [made.trial_id, "77"]
    assert (tmp_path / "p" / "trial_77" / "trial.json").exists()
    assert {"tuner0", "tuner1"} <= seam.tuner_ids(oracle)


def test_artifact_folder_and_the_dashboards_trial_artifact_key(tmp_path: Path) -> None:
    import json as _json

    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore
    assert seam.artifact_folder(FileSystemArtifactStore(tmp_path)) == str(tmp_path)
    assert seam.artifact_folder(object()) is None
    # the dashboard lists an artifact linked under the key among that trial's artifacts
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'd.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    trial_id = seam.storage_trial_id(study.trials[0])
    key = seam.dashboard_trial_artifact_key(trial_id, "0123-abcd")
    assert key.startswith(seam.dashboard_trial_artifact_prefix())
    meta = {"artifact_id": "0123-abcd", "filename": "w.h5", "mimetype": "application/x-hdf5",
            "encoding": None}
    seam.storage_of(study).set_study_system_attr(seam.study_id(study), key, _json.dumps(meta))
    from wsgiref.util import setup_testing_defaults
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = f"/api/studies/{seam.study_id(study)}"
    app = optuna_dashboard.wsgi(seam.storage_of(study), artifact_store=store)
    body = b"".join(app(environ, lambda status, headers, exc_info=None: None))
    (trial,) = _json.loads(body)["trials"]
    assert [a["filename"] for a in trial["artifacts"]] == ["w.h5"]


# ---- the seam is closed: KerasTuner's and Optuna's internals are reached only through it
_PRIVATE_MODULE = re.compile(r"\b(?:keras_tuner|optuna)(?:\.\w+)*\.(?:src\b|_[a-z]\w*)")


def _library_private_names(package: str) -> set[str]:
    """Every single-underscore name a library defines: functions, methods, class
    attributes, attributes set on ``self``, module-level names."""
    import ast
    import importlib
    root = Path(importlib.import_module(package).__file__).parent
    names: set[str] = set()
    for path in root.rglob("*.py"):
        names |= _defined_names(ast.parse(path.read_text(encoding="utf-8")))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _defined_names(tree: Any) -> set[str]:
    """Names a module defines: functions, classes, assigned attributes and variables."""
    import ast
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _our_files() -> list[Path]:
    repo = Path(__file__).resolve().parents[1]
    return sorted(p for pkg in ("bench", "searchers", "models") for p in (repo / pkg).rglob("*.py"))


def test_private_library_names_appear_only_in_the_seam() -> None:
    """No module but ``searchers/seam.py`` names ``keras_tuner.src`` or a private Optuna or
    KerasTuner module, or reads a private attribute that only those libraries define (names
    our own code defines, and the KerasTuner methods the seam lists as overridden, are
    ours to use)."""
    import ast
    ours: set[str] = set()
    trees = {}
    for path in _our_files():
        tree = trees[path] = ast.parse(path.read_text(encoding="utf-8"))
        ours |= _defined_names(tree)
    # the Tuner methods a subclass calls or overrides, declared (and checked) in the seam
    declared = {name for names in seam.KT_PRIVATE_METHODS.values() for name in names}
    theirs = (_library_private_names("keras_tuner") | _library_private_names("optuna")) - ours - declared
    assert {"_tried_so_far", "_max_collisions", "_create_scoped_session", "_CachedStorage"} <= theirs
    found = []
    for path, tree in trees.items():
        if path.name == "seam.py" and path.parent.name == "searchers":
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                  for m in _PRIVATE_MODULE.finditer(text)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in theirs:
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom):
                found += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names
                          if a.name in theirs]
    assert not found, "private library names outside searchers/seam.py:\n" + "\n".join(found)
