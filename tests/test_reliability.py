"""Probes of a real user breaking a run (issue: 17 ways), each ending in one clear line
with nothing stored lost. The run lock, study names, seeds, --logdir, a full disk,
interrupted trials of every kind of searcher, Ctrl-C while TensorFlow loads.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.core import kt_project, runlock, schema, store
from bench.core.errors import INTERRUPTED, UserError
from bench.run.runner import MAX_SEED, derived_seed, run_search
from tests.conftest import require_server

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("BENCH_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str, prefix: str = "error:") -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert "Traceback" not in err
    return lines[0]


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 120.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _running_with_epochs(url: str, name: str, epochs: int):
    def check():
        try:
            study = optuna.load_study(study_name=name, storage=url)
        except KeyError:
            return None
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if len(t.intermediate_values) >= epochs]
    return check


QUICK = ["--preset", "quick"]


# ----------------------------------------------------------------- 1: one run per study
def test_second_run_of_the_same_study_is_refused_while_the_first_runs(
        workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    first = _spawn(["run", "--searcher", "random", *QUICK, "--epochs-per-trial", "30",
                    "--budget-epochs", "60", "--storage", storage_url], workdir)
    try:
        _wait_for(_running_with_epochs(storage_url, "toon-random-s0", 1), what="first run")
        rc, out, err = _cli(["run", "--searcher", "random", *QUICK, "--budget-epochs", "60",
                             "--storage", storage_url], capsys)
        line = _one_line(err)
        assert rc == 2 and "toon-random-s0" in line and "another process" in line, line
        assert f"pid {first.pid}" in line
    finally:
        trial_process = psutil.Process(first.pid).children()
        first.kill()  # SIGKILL: the lock must not outlive its processes
        first.wait(30)
        psutil.wait_procs(trial_process, timeout=60)  # told to stop when its launcher died
    lock = runlock.acquire(storage_url, "toon-random-s0")
    lock.release()


@pytest.mark.parametrize("url,kind", [(PG_URL, "PostgreSQL"), (MYSQL_URL, "MariaDB")])
def test_server_locks_are_exclusive_per_study(url: str, kind: str) -> None:
    require_server(kind, url)
    name = f"lock-{uuid.uuid4().hex[:8]}"
    held = runlock.acquire(url, name)
    try:
        with pytest.raises(UserError, match="another process"):
            runlock.acquire(url, name)
        runlock.acquire(url, name + "-other").release()  # other studies are free
    finally:
        held.release()
    runlock.acquire(url, name).release()  # released: free again


def test_postgres_workers_launches_share_and_exclude_single_runs() -> None:
    require_server("PostgreSQL", PG_URL)
    name = f"lock-{uuid.uuid4().hex[:8]}"
    a, b = runlock.acquire(PG_URL, name, shared=True), runlock.acquire(PG_URL, name, shared=True)
    try:
        with pytest.raises(UserError):
            runlock.acquire(PG_URL, name)
    finally:
        a.release()
        b.release()


# ----------------------------------------------------------------- 2: study names
@pytest.mark.parametrize("name", ["../escaped", "/abs/path", "a/b", ".hidden", "x" * 300, ""])
def test_unusable_study_names_are_refused_before_anything_is_made(
        name: str, workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(["run", "--searcher", "tpe", *QUICK, "--storage", storage_url,
                         "--study", name], capsys)
    line = _one_line(err)
    assert rc == 2 and "study name" in line
    assert list(workdir.iterdir()) == []  # no store, no runs/, nothing outside either
    assert not (workdir.parent / "escaped").exists()


def test_long_study_name_on_postgres_leaves_no_study(capsys: pytest.CaptureFixture,
                                                    workdir: Path) -> None:
    require_server("PostgreSQL", PG_URL)
    name = "p" * 600
    rc, out, err = _cli(["run", "--searcher", "tpe", *QUICK, "--storage", PG_URL,
                         "--study", name], capsys)
    assert rc == 2 and "study name" in _one_line(err)
    assert name not in {s.study_name for s in optuna.get_all_study_summaries(PG_URL)}


def test_default_name_of_an_odd_folder_is_path_safe() -> None:
    name = schema.study_name("My Pics/../x", "tpe", 0)
    assert schema.check_study_name(name) == name and "/" not in name and " " not in name


# ----------------------------------------------------------------- 5: seeds
@pytest.mark.parametrize("flag,value", [("--seed", str(2**32)), ("--seed", str(10**30)),
                                        ("--data-seed", str(2**32))])
def test_seed_out_of_range_is_one_line_and_no_study(flag: str, value: str, workdir: Path,
                                                    storage_url: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(["run", "--searcher", "random", *QUICK, "--storage", storage_url,
                         flag, value], capsys)
    assert rc == 2 and flag in _one_line(err)
    assert list(workdir.iterdir()) == []


def test_largest_seed_resumes(quick_config) -> None:
    assert derived_seed(MAX_SEED, 5) == 4 and derived_seed(3, 7919) == 7922
    first = run_search(quick_config("tpe", seed=MAX_SEED, budget_epochs=2), printer=lambda _: None)
    second = run_search(quick_config("tpe", seed=MAX_SEED, budget_epochs=4), printer=lambda _: None)
    assert (first.epochs_used, second.epochs_used) == (2, 4)
    assert second.counts["COMPLETE"] == 2


# ----------------------------------------------------------------- 6: --logdir
def test_logdir_that_is_a_file_or_too_long(workdir: Path, storage_url: str,
                                          capsys: pytest.CaptureFixture) -> None:
    (workdir / "afile").write_text("x")
    for logdir, words in ((str(workdir / "afile"), "is a file"),
                          (str(workdir / "afile" / "sub"), "is a file"),
                          (str(workdir / ("d" * 300)), "longer than"),
                          (str(workdir / "/".join(["d" * 200] * 25)), "too long")):
        rc, out, err = _cli(["run", "--searcher", "random", *QUICK, "--storage", storage_url,
                             "--logdir", logdir], capsys)
        line = _one_line(err)
        assert rc == 2 and "--logdir" in line and words in line, line
    assert sorted(p.name for p in workdir.iterdir()) == ["afile"]  # no store, no study


def test_unwritable_logdir(workdir: Path, storage_url: str, capsys: pytest.CaptureFixture,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    ro = workdir / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access",  # tests run as root, for whom every folder is writable
                        lambda p, mode, **kw: False if Path(p) == ro else real(p, mode, **kw))
    rc, out, err = _cli(["run", "--searcher", "random", *QUICK, "--storage", storage_url,
                         "--logdir", str(ro / "runs")], capsys)
    assert rc == 2 and "not writable" in _one_line(err)
    assert not (workdir / "studies.db").exists()


# ----------------------------------------------------------------- 3: disk full
def test_disk_full_is_one_line_and_the_rerun_resumes(workdir: Path, storage_url: str,
                                                    capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = kt_project._atomic_save_json, []

    def full_after_a_while(path: str, obj: object) -> str:
        calls.append(path)
        if len(calls) > 12:  # the first trial's state is written, then the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(path, obj)

    monkeypatch.setattr(kt_project, "_atomic_save_json", full_after_a_while)
    # --trials-per-process 0: the full disk is patched into this process
    argv = ["run", "--searcher", "random", *QUICK, "--budget-epochs", "8", "--storage", storage_url,
            "--trials-per-process", "0"]
    rc, out, err = _cli(argv, capsys)
    line = _one_line(err)
    assert rc == 1 and "disk full" in line and "resume" in line, line
    study = optuna.load_study(study_name="toon-random-s0", storage=storage_url)
    finished_before = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert finished_before
    monkeypatch.setattr(kt_project, "_atomic_save_json", real)  # space freed
    rc, out, err = _cli(argv, capsys)
    assert rc == 0, err
    study = optuna.load_study(study_name="toon-random-s0", storage=storage_url)
    assert store.epochs_used(study) == 8
    assert [t.number for t in study.trials if t.state == TrialState.COMPLETE][:len(finished_before)] \
        == finished_before  # nothing stored was lost


def test_json_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "trial.json"
    kt_project._atomic_save_json(str(target), {"ok": 1})
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError):
        kt_project._atomic_save_json(str(target), {"ok": 2, "pad": "x" * 10000})
    assert target.read_text() == '{"ok": 1}'  # the old state is whole
    assert [p.name for p in tmp_path.iterdir()] == ["trial.json"]  # no temporary left


def test_kerastuner_state_is_written_through_the_patched_function(tmp_path: Path) -> None:
    """Pins the KerasTuner internal that make_json_writes_atomic relies on."""
    import keras_tuner
    from keras_tuner.src import utils

    kt_project.make_json_writes_atomic()
    assert utils.save_json is kt_project._atomic_save_json
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Int("a", 0, 3)
    oracle.save()
    assert (tmp_path / "p" / "oracle.json").is_file()


# ------------------------------------------------- 8, 14: a process killed mid-trial
@pytest.mark.parametrize("searcher,remove_logs", [("random", False), ("tpe", True)])
def test_killed_mid_trial_its_epochs_count_and_it_ends_fail(
        searcher: str, remove_logs: bool, workdir: Path, storage_url: str,
        capsys: pytest.CaptureFixture) -> None:
    """random: KerasTuner's own searcher resumes its project; tpe: the user also deleted
    runs/ (its TensorBoard logs and KerasTuner project) before re-running."""
    argv = ["run", "--searcher", searcher, *QUICK, "--epochs-per-trial", "10",
            "--budget-epochs", "20", "--storage", storage_url]
    name = f"toon-{searcher}-s0"
    first = _spawn(argv, workdir)
    killed = _wait_for(_running_with_epochs(storage_url, name, 3), what="3 epochs")[0]
    trial_process = psutil.Process(first.pid).children()
    first.kill()  # the launcher; its trial process is told to stop (SIGINT), and does
    first.wait(30)
    _, alive = psutil.wait_procs(trial_process, timeout=60)
    assert not alive
    if remove_logs:
        import shutil
        shutil.rmtree(workdir / "runs")
    rc, out, err = _cli(argv, capsys)
    assert rc == 0, err
    study = optuna.load_study(study_name=name, storage=storage_url)
    dead = study.trials[killed.number]
    assert dead.state == TrialState.FAIL and dead.user_attrs[schema.T_INTERRUPTED]
    assert dead.user_attrs[schema.T_EPOCHS] >= 3
    trained = sum(int(t.user_attrs[schema.T_EPOCHS]) for t in study.trials)
    assert trained == store.epochs_used(study) == 20  # every trained epoch counted, once
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert "1 failed" in out and "epochs 20/20" in out  # the summary agrees with the store


# ----------------------------------------------------------------- 11: Ctrl-C early
@pytest.mark.parametrize("delay", [0.8, 2.5])
def test_ctrl_c_while_loading_is_the_usual_one_line(delay: float, workdir: Path) -> None:
    # a budget no machine spends before the interrupt: the run is always cut
    proc = _spawn(["run", "--searcher", "random", *QUICK, "--budget-epochs", "10000"], workdir)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # 130, or death by SIGINT when the interrupt lands in TensorFlow's import: a shell
    # shows both as exit status 130.
    assert proc.returncode in (130, -signal.SIGINT), (out, err)
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.strip()][-1] == INTERRUPTED


def test_sigterm_is_an_interrupt(workdir: Path, storage_url: str) -> None:
    proc = _spawn(["run", "--searcher", "random", *QUICK, "--epochs-per-trial", "30",
                   "--budget-epochs", "60", "--storage", storage_url], workdir)
    _wait_for(_running_with_epochs(storage_url, "toon-random-s0", 1), what="a trial")
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == INTERRUPTED


# ----------------------------------------------------------------- 17: small ones
def test_budget_cut_only_when_the_budget_really_cut_a_trial(quick_config, storage_url) -> None:
    lines: list[str] = []
    exact = run_search(quick_config("random", budget_epochs=4), printer=lines.append)
    study = optuna.load_study(study_name=exact.study_name, storage=storage_url)
    assert [t.user_attrs.get(schema.T_BUDGET_CUT) for t in study.trials] == [None, None]
    cut = run_search(quick_config("random", budget_epochs=5), printer=lines.append)
    study = optuna.load_study(study_name=cut.study_name, storage=storage_url)
    last = study.trials[-1]
    assert last.user_attrs.get(schema.T_BUDGET_CUT) is True and last.user_attrs[schema.T_EPOCHS] == 1
    # the resumed run's per-trial line shows the study's best so far, not "-"
    best_before = min(t.value for t in study.trials[:2] if t.value is not None)
    resumed_line = [ln for ln in lines if "trial #2" in ln][0]
    assert "best=-" not in resumed_line
    assert f"best={min(best_before, last.value or 9e9):.4f}" in resumed_line


def test_finished_keras_tuner_run_without_its_project_is_done_not_an_error(
        workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    """A committed store's finished runs resume (as done) on a machine without their logs;
    an unfinished one still needs its KerasTuner project, and says so."""
    argv = ["run", "--searcher", "random", *QUICK, "--budget-epochs", "4", "--storage",
            storage_url, "--trials-per-process", "0"]
    rc, _, err = _cli(argv + ["--logdir", str(workdir / "a")], capsys)
    assert rc == 0, err
    before = optuna.load_study(study_name="toon-random-s0", storage=storage_url).trials
    rc, out, err = _cli(argv + ["--logdir", str(workdir / "b")], capsys)
    assert rc == 0, err
    assert "| epochs 4/4 | this run 0s" in out, out
    assert len(optuna.load_study(study_name="toon-random-s0", storage=storage_url).trials) == len(before)
    assert not (workdir / "b" / "toon-random-s0" / "kt").exists()  # nothing run, nothing made
    rc, _, err = _cli(argv[:-4] + ["--budget-epochs", "8", "--storage", storage_url,
                                   "--trials-per-process", "0", "--logdir", str(workdir / "b")],
                      capsys)
    assert rc == 2 and "cannot resume without it" in _one_line(err)
