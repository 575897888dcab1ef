"""User errors on the command line: exit code 2 (1 for an unreachable server), one line
on stderr starting ``error:``, no traceback, nothing trained and nothing overwritten.

Everything runs in-process through ``bench.cli.main``; ``TrackingMixin.search`` is
replaced by a trap so that an error detected too late (after training started) fails
the test instead of training a model.
"""
from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from bench.cli import main
from bench.core import schema
from bench.run.runner import RunConfig, bench_attrs

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = "toon-random-s0"  # what `run --searcher random` (seed 0, toon) names its study


class TrainedError(AssertionError):
    """Raised by the trap: the command reached the search loop."""


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.run.tracking

    def trap(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TrainedError("the command started a search; the error should have come first")

    monkeypatch.setattr(bench.run.tracking.TrackingMixin, "search", trap)


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def _run(searcher: str = "random", *extra: str, storage: str | None = None) -> list[str]:
    argv = ["run", "--searcher", searcher, "--preset", "quick", "--budget-epochs", "4"]
    if storage is not None:
        argv += ["--storage", storage]
    return argv + list(extra)


def _studies(url: str) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(url)]


# --------------------------------------------------------------------------- names
def test_unknown_searcher(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(_run("nope"), capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert "'nope'" in line and "random" in line and "tpe" in line  # says what exists
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("flag,kind", [("--sampler", "sampler"), ("--pruner", "pruner")])
def test_unknown_sampler_or_pruner(flag: str, kind: str, workdir: Path, storage_url: str,
                                   capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(_run("optuna", flag, "nope", storage=storage_url), capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert f"unknown {kind} 'nope'" in line
    assert _studies(storage_url) == []  # no study made for a run that cannot start
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("searcher", ["random", "hyperband", "bayesian"])
@pytest.mark.parametrize("flag,value", [("--sampler", "tpe"), ("--pruner", "median")])
def test_sampler_or_pruner_for_a_kerastuner_searcher(searcher: str, flag: str, value: str,
                                                     workdir: Path, storage_url: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(_run(searcher, flag, value, storage=storage_url), capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert searcher in line and "Optuna" in line
    assert not Path(storage_url.split(":///", 1)[1]).exists()  # refused before the store


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("flag,value", [
    ("--budget-epochs", "0"), ("--budget-epochs", "-5"), ("--epochs-per-trial", "0"),
    ("--epochs-per-trial", "-2"), ("--max-trials", "0"), ("--max-trials", "-1"),
    ("--timeout", "0"), ("--timeout", "-1"), ("--batch-size", "0"), ("--batch-size", "-8"),
])
def test_non_positive_numbers(flag: str, value: str, workdir: Path, storage_url: str,
                              capsys: pytest.CaptureFixture) -> None:
    argv = ["run", "--searcher", "random", "--preset", "quick", "--storage", storage_url,
            flag, value]
    rc, out, err = _cli(argv, capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert flag in line and value in line
    assert not Path(storage_url.split(":///", 1)[1]).exists()


# --------------------------------------------------------------------------- data
def test_missing_data_folder(workdir: Path, storage_url: str,
                             capsys: pytest.CaptureFixture) -> None:
    missing = workdir / "nonexistent"
    rc, out, err = _cli(_run("random", "--dataset", str(missing), storage=storage_url), capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert str(missing) in line
    assert _studies(storage_url) == []


def test_nonexistent_absolute_data_path(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(_run("random", "--dataset", "/nonexistent"), capsys)
    assert rc == 2 and "/nonexistent" in _one_error_line(err)


@pytest.mark.parametrize("make", ["file", "empty_dir"])
def test_data_path_not_a_class_folder(make: str, workdir: Path, storage_url: str,
                                      capsys: pytest.CaptureFixture) -> None:
    path = workdir / "data"
    if make == "file":
        path.write_text("not a folder")
    else:
        path.mkdir()
    rc, out, err = _cli(_run("random", "--dataset", str(path), storage=storage_url), capsys)
    line = _one_error_line(err)
    assert rc == 2 and str(path) in line


# --------------------------------------------------------------------------- storage
@pytest.mark.parametrize("url", ["notaurl", "foo://x", "sqlite//studies.db"])
def test_malformed_storage_url(url: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(_run("random", storage=url), capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert url in line
    assert list(workdir.iterdir()) == []  # no file, no runs/ made


def _require_driver(url: str) -> None:
    import sqlalchemy
    try:
        sqlalchemy.engine.make_url(url).get_dialect().import_dbapi()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no driver for {url}: {exc}")


def test_unreachable_server_is_exit_1_and_hides_the_password(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    url = "postgresql://u:s3cret@127.0.0.1:1/x"
    _require_driver(url)
    rc, out, err = _cli(_run("random", storage=url), capsys)
    line = _one_error_line(err)
    assert rc == 1
    assert "127.0.0.1" in line
    assert "s3cret" not in err


def test_unreachable_server_without_password(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    url = "postgresql://u@127.0.0.1:1/x"
    _require_driver(url)
    rc, out, err = _cli(_run("random", storage=url), capsys)
    _one_error_line(err)
    assert rc == 1


def _foreign_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    con.commit()
    con.close()


CORRUPT = {
    "random_bytes": lambda p: p.write_bytes(os.urandom(8192)),
    "text_file": lambda p: p.write_text("name,value\nalpha,1\n"),
    "sqlite_header_then_garbage": lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(8176)),
    "another_programs_sqlite_db": _foreign_sqlite,
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_foreign_or_corrupt_store_file_is_refused_and_untouched(
        kind: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    db = workdir / "studies.db"
    CORRUPT[kind](db)
    before = db.read_bytes()
    with socket.socket() as taken:  # should the store open, the dashboard must not serve
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for argv in (["report"], ["dashboard", "--port", port], _run("random"), _run("tpe")):
            rc, out, err = _cli(argv, capsys)
            assert (rc, db.read_bytes() == before) == (2, True), (kind, argv, rc, out, err)
            line = _one_error_line(err)
            assert "studies.db" in line and "untouched" in line, line
    assert sorted(p.name for p in workdir.iterdir()) == ["studies.db"]


# --------------------------------------------------------------------------- studies
def _run_attrs() -> dict[str, Any]:
    """The bench attr `run --searcher random --preset quick` writes (the runner's own function)."""
    from bench.data.datasets import load_dataset
    cfg = RunConfig(searcher="random", preset="quick").resolved()
    data = load_dataset(cfg.dataset, image_size=cfg.image_size, seed=cfg.data_seed)
    return bench_attrs(cfg, "random", "keras_tuner", data)


def _existing(url: str, attrs: dict[str, Any] | None, direction: str = "minimize") -> dict:
    study = optuna.create_study(storage=url, study_name=STUDY, direction=direction)
    if attrs is not None:
        study.set_user_attr(schema.STUDY_BENCH, attrs)
    dists = {"conv_1_filters": IntDistribution(4, 16, step=4),
             "learning_rate": CategoricalDistribution([1e-2, 1e-3, 1e-4])}
    for i in range(3):
        study.add_trial(create_trial(
            state=TrialState.COMPLETE if i != 1 else TrialState.PRUNED,
            value=1.0 - 0.1 * i if i != 1 else None,
            params={"conv_1_filters": 4 + 4 * i, "learning_rate": 1e-3},
            distributions=dists, intermediate_values={1: 1.2, 2: 1.0 - 0.1 * i},
            user_attrs={schema.T_EPOCHS: 2, schema.T_KT_ID: f"{i:04d}"}))
    return _snapshot(url)


def _snapshot(url: str) -> dict:
    study = optuna.load_study(study_name=STUDY, storage=url)
    return {"attrs": study.user_attrs, "direction": study.direction,
            "trials": [(t.number, t.state, t.values, t.params, t.intermediate_values,
                        t.user_attrs, t.datetime_start, t.datetime_complete)
                       for t in study.get_trials()],
            "studies": _studies(url)}


def _check_refused(url: str, before: dict, capsys: pytest.CaptureFixture, workdir: Path,
                   *words: str, extra: tuple[str, ...] = ()) -> str:
    rc, out, err = _cli(_run("random", *extra, storage=url), capsys)
    line = _one_error_line(err)
    assert rc == 2, err
    assert STUDY in line and all(w in line for w in words), line
    after = _snapshot(url)
    assert after["trials"] == before["trials"], "the refused run changed the study's trials"
    assert after["studies"] == before["studies"] and after["direction"] == before["direction"]
    old, new = (x["attrs"].get(schema.STUDY_BENCH, {}) for x in (before, after))
    changed = {k: (old.get(k), new.get(k)) for k in set(old) | set(new) if old.get(k) != new.get(k)}
    assert not changed, f"the refused run rewrote the study's bench attr: {changed}"
    assert after["attrs"] == before["attrs"]
    assert not (workdir / "runs" / STUDY).exists()
    return line


def test_existing_study_with_another_space(workdir: Path, storage_url: str,
                                           capsys: pytest.CaptureFixture) -> None:
    attrs = _run_attrs()
    space = [dict(p) for p in attrs["space"]]
    space[0]["max_value"] = 32  # conv_1_filters 4..32 instead of 4..16
    before = _existing(storage_url, {**attrs, "space": space, "budget_epochs": 99})
    line = _check_refused(storage_url, before, capsys, workdir, "space")
    assert "different space;" in line, line  # the space, and only the space, differs


def test_existing_study_maximized(workdir: Path, storage_url: str,
                                 capsys: pytest.CaptureFixture) -> None:
    before = _existing(storage_url, _run_attrs(), direction="maximize")
    line = _check_refused(storage_url, before, capsys, workdir, "direction")
    assert "different direction;" in line, line


def test_existing_study_of_another_program(workdir: Path, storage_url: str,
                                          capsys: pytest.CaptureFixture) -> None:
    before = _existing(storage_url, None)
    _check_refused(storage_url, before, capsys, workdir, "not made by this benchmark")


# --------------------------------------------------------------------------- dashboard
def test_dashboard_port_in_use(workdir: Path, storage_url: str,
                               capsys: pytest.CaptureFixture) -> None:
    optuna.create_study(storage=storage_url, study_name="existing")  # a store that exists
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, out, err = _cli(["dashboard", "--storage", storage_url, "--port", str(port)], capsys)
    line = _one_error_line(err)
    assert rc == 2
    assert "already in use" in line and str(port) in line
    assert out == ""


def test_kerastuner_study_without_its_project(workdir: Path, storage_url: str,
                                              capsys: pytest.CaptureFixture) -> None:
    """Same search, trials in the store, but runs/<study>/kt is gone: cannot resume (an
    unfinished run: 6 of 20 epochs; a finished one is done without it, see
    test_reliability.py::test_finished_keras_tuner_run_without_its_project_is_done_not_an_error)."""
    before = _existing(storage_url, _run_attrs())
    line = _check_refused(storage_url, before, capsys, workdir, "KerasTuner", "resume",
                          extra=("--budget-epochs", "20"))
    assert "3 trials" in line, line
