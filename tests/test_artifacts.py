"""Checkpoints in Optuna's artifact store: S3 against a moto server started here on
127.0.0.1, a folder store that goes away mid-run, ``--artifacts`` on ``bench run`` for an
Optuna-backed and a KerasTuner searcher, and the bad inputs that must be one line."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import optuna
import pytest

from bench.cli import main
from bench.core.artifact_store import open_artifact_store
from searchers import OptunaSearch, seam
from searchers.checkpoint_artifacts import CHECKPOINT_ATTR
from tests import tiny

QUICK = ["--preset", "quick", "--budget-epochs", "4", "--trials-per-process", "0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(port: int) -> subprocess.Popen:
    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("moto_server did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """An S3-compatible server (moto) on 127.0.0.1 with bucket ``ckpt``; stopped after."""
    port = _free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    proc = _start_moto(port)
    import boto3
    boto3.client("s3").create_bucket(Bucket="ckpt")
    try:
        yield {"port": port, "proc": proc}
    finally:
        if proc.poll() is None:
            _stop(proc)


def _tuner(tmp_path: Path, name: str, store: object, max_trials: int, url: str) -> OptunaSearch:
    return OptunaSearch(tiny.build, objective="val_loss", max_trials=max_trials,
                        pruner=optuna.pruners.NopPruner(), storage=url, study_name="s",
                        directory=str(tmp_path / name), project_name="p", artifact_store=store,
                        keep_best_checkpoints=2, sampler=optuna.samplers.RandomSampler(seed=len(name)))


def _search(tuner: OptunaSearch, callbacks: list | None = None) -> None:
    x, y, xv, yv = tiny.data(0)
    tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0, callbacks=callbacks or [])


def test_s3_store_shares_the_best_checkpoints_and_survives_the_server_going(
        s3: dict[str, object], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_artifact_store("s3://ckpt/runs/toon")
    first = _tuner(tmp_path, "a", store, 3, url)
    _search(first)
    best = first.oracle.get_best_trials(1)[0]
    want = first.get_best_models(1)[0].get_weights()
    # another machine: its own project, nothing trained there, the same study and store
    other = _tuner(tmp_path, "bb", store, 3, url)
    got = other.get_best_models(1)[0].get_weights()
    assert not other.oracle.is_local(other.oracle.get_best_trials(1)[0])
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    import boto3
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="ckpt")["Contents"]]
    assert keys and all(k.startswith("runs/toon/") for k in keys)
    assert len(keys) == 4  # best k = 2 trials, weights + build config each
    planned = first.oracle.study_trial_of(best).user_attrs[CHECKPOINT_ATTR]
    assert {f"runs/toon/{i}" for i in planned.values()} <= set(keys)

    # the server goes away mid-run: the next trials' results stay, each upload said once
    caplog.set_level(logging.WARNING, logger="searchers")
    more = _tuner(tmp_path, "a", store, 5, url)
    _search(more, [_StopServer(s3["proc"].pid, s3["port"])])  # type: ignore[attr-defined]
    states = [t.state.name for t in more.study.trials]
    assert states.count("COMPLETE") == 5
    said = [r.getMessage() for r in caplog.records if "could not be uploaded" in r.getMessage()]
    assert len(said) == len({m.split("#")[1].split()[0] for m in said}) <= 2  # once per trial


class _StopServer(keras.callbacks.Callback):
    """Stops the S3 server as the first trial of a search begins (KerasTuner deep-copies
    callbacks: it holds the server's pid and port, not its Popen)."""

    def __init__(self, pid: int, port: int) -> None:
        super().__init__()
        self.pid, self.port = pid, port

    def on_train_begin(self, logs=None) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.1)
            except OSError:
                return


