"""bench.run.tblog: declared domains, trials and statuses as TensorBoard itself reads them.

No model is trained: three fake trials (COMPLETE, PRUNED as a Hyperband-style
continuation starting past epoch 0, FAIL) are logged over the real search space and
read back three ways: ``read_hparams`` (TensorBoard's event multiplexer), the hparams
plugin's own request handlers, and a real ``tensorboard`` server over HTTP.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import keras_tuner
import pytest

from bench.run.tblog import HParamsLogger, read_hparams
from models.space import space_hyperparameters

ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
DROPOUT_GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def _values(**over: Any) -> dict[str, Any]:
    v = dict(space_hyperparameters().values)
    v.update(over)
    return v


TRIALS = {
    # KerasTuner-style values: binary noise on the float grid, Hyperband bookkeeping keys.
    "0": _values(conv_1_filters=12, dropout_1_rate=0.1 * 3, learning_rate=1e-3,
                 **{"tuner/epochs": 3, "tuner/initial_epoch": 0}),
    "1": _values(conv_2_filters=20, dropout_2_rate=0.9, learning_rate=1e-4, pool_1_size=4),
    "2": _values(conv_1_kernel_size=5, learning_rate=1e-2),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("runs") / "toon-optuna-s0"
    log = HParamsLogger(logdir, space_hyperparameters())
    log.start_trial("0", TRIALS["0"])
    for e in (1, 2, 3):
        log.log_epoch("0", e, {"loss": 1.0 / e, "accuracy": 0.5 + e / 10,
                               "val_loss": 2.0 / e, "val_accuracy": 0.4 + e / 10})
    log.end_trial("0", "COMPLETE", {"val_loss": 0.25, "loss": 1 / 3, "accuracy": 0.8,
                                    "val_accuracy": 0.7, "epochs_trained": 3})
    # Continuation of a parent trained to epoch 2: absolute epochs 3 and 4, a NaN at 4.
    log.start_trial("1", TRIALS["1"])
    log.log_epoch("1", 3, {"loss": 0.9, "val_loss": 1.5})
    log.log_epoch("1", 4, {"loss": 0.8, "val_loss": float("nan")})
    log.end_trial("1", "PRUNED", {"val_loss": 1.5})  # epochs_trained defaults to 2
    log.start_trial("2", TRIALS["2"])
    log.log_epoch("2", 1, {"loss": float("inf"), "val_loss": float("nan")})
    log.end_trial("2", "FAIL", {"val_loss": float("nan")})  # as tracking.py reports failures
    log.close()
    return logdir


def test_declared_domains(study: Path) -> None:
    cfg = read_hparams(study)["config"]
    assert cfg["conv_1_filters"] == {"type": "discrete", "dtype": "float64", "values": [4, 8, 12, 16]}
    assert cfg["conv_2_filters"]["values"] == [4, 8, 12, 16, 20]
    assert cfg["conv_1_kernel_size"]["values"] == [3, 5]
    assert cfg["pool_1_size"]["values"] == [2, 3, 4]
    assert cfg["pool_2_size"]["values"] == [1, 2, 3, 4]
    assert cfg["learning_rate"]["values"] == [0.0001, 0.001, 0.01]
    # Exact, clean grid including 0.9 (KerasTuner's own value list stops at 0.8).
    assert cfg["dropout_1_rate"]["values"] == DROPOUT_GRID
    assert cfg["dropout_2_rate"]["values"] == DROPOUT_GRID
    space_names = {hp.name for hp in space_hyperparameters().space}
    assert space_names <= set(cfg)
    assert cfg["metrics"] == ["val_loss", "loss", "accuracy", "val_accuracy", "epochs_trained"]
    infos = {m["name"]: m for m in cfg["metric_infos"]}
    assert infos["val_loss"]["display_name"] == "val_loss (objective)"
    assert infos["val_loss"]["dataset_type"] == "DATASET_VALIDATION"
    assert infos["loss"]["dataset_type"] == "DATASET_TRAINING"
    assert infos["epochs_trained"]["tag"] == "final/epochs_trained"


def test_trials_values_statuses_scalars(study: Path) -> None:
    trials = read_hparams(study)["trials"]
    assert set(trials) == {"0", "1", "2"}
    space_names = {hp.name for hp in space_hyperparameters().space}
    for tid, t in trials.items():
        assert set(t["hparams"]) == space_names  # no tuner/* keys
        for name in space_names:
            assert t["hparams"][name] == pytest.approx(TRIALS[tid][name], abs=1e-12)
        assert t["attempts"] == 1 and t["run"] == f"trial_{tid}"
    assert trials["0"]["hparams"]["dropout_1_rate"] == 0.3  # snapped onto the grid
    assert trials["0"]["hparams"]["conv_1_filters"] == 12

    t0, t1, t2 = trials["0"], trials["1"], trials["2"]
    assert (t0["status"], t0["tb_status"]) == ("COMPLETE", "STATUS_SUCCESS")
    assert (t1["status"], t1["tb_status"]) == ("PRUNED", "STATUS_UNKNOWN")
    assert (t2["status"], t2["tb_status"]) == ("FAIL", "STATUS_FAILURE")

    assert t0["metrics"] == pytest.approx({"val_loss": 0.25, "loss": 1 / 3, "accuracy": 0.8,
                                           "val_accuracy": 0.7, "epochs_trained": 3})
    assert t1["metrics"] == pytest.approx({"val_loss": 1.5, "epochs_trained": 2})
    assert t2["metrics"]["epochs_trained"] == 1 and math.isnan(t2["metrics"]["val_loss"])

    assert set(t0["scalars"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert [s for s, _ in t0["scalars"]["val_loss"]] == [1, 2, 3]
    assert [v for _, v in t0["scalars"]["val_loss"]] == pytest.approx([2.0, 1.0, 2 / 3])
    assert [s for s, _ in t1["scalars"]["loss"]] == [3, 4]  # absolute epochs
    assert t1["scalars"]["val_loss"][0] == (3, 1.5) and math.isnan(t1["scalars"]["val_loss"][1][1])
    assert t2["scalars"]["loss"] == [(1, math.inf)]


def test_config_written_once(study: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in study.iterdir() if p.is_file())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same space: no conflict warning
        HParamsLogger(study, space_hyperparameters()).close()
    assert sorted(p.name for p in study.iterdir() if p.is_file()) == before == before[:1]

    other = keras_tuner.HyperParameters()
    other.Int("units", 8, 64, step=8)
    with pytest.warns(UserWarning, match="different HParams config"):
        HParamsLogger(study, other).close()
    assert sorted(p.name for p in study.iterdir() if p.is_file()) == before
    assert read_hparams(study)["config"]["conv_1_filters"]["values"] == [4, 8, 12, 16]


def test_domain_kinds(tmp_path: Path) -> None:
    hp = keras_tuner.HyperParameters()
    hp.Boolean("bn")
    hp.Fixed("opt", "adam")
    hp.Choice("act", ["relu", "tanh"])
    hp.Choice("batch", [64, 32])
    hp.Int("units", 1, 1000)                      # 1000 values -> interval
    hp.Int("width", 2, 64, step=2, sampling="log")  # 2, 4, ..., 64
    hp.Float("lr", 1e-4, 1e-1, sampling="log")   # no step -> interval
    hp.Float("frac", 0.0, 1.0, step=0.01)         # 101 values -> interval
    log = HParamsLogger(tmp_path, hp)
    log.start_trial("a", {"bn": True, "opt": "adam", "act": "tanh", "batch": 32, "units": 7,
                          "width": 16.0, "lr": 0.003, "frac": 0.07})
    log.end_trial("a", "COMPLETED", {"val_loss": 0.1})
    out = read_hparams(tmp_path)
    cfg = out["config"]
    assert cfg["bn"] == {"type": "discrete", "dtype": "bool", "values": [False, True]}
    assert cfg["opt"] == {"type": "discrete", "dtype": "string", "values": ["adam"]}
    assert cfg["act"]["values"] == ["relu", "tanh"]
    assert cfg["batch"]["values"] == [32, 64]
    assert cfg["units"] == {"type": "interval", "dtype": "float64", "min": 1, "max": 1000}
    assert cfg["width"]["values"] == [2, 4, 8, 16, 32, 64]
    assert cfg["lr"] == {"type": "interval", "dtype": "float64", "min": 1e-4, "max": 1e-1}
    assert cfg["frac"]["type"] == "interval"
    t = out["trials"]["a"]
    assert t["hparams"] == {"bn": True, "opt": "adam", "act": "tanh", "batch": 32, "units": 7,
                            "width": 16, "lr": 0.003, "frac": 0.07}
    assert (t["status"], t["tb_status"]) == ("COMPLETED", "STATUS_SUCCESS")


def test_restarted_trials(tmp_path: Path) -> None:
    space = space_hyperparameters()
    log = HParamsLogger(tmp_path, space)
    # Crash mid-trial: no end_trial, the process goes away.
    log.start_trial("7", TRIALS["0"])
    log.log_epoch("7", 1, {"val_loss": 9.0})
    log.log_epoch("7", 2, {"val_loss": 8.0})
    # Failed, then retried in the same process.
    log.start_trial("8", TRIALS["1"])
    log.end_trial("8", "FAIL", {})
    log.start_trial("8", TRIALS["1"])
    log.log_epoch("8", 1, {"val_loss": 1.0})
    log.end_trial("8", "COMPLETE", {"val_loss": 1.0})
    del log

    resumed = HParamsLogger(tmp_path, space)  # a new process resuming the study
    resumed.start_trial("7", TRIALS["0"])
    for e in (1, 2, 3):
        resumed.log_epoch("7", e, {"val_loss": 1.0 / e})
    resumed.end_trial("7", "COMPLETE", {"val_loss": 1 / 3})
    resumed.close()

    trials = read_hparams(tmp_path)["trials"]
    t7, t8 = trials["7"], trials["8"]
    assert (t7["attempts"], t7["run"], t7["status"]) == (2, "trial_7/attempt_2", "COMPLETE")
    assert [s for s, _ in t7["scalars"]["val_loss"]] == [1, 2, 3]
    assert t7["metrics"]["val_loss"] == pytest.approx(1 / 3)
    assert (t8["attempts"], t8["status"], t8["metrics"]) == (2, "COMPLETE", {"val_loss": 1.0,
                                                                           "epochs_trained": 1})
    # What the hparams plugin shows: one row per attempt, the crashed one as a failure.
    groups = {g["name"]: g for g in _session_groups(tmp_path)}
    status = {n: g["sessions"][0]["status"] for n, g in groups.items()}
    assert status == {"7": "STATUS_FAILURE", "7/attempt_2": "STATUS_SUCCESS",
                      "8": "STATUS_FAILURE", "8/attempt_2": "STATUS_SUCCESS"}


def test_misuse_is_reported(tmp_path: Path) -> None:
    log = HParamsLogger(tmp_path, space_hyperparameters())
    with pytest.raises(RuntimeError, match="not started"):
        log.log_epoch("x", 1, {"loss": 1.0})
    with pytest.raises(ValueError):
        log.start_trial("../escape", {})
    log.close()


# ----------------------------------------------------------- TensorBoard's own backend
def _plugin_apps(logdir: Path) -> dict[str, Any]:
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    ctx = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=mux,
        data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)),
    )
    return hparams_plugin.HParamsPlugin(ctx).get_plugin_apps()


def _post(app: Any, body: dict[str, Any]) -> Any:
    from werkzeug.test import Client

    resp = Client(app).post("/", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return json.loads(resp.get_data(as_text=True))


def _session_groups(logdir: Path) -> list[dict[str, Any]]:
    apps = _plugin_apps(logdir)
    return _post(apps["/session_groups"], {"experimentName": "", "allowedStatuses": ALL_STATUSES,
                                           "startIndex": 0, "sliceSize": 100})["sessionGroups"]


def _check_plugin_view(exp: dict[str, Any], groups: list[dict[str, Any]]) -> None:
    """What the HPARAMS table / parallel coordinates / scatter matrix are built from."""
    infos = {h["name"]: h for h in exp["hparamInfos"]}
    assert infos["conv_1_filters"]["domainDiscrete"] == [4, 8, 12, 16]
    assert infos["learning_rate"]["domainDiscrete"] == [0.0001, 0.001, 0.01]
    assert infos["dropout_1_rate"]["domainDiscrete"] == DROPOUT_GRID
    assert [m["name"]["tag"] for m in exp["metricInfos"]][:1] == ["final/val_loss"]
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"0", "1", "2"}
    assert by_name["0"]["hparams"]["dropout_1_rate"] == 0.3
    assert [s["name"] for s in by_name["0"]["sessions"]] == ["trial_0"]
    status = {n: g["sessions"][0]["status"] for n, g in by_name.items()}
    assert status == {"0": "STATUS_SUCCESS", "1": "STATUS_UNKNOWN", "2": "STATUS_FAILURE"}
    metrics = {n: {m["name"]["tag"]: m["value"] for m in g["metricValues"]} for n, g in by_name.items()}
    assert metrics["0"]["final/val_loss"] == pytest.approx(0.25)
    assert metrics["0"]["final/epochs_trained"] == 3
    assert metrics["1"]["final/val_loss"] == pytest.approx(1.5)
    assert metrics["1"]["final/epochs_trained"] == 2
    assert metrics["2"]["final/val_loss"] == "NaN"  # how the plugin serves NaN (the UI handles it)


def test_hparams_plugin_backend(study: Path) -> None:
    apps = _plugin_apps(study)
    exp = _post(apps["/experiment"], {"experimentName": ""})
    _check_plugin_view(exp, _session_groups(study))


@pytest.mark.timeout(120)
def test_real_tensorboard_server(study: Path) -> None:
    """``tensorboard --logdir`` as a user runs it (default loader, the Rust data server
    where it is available) answers the same experiment and session groups over HTTP."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(study), "--host", "127.0.0.1",
         "--port", "0", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else None
        if url is None:
            pytest.skip("tensorboard did not start")
        base = url + "data/plugin/hparams/"
        exp: dict[str, Any] = {}
        groups: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # the data server loads in the background
            q = urllib.parse.quote(json.dumps({"experimentName": ""}))
            exp = json.load(urllib.request.urlopen(f"{base}experiment?request={q}", timeout=10))
            req = urllib.request.Request(
                base + "session_groups",
                data=json.dumps({"experimentName": "", "allowedStatuses": ALL_STATUSES,
                                 "startIndex": 0, "sliceSize": 100}).encode(),
                headers={"Content-Type": "application/json"},
            )
            groups = json.load(urllib.request.urlopen(req, timeout=10)).get("sessionGroups", [])
            if exp.get("hparamInfos") and len(groups) == 3 and all(g["metricValues"] for g in groups):
                break
            time.sleep(0.5)
        _check_plugin_view(exp, groups)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_every_objective_of_a_multi_objective_run_is_a_metric(tmp_path: Path) -> None:
    """Issue 15: val_loss and params both show as HParams metrics marked "(objective)"."""
    logdir = tmp_path / "toon-optuna-mo-s0"
    log = HParamsLogger(logdir, space_hyperparameters(), objectives=("val_loss", "params"),
                        metrics=("loss", "accuracy", "val_loss", "val_accuracy", "params"))
    log.start_trial("0", TRIALS["0"])
    log.log_epoch("0", 1, {"loss": 1.0, "val_loss": 0.9, "params": 1234.0})
    log.end_trial("0", "COMPLETE", {"val_loss": 0.9, "params": 1234.0})
    log.close()
    back = read_hparams(logdir)
    cfg = back["config"]
    assert cfg["metrics"] == ["val_loss", "params", "loss", "accuracy", "val_accuracy",
                              "epochs_trained"]
    shown = {m["name"]: m["display_name"] for m in cfg["metric_infos"]}
    assert shown["val_loss"] == "val_loss (objective)" and shown["params"] == "params (objective)"
    assert shown["loss"] == "loss"
    trial = back["trials"]["0"]
    assert trial["metrics"]["params"] == 1234.0 and trial["metrics"]["val_loss"] == pytest.approx(0.9)
    assert trial["scalars"]["params"] == [(1, 1234.0)]
