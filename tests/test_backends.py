"""The library on every Keras 3 backend: TensorFlow, JAX and PyTorch.

Keras fixes its backend at import, so each backend gets a fresh process running
``tests/backend_scenario.py`` (OptunaSearch with pruning, best-k checkpoints, the input
pipeline, multi-objective and resume, beside KerasTuner's RandomSearch on the same space,
and the benchmark's TensorBoard logger); this test reads its record and the event files it
left, with TensorBoard's own reader. The JAX and PyTorch extras (``pip install -e
'.[jax,torch]'``) are required under CI (a skip would hide a broken install).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run.tblog import read_hparams

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # backend -> module


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed (pip install -e '.[{module}]')"
    if os.environ.get("CI") == "true" or os.environ.get("BENCH_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{message}: required here (CI=true or BENCH_REQUIRE_SERVERS=1)")
    pytest.skip(message)


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def scenario(request, tmp_path_factory):
    backend = request.param
    _require(BACKENDS[backend])
    out = tmp_path_factory.mktemp(f"backend-{backend}")
    env = dict(os.environ, KERAS_BACKEND=backend)
    proc = subprocess.run([sys.executable, "-m", "tests.backend_scenario", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return backend, out, json.loads((out / "result.json").read_text())


def test_runs_on_the_backend_it_was_given(scenario):
    backend, _, r = scenario
    assert r["backend"] == backend


def test_pruning_stops_the_trial_on_every_backend(scenario):
    _, _, r = scenario
    assert r["states"] == ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]
    assert r["pruned_steps"] == [1]  # pruned after its first epoch
    assert r["kt_statuses"].count("STOPPED") == 1


def test_best_k_checkpoints_hold_each_trials_own_weights(scenario):
    _, _, r = scenario
    assert r["checkpoints"] == 2  # keep_best_checkpoints=2 of 4 trials
    # the reloaded best models reproduce their trials' objectives: the right weights
    for score, reloaded in zip(r["best_scores"], r["reloaded_val_loss"], strict=True):
        assert math.isclose(score, reloaded, rel_tol=1e-5, abs_tol=1e-6)
    assert r["best_scores"] == sorted(r["best_scores"])


def test_input_pipeline_only_where_tf_data_applies(scenario):
    backend, _, r = scenario
    assert r["pipeline"] == [backend == "tensorflow"] * 4


def test_resume_adds_trials_without_rerunning(scenario):
    _, _, r = scenario
    assert r["resumed_trials"] == 6
    assert r["resumed_fits"] == 2  # only the two new trials trained


def test_multi_objective_front_and_best_model(scenario):
    _, _, r = scenario
    assert 1 <= r["front"] <= 4
    assert r["multi_best_model_layers"] >= 2


def test_kerastuner_random_search_beside_it(scenario):
    _, _, r = scenario
    assert r["same_space"]
    assert r["kt_trials"] == 4
    assert math.isclose(r["kt_best_score"], r["kt_reloaded_val_loss"], rel_tol=1e-5, abs_tol=1e-6)


def test_tensorboard_logs_without_tensorflow_elsewhere(scenario):
    backend, out, r = scenario
    assert r["tensorflow_imported"] is (backend == "tensorflow")
    exp = read_hparams(out / "tb")
    assert exp["config"]["units"] == {"type": "discrete", "dtype": "float64", "values": [2, 4, 6, 8]}
    assert set(exp["config"]["metrics"]) >= {"val_loss", "epochs_trained"}
    trials = exp["trials"]
    assert len(trials) == 6
    statuses = sorted(t["status"] for t in trials.values())
    assert statuses == ["COMPLETE"] * 5 + ["PRUNED"]
    pruned = next(t for t in trials.values() if t["status"] == "PRUNED")
    assert pruned["tb_status"] == "STATUS_UNKNOWN"
    assert [s for s, _ in pruned["scalars"]["val_loss"]] == [1]
    done = [t for t in trials.values() if t["status"] == "COMPLETE"]
    assert all(t["tb_status"] == "STATUS_SUCCESS" for t in done)
    assert all(len(t["scalars"]["val_loss"]) == 3 and "val_loss" in t["metrics"] for t in done)
    best = min(t["metrics"]["val_loss"] for t in done)
    assert math.isclose(best, r["study_best"], rel_tol=1e-6)
