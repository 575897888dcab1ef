"""``python -m bench dashboard`` as a user starts it: a real process serving a real store.

The store is built by hand (the end-to-end runs live in test_logging_e2e.py): one
study per searcher, named as runs name them, with COMPLETE, PRUNED and FAIL trials
and their per-epoch intermediate values.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from bench.core import schema
from bench.core import store as bench_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
SEARCHERS = {"random": "keras_tuner", "hyperband": "keras_tuner", "bayesian": "keras_tuner",
             "tpe": "optuna"}
DISTS = {
    "conv_1_filters": IntDistribution(4, 16, step=4),
    "dropout_1_rate": FloatDistribution(0.0, 0.9, step=0.1),
    "learning_rate": CategoricalDistribution([1e-2, 1e-3, 1e-4]),
}
# (state, intermediate values) per trial; the objective is the best intermediate value.
TRIALS = [
    (TrialState.COMPLETE, {1: 1.30, 2: 1.10, 3: 0.90}),
    (TrialState.PRUNED, {1: 1.38}),
    (TrialState.COMPLETE, {1: 1.20, 2: 0.70, 3: 0.75}),
    (TrialState.FAIL, {1: 1.50}),
]
START_TIMEOUT = 60.0
MO_NAME = "toon-optuna-mo-s0"  # a multi-objective run: val_loss against model size
# (val_loss, n_params, feasible under the cap) per trial; the front is #0 and #2 (#3 is
# infeasible, #1 is dominated by #2)
MO_TRIALS = [(0.40, 900, True), (0.60, 5000, True), (0.50, 600, True), (0.30, 70000, False)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expected_store(url: str) -> dict[str, list[dict[str, Any]]]:
    """Create the four studies; return, per study name, what its trials must show."""
    out: dict[str, list[dict[str, Any]]] = {}
    for k, (searcher, backend) in enumerate(SEARCHERS.items()):
        name = schema.study_name("toon", searcher, 0)
        study = bench_store.create_study(url, name)  # as every run creates its study
        study.set_user_attr(schema.STUDY_BENCH, {
            "kind": schema.KIND_SEARCH, "searcher": searcher, "backend": backend, "seed": 0,
            "dataset": "toon", "budget_epochs": 9, "epochs_per_trial": 3})
        rows = []
        for i, (state, inter) in enumerate(TRIALS):
            inter = {step: round(v + 0.01 * k, 4) for step, v in inter.items()}
            params = {"conv_1_filters": 4 * (1 + (i + k) % 4), "dropout_1_rate": 0.1 * i,
                      "learning_rate": [1e-2, 1e-3, 1e-4][(i + k) % 3]}
            value = min(inter.values()) if state == TrialState.COMPLETE else None
            study.add_trial(create_trial(
                state=state, value=value, params=params, distributions=DISTS,
                intermediate_values=inter,
                user_attrs={schema.T_SEARCHER: searcher, schema.T_EPOCHS: len(inter),
                            schema.T_KT_ID: f"{i:04d}"}))
            rows.append({"state": state, "value": value, "inter": inter, "params": params})
        out[name] = rows
    return out


def _multi_objective_study(url: str) -> None:
    """A multi-objective run's study as the benchmark stores it (bench/core/store.py)."""
    from searchers.seam import constraint_system_attrs
    study = bench_store.create_study(url, MO_NAME, metric_names=("val_loss", "params"),
                                     directions=("minimize", "minimize"))
    study.set_user_attr(schema.STUDY_BENCH, {
        "kind": schema.KIND_SEARCH, "searcher": "optuna", "backend": "optuna", "seed": 0,
        "dataset": "toon", "objectives": ["val_loss", "params"],
        "directions": ["minimize", "minimize"], "max_params": 60812})
    for i, (loss, size, feasible) in enumerate(MO_TRIALS):
        assert feasible == (size <= 60812)  # the table above says what the cap makes of it
        study.add_trial(create_trial(
            values=[loss, size], params={"conv_1_filters": 4 * (1 + i % 4)},
            distributions={"conv_1_filters": DISTS["conv_1_filters"]},
            intermediate_values={1: loss + 0.2, 2: loss},
            user_attrs={schema.T_PARAMS: size, schema.T_KT_ID: f"{i:04d}"},
            system_attrs=constraint_system_attrs("max_params", size - 60812)))


