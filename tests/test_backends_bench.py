"""The benchmark on JAX and PyTorch: ``bench compare --backend``, its records, its
TensorBoard logs and its report section, ``bench throughput`` side by side, and the
mistakes a user makes with backends.

Each backend run is a real ``python -m bench`` process (Keras fixes its backend at
import); every searcher of the registry runs on each backend, one trial each, in-process
(``--trials-per-process 0``) to keep the suite short.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from bench import cli
from bench.core import schema
from bench.run.tblog import read_hparams
from searchers.registry import SEARCHERS
from tests.test_backends import BACKENDS, ROOT, _require

TINY = ["--seeds", "1", "--preset", "quick", "--budget-epochs", "2", "--no-retrain",
        "--trials-per-process", "0", "--image-size", "24x8"]


def _bench(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**environ, **env})


@pytest.fixture(scope="module", params=["jax", "torch"])
def compared(request, tmp_path_factory):
    backend = request.param
    _require(BACKENDS[backend])
    work = tmp_path_factory.mktemp(f"compare-{backend}")
    proc = _bench(["compare", "--searchers", ",".join(SEARCHERS), "--backend", backend,
                   "--storage", "sqlite:///s.db", *TINY], work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return backend, work, proc


def test_every_searcher_runs_on_the_backend(compared):
    backend, work, _ = compared
    storage = f"sqlite:///{work / 's.db'}"
    names = set(optuna.get_all_study_names(storage))
    for searcher in SEARCHERS:
        name = f"toon-{searcher}-{backend}-s0"  # a study per backend: never TensorFlow's
        assert name in names
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.user_attrs[schema.STUDY_BENCH]["keras_backend"] == backend
        assert any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    compare = optuna.load_study(study_name=f"toon-compare-{backend}", storage=storage)
    assert compare.user_attrs[schema.STUDY_BENCH]["keras_backend"] == backend
    versions = compare.user_attrs[schema.STUDY_BENCH]["versions"]
    assert backend in versions  # the backend's own version is on record


def test_backend_run_logs_hparams_for_tensorboard(compared):
    backend, work, _ = compared
    exp = read_hparams(work / "runs" / f"toon-optuna-{backend}-s0")
    assert "learning_rate" in exp["config"]
    trials = list(exp["trials"].values())
    assert trials and all(t["status"] == "COMPLETE" for t in trials)
    assert all(t["scalars"]["val_loss"] and "val_loss" in t["metrics"] for t in trials)


def test_report_keeps_backends_apart(compared, tmp_path):
    backend, work, _ = compared
    out = tmp_path / "R.md"
    rc = cli.main(["report", "--storage", f"sqlite:///{work / 's.db'}", "--out", str(out),
                   "--plots-dir", str(tmp_path / "p")])
    assert rc == 0
    text = out.read_text()
    assert f"## Data set `toon on {backend}`" in text
    assert "## Data set `toon`\n" not in text  # nothing of this store ran on TensorFlow


def test_a_study_is_not_resumed_on_another_backend(compared):
    backend, work, _ = compared
    name = f"toon-random-{backend}-s0"
    storage = f"sqlite:///{work / 's.db'}"
    before = len(optuna.load_study(study_name=name, storage=storage).trials)
    proc = _bench(["run", "--searcher", "random", "--study", name, "--backend", "tensorflow",
                   "--preset", "quick", "--budget-epochs", "4", "--image-size", "24x8",
                   "--trials-per-process", "0", "--storage", "sqlite:///s.db"], work)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: study {name!r} exists with a different Keras backend; refusing to mix "
        "incomparable trials (choose another --study)"]
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == before


def test_throughput_side_by_side(tmp_path):
    _require("torch")
    proc = _bench(["throughput", "--backend", "tensorflow,torch", "--epochs", "2", "--repeats",
                   "1", "--image-size", "24x8", "--storage", "sqlite:///t.db"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "images/s" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["tensorflow", "torch"]
    study = optuna.load_study(study_name="toon-throughput-backends", storage=f"sqlite:///{tmp_path / 't.db'}")
    record = study.user_attrs[schema.STUDY_BENCH]
    assert record["kind"] == schema.KIND_BACKEND_THROUGHPUT
    rows = record["backends"]
    assert list(rows) == ["tensorflow", "torch"]
    assert rows["tensorflow"]["vs_reference"] == 1.0
    assert all(r["trial_images_per_s"] > 0 and r["bare_images_per_s"] > 0 for r in rows.values())
    out = tmp_path / "R.md"
    assert cli.main(["report", "--storage", f"sqlite:///{tmp_path / 't.db'}", "--out", str(out),
                     "--plots-dir", str(tmp_path / "p")]) == 0
    text = out.read_text()
    assert "### Keras backends: training speed" in text
    assert "| `torch` |" in text


# ---------------------------------------------------------------- mistakes
@pytest.mark.parametrize("args, env, says", [
    (["run", "--backend", "jax"], {"KERAS_BACKEND": "torch"},
     "--backend jax disagrees with KERAS_BACKEND=torch"),
    (["run", "--backend", "mxnet"], {}, "--backend 'mxnet': choose from tensorflow, jax, torch"),
    (["throughput", "--backend", "torch,torch"], {}, "--backend names one twice"),
])
def test_backend_mistakes_are_one_line_and_create_nothing(tmp_path, args, env, says):
    proc = _bench([*args, "--storage", "sqlite:///s.db"], tmp_path, **env)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "runs").exists()


def test_backend_not_installed_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["run", "--backend", "jax", "--preset", "quick", "--storage", "sqlite:///s.db"])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --backend jax: jax is not installed (pip install -e '.[jax]')"]
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "runs").exists()
