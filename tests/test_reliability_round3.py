"""Reliability, round 3: faults and inputs that lost data or gave silently wrong results
(each test failed before its fix)."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from bench.cli import main
from bench.core import schema, store
from bench.replay import simulation as replay
from searchers import seam
from tests.test_replay import _record_store


def test_an_interrupted_replace_keeps_every_run_it_did_not_replace(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _record_store(url)
    args = ["replay", "--searchers", "random,tpe", "--seeds", "2", "--preset", "quick",
            "--jobs", "1", "--storage", url]
    assert main(args) == 0
    before = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(store.open_storage(url))
              if s.study_name.startswith("toon-replay-quick-")}
    assert len(before) == 4
    real_store = replay._store_run
    calls = []

    def store_then_stop(*a, **kw):  # SIGTERM right after the first replacement is stored
        real_store(*a, **kw)
        calls.append(a[1])
        raise KeyboardInterrupt

    monkeypatch.setattr(replay, "_store_run", store_then_stop)
    with pytest.raises(KeyboardInterrupt):
        replay.run_replay(replay_args(args + ["--replace"]))
    after = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(store.open_storage(url))
             if s.study_name.startswith("toon-replay-quick-")}
    assert set(after) == set(before)                      # no study lost
    assert all(after[n] == before[n] for n in before if n not in calls)
    summary = optuna.load_study(study_name="toon-replay-quick", storage=url)
    rows = [k for k in summary.user_attrs if k.startswith(schema.REPLAY_RUN_PREFIX)]
    assert len(rows) == 4                                  # every row still has its study


def replay_args(argv: list[str]):
    from bench.cli import parse_args
    return replay.ReplaySettings.from_args(parse_args(argv))


def test_a_study_of_another_objective_or_direction_is_refused(tmp_path: Path) -> None:
    from searchers import OptunaSearch
    from searchers.errors import ConfigError
    from tests import tiny
    x, y, xv, yv = tiny.data(0)
    first = OptunaSearch(tiny.build, objective="val_accuracy", max_trials=2,
                         directory=str(tmp_path), project_name="p")
    first.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    with pytest.raises(ConfigError, match="is to maximize val_accuracy; this search is to minimize val_loss"):
        OptunaSearch(tiny.build, objective="val_loss", max_trials=5, directory=str(tmp_path),
                     project_name="p", overwrite=False)
    with pytest.raises(ConfigError, match="this search is to minimize val_loss"):
        OptunaSearch(tiny.build, objective="val_loss", max_trials=1, directory=str(tmp_path),
                     project_name="q", study=optuna.create_study(direction="maximize"))
    # same direction, another metric, on a study this project named: refused too
    OptunaSearch(tiny.build, objective="val_loss", max_trials=1, directory=str(tmp_path),
                 project_name="m")
    with pytest.raises(ConfigError, match="is to minimize val_loss; this search is to minimize loss"):
        OptunaSearch(tiny.build, objective="loss", max_trials=1, directory=str(tmp_path),
                     project_name="m")


def _kt_main(root: Path, seed: int) -> Path:
    import keras_tuner as kt

    from tests import tiny
    tuner = kt.RandomSearch(tiny.build, objective="val_loss", max_trials=3, seed=seed,
                            directory=str(root), project_name="main")
    x, y, xv, yv = tiny.data(0)
    tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    return root / "main"


def test_import_kt_tells_two_projects_named_main_apart(tmp_path: Path) -> None:
    from bench.core.errors import UserError
    from bench.run.import_kt import import_project
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = _kt_main(tmp_path / "tpe-run", 11), _kt_main(tmp_path / "random-run", 12)
    assert import_project(a, storage=url).added == 3
    with pytest.raises(UserError, match="another KerasTuner project named 'main'"):
        import_project(b, storage=url)
    study = optuna.load_study(study_name="kt-main", storage=url)
    assert len(study.trials) == 3                            # nothing of b mixed in
    again = import_project(a, storage=url)                   # the same project: idempotent
    assert (again.added, again.already_present) == (0, 3)
    assert import_project(b, storage=url, study_name="kt-random").added == 3


SECRET = "S3cretPW"


@pytest.fixture
def pg_with_password() -> str:
    """A fresh PostgreSQL database, reached with a password in the URL (the local server
    trusts 127.0.0.1, so any password connects: what matters is where it shows up)."""
    import uuid

    import psycopg

    from tests.conftest import require_server
    from tests.test_reliability import PG_URL
    require_server("PostgreSQL", PG_URL)
    name = f"secret_{uuid.uuid4().hex[:8]}"
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres:{SECRET}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_password_in_the_storage_url_is_never_printed_or_stored(
        pg_with_password: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    url = pg_with_password
    quick = ["--preset", "quick", "--budget-epochs", "2", "--trials-per-process", "0",
             "--storage", url, "--logdir", str(workdir / "runs")]
    commands = [
        ["run", "--searcher", "random", *quick],
        ["compare", "--searchers", "tpe", "--seeds", "1", "--no-retrain", *quick],
        ["import-kt", str(_kt_main(workdir / "kt", 5)), "--storage", url],
    ]
    output = []
    for argv in commands:
        assert main(argv) == 0, capsys.readouterr().err
        output.append(capsys.readouterr())
    _record_store(url)
    assert main(["replay", "--searchers", "random", "--seeds", "1", "--preset", "quick",
                 "--jobs", "1", "--storage", url]) == 0
    output.append(capsys.readouterr())
    assert main(["report", "--storage", url, "--out", str(workdir / "R.md"),
                 "--plots-dir", str(workdir / "plots")]) == 0
    output.append(capsys.readouterr())
    printed = "\n".join(o.out + o.err for o in output)
    assert "postgres:***@127.0.0.1" in printed
    assert SECRET not in printed
    for path in workdir.rglob("*"):   # RESULTS, logs, TensorBoard events, KerasTuner files
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    import json
    rdb = store.open_storage(url)
    for study in rdb.get_all_studies():
        attrs = json.dumps([study.user_attrs, study.system_attrs], default=str)
        assert SECRET not in attrs, study.study_name
        for t in rdb.get_all_trials(seam.study_id(study), deepcopy=False):
            assert SECRET not in json.dumps([t.user_attrs, t.system_attrs], default=str)


def test_a_weak_surrogate_is_said_at_replay_and_in_the_report(capsys: pytest.CaptureFixture) -> None:
    from bench.report import results as report
    replay._say_if_weak({"spearman_best": -0.115})
    (line,) = capsys.readouterr().out.splitlines()
    assert "held-out Spearman -0.12 is below 0.8" in line and "weak evidence" in line
    replay._say_if_weak({"spearman_best": 0.85})
    assert capsys.readouterr().out == ""
    md = "\n".join(report.render_surrogate({"spearman_best": -0.115, "model": "knn"}))
    assert "**Weak surrogate:**" in md and "-0.12" in md
    assert "Weak surrogate" not in "\n".join(report.render_surrogate({"spearman_best": 0.9}))


@pytest.mark.parametrize("kwargs,words", [
    ({"storage": "postgres://u:pw@127.0.0.1/db"}, "'postgresql://' (not 'postgres://')"),
    ({"storage": "nosuchdb://h/x"}, "unknown database kind"),
    ({"storage": "not a url"}, "is not a database URL"),
    ({"storage": "sqlite:///{tmp}/missing/x.db"}, "does not exist"),
    ({"directory": "{tmp}/a-file"}, "is a file, not a folder"),
    ({"max_trials": 0}, "max_trials must be a whole number >= 1"),
    ({"max_trials": -1}, "max_trials must be a whole number >= 1"),
    ({"max_trials": 2.5}, "max_trials must be a whole number >= 1"),
])
def test_library_arguments_are_a_value_error_before_anything_is_made(
        kwargs: dict, words: str, tmp_path: Path) -> None:
    from searchers import OptunaSearch
    from tests import tiny
    (tmp_path / "a-file").write_text("x")
    kwargs = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in kwargs.items()}
    kwargs.setdefault("directory", str(tmp_path / "kt"))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        OptunaSearch(tiny.build, objective="val_loss", project_name="p", **kwargs)
    assert "pw" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


COMMITTED = f"sqlite:///{Path(__file__).resolve().parents[1] / 'results' / 'studies.db'}"


def test_report_output_mistakes_are_one_line_and_nothing_is_half_written(
        workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from bench.report import render
    (workdir / "folder").mkdir()
    (workdir / "a-file").write_text("x")
    for args, words in ((["--out", "folder"], "is a folder"),
                        (["--plots-dir", "a-file"], "is a file, not a folder"),
                        (["--out", "a-file/R.md"], "is a file, not a folder"),
                        (["--out", "/proc/R.md"], "cannot write in /proc")):
        rc = main(["report", "--storage", COMMITTED, *args])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and words in lines[0], err
    assert sorted(p.name for p in workdir.iterdir()) == ["a-file", "folder"]  # no plots, no file

    (workdir / "R.md").write_text("the old report\n")
    real = render.write_whole
    calls = []

    def disk_full_at_the_third(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(render, "write_whole", disk_full_at_the_third)
    rc = main(["report", "--storage", COMMITTED, "--out", "R.md", "--plots-dir", "plots"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "No space left on device" in err
    assert (workdir / "R.md").read_text() == "the old report\n"     # the report is not half-written
    assert not [p for p in workdir.rglob(".*tmp-*")]                 # no temporary file left


def test_one_sqlite_file_is_one_lock_whatever_its_url(tmp_path: Path) -> None:
    from bench.core import runlock
    from bench.core.errors import UserError
    (tmp_path / "lk").mkdir()
    x = tmp_path / "lk" / "x.db"
    x.touch()
    (tmp_path / "lk" / "y.db").symlink_to(x)
    held = runlock.acquire(f"sqlite:///{x}", "shared")
    try:
        for other in (tmp_path / "lk" / "y.db", f"{x}?timeout=60", tmp_path / "lk" / "%78.db"):
            with pytest.raises(UserError, match="being run by another process"):
                runlock.acquire(f"sqlite:///{other}", "shared")
        runlock.acquire(f"sqlite:///{x}", "another-study").release()
    finally:
        held.release()


def test_mariadb_locks_a_study_of_one_database_not_its_namesakes() -> None:
    import uuid

    import pymysql

    from bench.core import runlock
    from bench.core.errors import UserError
    from tests.conftest import require_server
    from tests.test_reliability import MYSQL_URL
    require_server("MariaDB", MYSQL_URL)
    other = f"lock_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE {other}")
    try:
        name = f"lock-{uuid.uuid4().hex[:8]}"
        held = runlock.acquire(MYSQL_URL, name)
        try:
            runlock.acquire(MYSQL_URL.rsplit("/", 1)[0] + f"/{other}", name).release()  # free
            with pytest.raises(UserError, match="another process"):
                runlock.acquire(MYSQL_URL, name)
        finally:
            held.release()
    finally:
        conn.cursor().execute(f"DROP DATABASE {other}")
        conn.close()


def test_a_new_store_does_not_resume_another_stores_project(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    quick = ["run", "--searcher", "random", "--preset", "quick", "--budget-epochs", "4",
             "--trials-per-process", "0", "--logdir", "L"]
    assert main([*quick, "--storage", f"sqlite:///{workdir / 'a.db'}"]) == 0
    capsys.readouterr()
    rc = main([*quick, "--storage", f"sqlite:///{workdir / 'b.db'}"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "belong to study 'toon-random-s0' in sqlite:" in lines[0]
    assert optuna.get_all_study_names(f"sqlite:///{workdir / 'b.db'}") == []  # no study made
    a = optuna.load_study(study_name="toon-random-s0", storage=f"sqlite:///{workdir / 'a.db'}")
    assert len(a.trials) == 2                                    # A untouched
    # the same store under another URL is the same store: it resumes
    (workdir / "a-link.db").symlink_to(workdir / "a.db")
    assert main([*quick[:-2], "--logdir", "L", "--budget-epochs", "6",
                 "--storage", f"sqlite:///{workdir / 'a-link.db'}"]) == 0
    assert len(optuna.load_study(study_name="toon-random-s0",
                                 storage=f"sqlite:///{workdir / 'a.db'}").trials) == 3


REQUIRED = {"record": ["--configs", "10"], "scaling": ["--storage", "postgresql://u@127.0.0.1:1/x"],
            "import-kt": ["no-such-project"]}
# flags whose 0 means something (documented): none of them takes a negative, nan or inf
ZERO_OK = {"--seed", "--data-seed", "--patience", "--trials-per-process", "--port", "record --repeats"}


def _numeric_options() -> list[tuple[str, str]]:
    """(command, flag) for every numeric option of every command."""
    import argparse

    from bench.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command, p in sub.choices.items():
        for action in p._actions:
            kind = getattr(action.type, "__name__", "")
            if action.option_strings and (action.type in (int, float) or kind in (
                    "parse", "_positive_seconds")):
                found.append((command, action.option_strings[-1]))
    return found


@pytest.mark.timeout(300)
def test_every_parser_refuses_values_that_make_no_sense(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """Negative, NaN and infinite values (and 0 where 0 means nothing) of every numeric flag
    of every command: one error line naming the flag, exit 2, nothing made."""
    options = _numeric_options()
    assert len(options) > 25  # the walk covers the CLI, not a few flags
    for command, flag in options:
        zero_ok = flag in ZERO_OK or f"{command} {flag}" in ZERO_OK
        bad = ["-5", "nan", "inf"] + ([] if zero_ok else ["0"])
        for value in bad:
            rc = main([command, *REQUIRED.get(command, []), f"{flag}={value}"])
            err = capsys.readouterr().err
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), (command, flag, value, err)
            assert flag in lines[0] or flag.lstrip("-") in lines[0], (command, flag, value, lines[0])
    assert list(workdir.iterdir()) == []


def test_duplicate_and_odd_values_are_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, words in (
            (["compare", "--searchers", "tpe,tpe", "--preset", "quick"], "names tpe twice"),
            (["run", "--searcher", "tpe", "--storage", "sqlite:///c?d.db"], "'?' starts the URL's query"),
            (["import-kt", "x", "--study", "y" * 600], "study name"),
            (["replay", "--budget-epochs", "0"], "--budget-epochs"),
            (["record", "--configs", "9"], "--configs must be >= 10")):
        rc = main(argv)
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and words in lines[0], (argv, lines)
    assert list(workdir.iterdir()) == []


def _images(folder: Path, n: int = 3, shade: int = 0) -> None:
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), (shade + 9 * i) % 256, np.uint8)).save(folder / f"{i}.png")


def test_symlinked_class_folders_loops_and_odd_names(tmp_path: Path, monkeypatch) -> None:
    import os

    import bench.data.datasets as data
    from bench.core.errors import UserError
    monkeypatch.setattr(data, "SPLIT_CACHE", tmp_path / "cache")
    root = tmp_path / "pics"
    _images(root / "a")
    _images(root / "b", shade=100)
    (root / "zloop").symlink_to(root)                     # a loop: the root itself
    with pytest.raises(UserError, match="a loop"):
        data.load_dataset(str(root), seed=0, split_dir=tmp_path / "splits")
    (root / "zloop").unlink()
    (root / "again").symlink_to(root / "a")               # inside the root: counted twice
    with pytest.raises(UserError, match="inside the data folder"):
        data.load_dataset(str(root), seed=0, split_dir=tmp_path / "splits")
    (root / "again").unlink()
    _images(tmp_path / "elsewhere", shade=200)
    (root / "c").symlink_to(tmp_path / "elsewhere")       # outside: followed, once
    (root / "d").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="both link to"):
        data.load_dataset(str(root), seed=0, split_dir=tmp_path / "splits")
    (root / "d").unlink()
    ds = data.load_dataset(str(root), seed=0, split_dir=tmp_path / "splits")
    assert ds.class_names == ("a", "b", "c") and len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 9
    odd = os.fsdecode(b"bad\xff")                          # a name that is not UTF-8
    _images(root / odd, shade=50)
    with pytest.raises(UserError, match="not valid UTF-8"):
        data.load_dataset(str(root), seed=0, split_dir=tmp_path / "odd-splits")
    assert not (tmp_path / "odd-splits").exists()         # nothing left behind


def test_a_nan_loss_fails_with_its_reason_and_is_never_best(tmp_path: Path) -> None:
    import keras
    import numpy as np

    from searchers import OptunaSearch

    def build(hp):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(hp.Choice("lr", [1e30, 1e-3])), loss="mse")
        return model

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="p")
    study.enqueue_trial({"lr": 1e30})    # diverges: NaN loss
    study.enqueue_trial({"lr": 1e-3})    # trains
    x = np.ones((8, 2), "float32")
    tuner = OptunaSearch(build, objective="val_loss", max_trials=2, storage=url, study_name="p",
                         directory=str(tmp_path), project_name="p", pruner=optuna.pruners.NopPruner())
    tuner.search(x * 1e10, x[:, :1], epochs=2, validation_data=(x, x[:, :1]), verbose=0,
                 callbacks=[keras.callbacks.TerminateOnNaN()])
    diverged, trained = tuner.study.trials[:2]   # a failed trial's ticket is reissued: more follow
    assert diverged.state.name == "FAIL" and trained.state.name == "COMPLETE"
    assert all("not a finite number" in t.user_attrs["error"] for t in tuner.study.trials
               if t.state.name == "FAIL")
    assert tuner.get_best_hyperparameters(1)[0].values["lr"] == 1e-3   # not the NaN trial
    tuner.get_best_models(1)


def test_two_launches_of_one_study_never_share_a_worker() -> None:
    """Two ``--workers`` launches (one machine or two): their workers' names, hence their
    KerasTuner project folders (``kt/worker-<name>``), and their sampler seeds differ."""
    from bench.run.runner import RunConfig, derived_seed, worker_offset
    from bench.run.workers import _worker_argv, launch_tag
    a, b = launch_tag(), launch_tag()
    assert a != b
    cfg = RunConfig(searcher="tpe", seed=0)
    names = [_worker_argv(cfg, i, tag)[-1] for tag in (a, b) for i in (1, 2)]
    assert len(set(names)) == 4 and all(n.startswith(("w1.", "w2.")) for n in names)
    seeds = {derived_seed(0, worker_offset(n)) for n in names}
    assert len(seeds) == 4
    assert worker_offset("w2") == 2 * 7919 and worker_offset(None) == 0  # as before for plain names


class _FailedElsewhere:
    """Fails the running trial in the store at its first epoch, as another worker does
    with a trial whose heartbeat went stale (this process tops its tickets up itself)."""

    url = ""
    done = False


def test_a_trial_ended_by_another_process_is_dropped_quietly(tmp_path: Path, caplog) -> None:
    import keras

    from searchers import OptunaSearch
    from tests import tiny

    class FailIt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if _FailedElsewhere.done:
                return
            _FailedElsewhere.done = True
            study = optuna.load_study(study_name="s", storage=_FailedElsewhere.url)
            (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            seam.storage_of(study).set_trial_state_values(seam.storage_trial_id(running),
                                                          optuna.trial.TrialState.FAIL)

    _FailedElsewhere.url, _FailedElsewhere.done = f"sqlite:///{tmp_path / 's.db'}", False
    caplog.set_level("INFO", logger="searchers")
    tuner = OptunaSearch(tiny.build, objective="val_loss", max_trials=2, storage=_FailedElsewhere.url,
                         study_name="s", directory=str(tmp_path), project_name="p",
                         pruner=optuna.pruners.NopPruner())
    x, y, xv, yv = tiny.data(0)
    tuner.search(x, y, epochs=2, validation_data=(xv, yv), verbose=0, callbacks=[FailIt()])  # no raise
    states = [t.state.name for t in tuner.study.trials]
    assert states[0] == "FAIL" and states.count("COMPLETE") == 2   # its place went to another
    assert [r.getMessage() for r in caplog.records if "ended by another process" in r.getMessage()]
    assert tuner.oracle.study_trial_of(tuner.oracle.get_best_trials(1)[0]).state.name == "COMPLETE"


def _open_project(directory: str, barrier, results) -> None:
    """In a process of its own: open a new OptunaSearch project the moment the other does."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from searchers import OptunaSearch
    from tests import tiny
    barrier.wait()
    try:
        OptunaSearch(tiny.build, objective="val_loss", max_trials=1, directory=directory,
                     project_name="p")
        results.put("ok")
    except Exception as exc:  # noqa: BLE001  # what the test reports
        results.put(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")


def test_two_processes_creating_one_new_project_at_once(tmp_path: Path) -> None:
    """Both open it (before: one died on the SQLite schema race, alembic_version's UNIQUE
    constraint or "table studies already exists", every time)."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open_project, args=(str(tmp_path / str(round_)), barrier, results))
                 for _ in range(2)]
        for p in procs:
            p.start()
        got = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        assert got == ["ok", "ok"], got


def test_an_unfinished_run_is_marked_in_the_verdict() -> None:
    from bench.report.results import SearcherStats, render_verdict
    done = SearcherStats("random", "keras_tuner", [0, 1], [0.5, 0.6], [], [12, 12], [12, 12], [], [])
    half = SearcherStats("tpe", "optuna", [0, 1], [0.4, 0.7], [], [12, 12], [12, 7], [], [])
    text = "\n".join(render_verdict([done, half]))
    assert "tpe 0.5500 (1 of 2 runs unfinished, e.g. 7 of 12 epochs)" in text
    assert "random 0.5500," in text or "random 0.5500." in text


def test_no_ticket_is_left_waiting(tmp_path: Path) -> None:
    """A search whose trials all diverge (FAIL, so their tickets are reissued) leaves no
    WAITING ticket when it stops, and a study resumed with a lower max_trials withdraws the
    tickets beyond it, saying why."""
    import keras
    import numpy as np

    from searchers import OptunaSearch
    from searchers.tickets import TICKET_WITHDRAWN, top_up_tickets

    def diverging(hp):
        hp.Int("units", 1, 4)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
        return model

    x = np.ones((8, 2), "float32") * 1e10
    tuner = OptunaSearch(diverging, objective="val_loss", max_trials=4, directory=str(tmp_path),
                         project_name="nan", pruner=optuna.pruners.NopPruner())
    tuner.search(x, x[:, :1], epochs=1, validation_data=(x, x[:, :1]), verbose=0,
                 callbacks=[keras.callbacks.TerminateOnNaN()])
    assert [t.state.name for t in tuner.study.trials] == ["FAIL"] * 4   # none left WAITING

    from tests import tiny
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = optuna.create_study(storage=url, study_name="old")
    top_up_tickets(old, 6)                       # tickets an earlier, longer search issued
    lowered = OptunaSearch(tiny.build, objective="val_loss", max_trials=2, storage=url,
                           study_name="old", directory=str(tmp_path), project_name="old")
    xs, ys, xv, yv = tiny.data(0)
    lowered.search(xs, ys, epochs=1, validation_data=(xv, yv), verbose=0)
    trials = lowered.study.trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2
    assert not [t for t in trials if t.state.name == "WAITING"]
    withdrawn = [t for t in trials if t.state.name == "FAIL"]
    assert len(withdrawn) == 4 and all(t.user_attrs["error"] == TICKET_WITHDRAWN for t in withdrawn)