class _Away(keras.callbacks.Callback):
    """Moves the artifact folder away while the second trial trains, back during the fourth."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder, self.away = folder, folder.with_name(folder.name + ".away")

    def on_train_begin(self, logs=None) -> None:
        _Away.count = getattr(_Away, "count", 0) + 1
        if _Away.count == 2:
            self.folder.rename(self.away)
        if _Away.count == 4:
            self.away.rename(self.folder)


def test_a_failed_upload_keeps_the_result_is_said_once_and_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    folder = tmp_path / "shared"
    folder.mkdir()
    store = optuna.artifacts.FileSystemArtifactStore(folder)
    tuner = OptunaSearch(tiny.build, objective="val_loss", max_trials=4, storage=url,
                         study_name="s", pruner=optuna.pruners.NopPruner(),
                         directory=str(tmp_path / "kt"), project_name="p", artifact_store=store,
                         keep_best_checkpoints=None)  # every trial's checkpoint is shared
    caplog.set_level(logging.WARNING, logger="searchers")
    _Away.count = 0
    _search(tuner, [_Away(folder)])
    trials = tuner.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4  # every result stayed
    failed = [r.getMessage() for r in caplog.records if "could not be uploaded" in r.getMessage()]
    # trial #1 ended with the folder away, and #2 too: each said once, not at each retry
    assert sorted(m.split("#")[1].split()[0] for m in failed) == ["1", "2"]
    # back at the fourth trial's end: the queued uploads went through, every file is there
    for t in trials:
        for artifact_id in t.user_attrs[CHECKPOINT_ATTR].values():
            assert (folder / artifact_id).is_file()


def test_bad_artifact_store_is_refused_by_the_library(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot take checkpoints"):
        OptunaSearch(tiny.build, objective="val_loss", max_trials=1, directory=str(tmp_path),
                     project_name="p",
                     artifact_store=optuna.artifacts.FileSystemArtifactStore(tmp_path / "missing"))
    assert not (tmp_path / "p").exists()  # refused before anything is created
    with pytest.raises(ValueError, match="ArtifactStore"):
        OptunaSearch(tiny.build, objective="val_loss", max_trials=1, directory=str(tmp_path),
                     project_name="p", artifact_store="not a store")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.mark.parametrize("spec,words", [
    ("missing-folder", "does not exist"),
    ("a-file", "is a file"),
    ("/proc", "cannot take checkpoints"),            # no writes there, even for root
    ("s3://", "name a bucket"),
])
def test_bad_artifacts_are_one_line_before_anything_is_stored(
        spec: str, words: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "a-file").write_text("x")
    rc = main(["run", "--searcher", "tpe", *QUICK, "--artifacts", spec])
    assert rc == 2 and words in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in workdir.iterdir()) == ["a-file"]  # no store, no runs/


def test_bad_s3_endpoint_credentials_and_bucket_are_one_line(
        s3: dict[str, object], workdir: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rc = main(["run", "--searcher", "tpe", *QUICK, "--artifacts", "s3://no-such-bucket/x"])
    assert rc == 2 and "does not exist" in _one_line(capsys.readouterr().err)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(workdir / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(workdir / "none"))
    rc = main(["run", "--searcher", "tpe", *QUICK, "--artifacts", "s3://ckpt"])
    assert rc == 2 and "no S3 credentials" in _one_line(capsys.readouterr().err)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing there
    rc = main(["run", "--searcher", "tpe", *QUICK, "--artifacts", "s3://ckpt"])
    assert rc == 2 and "cannot reach S3" in _one_line(capsys.readouterr().err)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("searcher", ["tpe", "random"])
def test_bench_run_keeps_the_studys_best_checkpoints_in_the_store(
        searcher: str, workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    shared = workdir / "shared"
    shared.mkdir()
    rc = main(["run", "--searcher", searcher, *QUICK, "--budget-epochs", "10",
               "--storage", storage_url, "--artifacts", str(shared)])
    assert rc == 0, capsys.readouterr().err
    study = optuna.load_study(study_name=f"toon-{searcher}-s0", storage=storage_url)
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"),
                      key=lambda t: (t.value, t.number))
    k = 3
    attrs = seam.storage_of(study).get_study_system_attrs(seam.study_id(study))
    linked = {int(key.split(":")[2]) for key, v in attrs.items()
              if key.startswith("dashboard:artifacts:") and json.loads(v) is not None}
    assert linked == {seam.storage_trial_id(t) for t in complete[:k]}
    for t in complete[:k]:
        for artifact_id in t.user_attrs[CHECKPOINT_ATTR].values():
            assert (shared / artifact_id).is_file()
    assert len(os.listdir(shared)) == 2 * min(k, len(complete))