def _get(port: int, path: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        assert resp.status == 200
        return json.loads(resp.read().decode())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{root / 'studies.db'}"
    expected = _expected_store(url)
    _multi_objective_study(url)
    return url, expected


@pytest.fixture(scope="module")
def server(store: tuple[str, dict[str, Any]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The dashboard on a free port, with no --host (the default must be loopback only)."""
    url, _ = store
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "dashboard", "--storage", url, "--port", str(port)],
        cwd=tmp_path_factory.mktemp("cwd"), env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        studies = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                studies = _get(port, "/api/studies", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        if studies is None:
            pytest.fail(f"dashboard not answering on port {port} after {START_TIMEOUT:.0f}s")
        first_line = proc.stdout.readline()  # printed (and flushed) before serving
        yield {"proc": proc, "port": port, "studies": studies, "first_line": first_line}
    finally:
        _stop(proc)


def test_lists_every_study(server: dict[str, Any], store: tuple[str, dict[str, Any]]) -> None:
    _, expected = store
    listed = {s["study_name"]: s for s in server["studies"]["study_summaries"]}
    assert set(listed) == set(expected) | {MO_NAME}
    for name, summary in listed.items():
        assert summary["directions"] == ["minimize"] * (2 if name == MO_NAME else 1), name
        assert summary["user_attrs"], f"{name}: no user attrs shown"
        assert "bench" in {a["key"] for a in summary["user_attrs"]}


def test_study_detail_has_trials_and_intermediate_values(
        server: dict[str, Any], store: tuple[str, dict[str, Any]]) -> None:
    _, expected = store
    ids = {s["study_name"]: s["study_id"] for s in server["studies"]["study_summaries"]}
    for name, rows in expected.items():
        detail = _get(server["port"], f"/api/studies/{ids[name]}")
        assert detail["name"] == name
        trials = sorted(detail["trials"], key=lambda t: t["number"])
        assert [t["number"] for t in trials] == list(range(len(rows))), name
        assert detail["has_intermediate_values"] is True
        for t, row in zip(trials, rows):
            where = f"{name} #{t['number']}"
            assert t["state"] == row["state"].name.capitalize(), where
            got = {iv["step"]: iv["value"] for iv in t["intermediate_values"]}
            assert got == pytest.approx(row["inter"]), where
            if row["value"] is None:
                assert "values" not in t, where
            else:
                assert t["values"] == pytest.approx([row["value"]]), where
            params = {p["name"]: p["param_external_value"] for p in t["params"]}
            assert params == {k: str(v) for k, v in row["params"].items()}, where
        assert detail["objective_names"] == ["val_loss"], name  # not "Objective 0"
        best = min(r["value"] for r in rows if r["value"] is not None)
        assert [b["values"][0] for b in detail["best_trials"]] == pytest.approx([best]), name


def test_multi_objective_study_has_two_directions_and_the_front(server: dict[str, Any]) -> None:
    """What the dashboard draws its Pareto-front plot from: two directions, both metric
    names, the non-dominated trials. optuna-dashboard 0.21 reads only Optuna's old list
    form of constraints (system attr ``constraints``), not ``set_constraint``'s keyed form
    that Optuna 5 writes: its front also shows the infeasible #3 (``study.best_trials``,
    the report and the samplers honour the cap)."""
    study_id = next(s["study_id"] for s in server["studies"]["study_summaries"]
                    if s["study_name"] == MO_NAME)
    detail = _get(server["port"], f"/api/studies/{study_id}")
    assert detail["directions"] == ["minimize", "minimize"]
    assert detail["objective_names"] == ["val_loss", "params"]
    assert sorted(b["number"] for b in detail["best_trials"]) == [0, 2, 3]
    assert all(t["constraints"] == [] for t in detail["trials"])  # the keyed form: unseen
    values = {t["number"]: t["values"] for t in detail["trials"]}
    assert values == {i: [loss, size] for i, (loss, size, _ok) in enumerate(MO_TRIALS)}


def test_binds_loopback_by_default(server: dict[str, Any]) -> None:
    line = server["first_line"]
    assert f"http://127.0.0.1:{server['port']}/" in line, line
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process(server["proc"].pid)
    conns = getattr(proc, "net_connections", None) or proc.connections
    listening = [c for c in conns(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "the dashboard process listens on nothing"
    assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", server["port"])}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _page_text(server: dict[str, Any], page: str, tmp_path: Path, budget_ms: int) -> str:
    """The text of a dashboard page of toon-tpe-s0 once headless Chromium has rendered it."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine")
    study = next(s for s in server["studies"]["study_summaries"]
                 if s["study_name"] == "toon-tpe-s0")
    url = f"http://127.0.0.1:{server['port']}/dashboard/studies/{study['study_id']}{page}"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={tmp_path / 'profile'}",
           f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", done.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_page_renders_trials_in_a_browser(server: dict[str, Any], tmp_path: Path) -> None:
    # The rendered page's text: the React app has fetched the study and drawn its trials.
    text = _page_text(server, "/trials", tmp_path, 15000)
    assert "toon-tpe-s0" in text, text[:3000]
    assert f"{len(TRIALS)} Trials" in text, text[:3000]
    for number, (state, _) in enumerate(TRIALS):
        assert f"Trial {number} {state.name.capitalize()}" in text, text[:3000]
    # The selected (first) trial's details: its intermediate values and parameters.
    assert "Intermediate Values" in text and "conv_1_filters" in text, text[:3000]


def test_study_page_names_the_objective(server: dict[str, Any], tmp_path: Path) -> None:
    """The history plot's axis says val_loss (the study's metric name), not "Objective 0"."""
    text = _page_text(server, "", tmp_path, 10000)
    assert "History" in text and "y Axis val_loss" in text, text[:3000]
    assert "Objective 0" not in text, text[:3000]


def test_ctrl_c_stops_cleanly(store: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, _ = store
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "dashboard", "--storage", url, "--port", str(port)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the server is bound (or the process ends)
        assert "Ctrl-C" in line, (line, proc.poll())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        _stop(proc)


def test_port_in_use_is_one_line_exit_2(store: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, _ = store
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bench", "dashboard", "--storage", url, "--port", str(port)],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and "already in use" in lines[0], lines[0]
    assert str(port) in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
