"""The study store goes away under a running search: a PostgreSQL of the test's own is
stopped mid-trial (and started again), a SQLite file is deleted.

A restart of a few seconds is ridden out (the run ends as if nothing happened, every epoch
counted once); a longer outage ends the run with one ``error:`` line and exit code 1, and
the same command, once the store is back, finishes the run with the epochs trained during
the outage counted; a deleted SQLite file ends the run at once, and no empty database is
made in its place.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.core import schema, store
from searchers.resilient_storage import RetryingRDBStorage, StoreUnavailable, is_outage
from tests.private_postgres import PrivatePostgres

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    pg = PrivatePostgres()
    try:
        yield pg
    finally:
        pg.close()


def _run_argv(searcher: str, url: str, study: str, budget: int) -> list[str]:
    return ["run", "--searcher", searcher, "--preset", "quick", "--image-size", "96x32",
            "--epochs-per-trial", "10", "--patience", "0", "--budget-epochs", str(budget),
            "--storage", url, "--study", study]


def _spawn(argv: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _training(url: str, study: str, number: int, timeout: float = 240) -> None:
    """Wait until trial ``number`` is RUNNING with 1-3 epochs reported."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
        except KeyError:
            continue
        if any(t.number == number and t.state == TrialState.RUNNING
               and 1 <= len(t.intermediate_values) <= 3 for t in trials):
            return
    pytest.fail(f"trial #{number} never trained")


def _exact(url: str, study: str, budget: int) -> list[optuna.trial.FrozenTrial]:
    s = optuna.load_study(study_name=study, storage=url)
    trained = sum(int(t.user_attrs[schema.T_EPOCHS]) for t in s.trials)
    assert trained == store.epochs_used(s) == budget  # every trained epoch, once
    assert not s.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    return s.trials


@pytest.mark.parametrize("searcher", ["tpe", "random"])
def test_a_database_restart_of_seconds_does_not_end_the_run(server: PrivatePostgres,
                                                             searcher: str, tmp_path: Path) -> None:
    study = f"outage-{searcher}"
    proc = _spawn(_run_argv(searcher, server.url, study, 20), tmp_path)
    _training(server.url, study, 1)
    server.stop()
    time.sleep(3)
    server.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "error:" not in err, err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: the study store")]
    assert len(notes) >= 2 and "unreachable" in notes[0] and "is back" in notes[-1], err
    trials = _exact(server.url, study, 20)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]


@pytest.mark.parametrize("searcher", ["tpe", "random"])
def test_a_long_outage_ends_the_run_in_one_line_and_the_resume_counts_every_epoch(
        server: PrivatePostgres, searcher: str, tmp_path: Path) -> None:
    study = f"gone-{searcher}"
    argv = _run_argv(searcher, server.url, study, 30)
    proc = _spawn(argv, tmp_path, BENCH_STORE_OUTAGE_SECONDS="3")
    _training(server.url, study, 1)
    server.stop()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and "resume" in errors[0], err
    assert not [ln for ln in err.splitlines()
                if ln.strip() and not ln.startswith(("error:", "note: the study store"))], err

    server.start()
    again = _spawn(argv, tmp_path)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    trials = _exact(server.url, study, 30)
    cut = trials[1]
    assert cut.state == TrialState.FAIL and cut.user_attrs[schema.T_INTERRUPTED]
    # the epoch it trained while the store was away is counted, though never reported
    assert int(cut.user_attrs[schema.T_EPOCHS]) > len(cut.intermediate_values)
    assert not (tmp_path / "runs" / study / "unstored_epochs.json").exists()


def test_a_deleted_sqlite_file_ends_the_run_and_is_not_made_anew(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    proc = _spawn(_run_argv("tpe", url, "s", 30), tmp_path)
    _training(url, "s", 0)
    db.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "was removed" in errors[0], err
    assert not db.exists()  # no empty study store made in its place


def test_only_connection_failures_are_waited_out(tmp_path: Path) -> None:
    """An error of the statement (a duplicate study) passes at once; a refused connection
    is retried for the outage window, then is StoreUnavailable naming the store."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    storage = RetryingRDBStorage(url, outage_seconds=0)
    storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "a")
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "a")
    import sqlalchemy.exc
    refused = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    assert is_outage(refused)
    assert not is_outage(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError("dup")))

    dead = RetryingRDBStorage.__new__(RetryingRDBStorage)  # a store whose server is down
    pg = PrivatePostgres()
    try:
        dead.__init__(pg.url, outage_seconds=1.5, shown_as="the private server")
        dead.create_new_study([optuna.study.StudyDirection.MINIMIZE], "b")
        pg.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="the private server has been unreachable"):
            dead.get_all_studies()
        assert 1.5 <= time.monotonic() - started < 10
        with pytest.raises(StoreUnavailable):  # the clock is not started again
            dead.get_study_id_from_name("b")
        pg.start()
        assert dead.get_study_id_from_name("b") >= 0  # back: the next call goes through
    finally:
        pg.close()


def test_optunasearch_given_a_url_rides_out_an_outage(tmp_path: Path) -> None:
    """The library path: ``OptunaSearch(storage=URL)`` stores through the retrying storage,
    and its study outlives a stop and start of its server between two searches."""
    from searchers import OptunaSearch
    from searchers.resilient_storage import RetryingRDBStorage as Retrying
    from searchers.seam import storage_of
    from tests import tiny
    pg = PrivatePostgres()
    try:
        x, y, xv, yv = tiny.data(0)
        tuner = OptunaSearch(tiny.build, objective="val_loss", max_trials=2, storage=pg.url, study_name="lib",
                             directory=str(tmp_path), project_name="p")
        cached = storage_of(tuner.oracle.study)  # Optuna's cache around it
        assert isinstance(getattr(cached, "_backend", cached), Retrying)
        tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
        pg.stop()
        pg.start()  # every pooled connection died with the server
        assert len(tuner.get_best_hyperparameters(2)) == 2  # through the same pool
        again = OptunaSearch(tiny.build, objective="val_loss", max_trials=3, storage=pg.url, study_name="lib",
                             directory=str(tmp_path), project_name="p")
        again.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
        done = optuna.load_study(study_name="lib", storage=pg.url).get_trials(
            states=(TrialState.COMPLETE,))
        assert len(done) == 3
    finally:
        pg.close()
