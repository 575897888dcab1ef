"""Several workers on one study against the real local PostgreSQL and MariaDB, a worker
killed with SIGKILL in the middle of a trial, and a launcher interrupted or killed."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from bench.core import schema
from tests.conftest import require_server

PG_URL = os.environ.get("BENCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("BENCH_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")

QUICK = ["--preset", "quick", "--epochs-per-trial", "2", "--budget-epochs", "1000"]


@functools.lru_cache(maxsize=None)
def _store(url: str) -> optuna.storages.RDBStorage:
    """One connection pool per server for the whole module: a URL string given to
    load_study opens a new pool each time, and polling would exhaust the server's clients."""
    return optuna.storages.RDBStorage(url)


def _bench(args: list[str], cwd, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.fixture
def study_name():
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    for url in (PG_URL, MYSQL_URL):
        try:
            optuna.delete_study(study_name=name, storage=_store(url))
        except Exception:  # noqa: BLE001 - not created on that server
            pass


def _check_exact(url: str, name: str, k: int) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=_store(url))
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == k, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    for t in finished:  # every epoch's report survived: one value per epoch trained
        assert len(t.intermediate_values) == t.user_attrs[schema.T_EPOCHS] > 0
    return finished


@pytest.mark.parametrize("url,kind,workers", [(PG_URL, "PostgreSQL", 3), (MYSQL_URL, "MariaDB", 2)])
def test_workers_share_one_study_exactly(url, kind, workers, study_name, tmp_path):
    require_server(kind, url)
    k = 5
    proc = _bench(["run", "--searcher", "tpe", "--workers", str(workers), "--max-trials", str(k),
                   "--storage", url, "--study", study_name, *QUICK], cwd=tmp_path)
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    finished = _check_exact(url, study_name, k)
    assert len({t.user_attrs["worker"] for t in finished}) >= 2, "only one worker got trials"
    assert "thread(s) each" in out


def test_sqlite_with_workers_is_refused(tmp_path):
    proc = _bench(["run", "--searcher", "tpe", "--workers", "2", *QUICK], cwd=tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "postgresql" in out.lower() and "Traceback" not in out


def test_keras_tuner_searcher_with_workers_is_refused(tmp_path):
    proc = _bench(["run", "--searcher", "random", "--workers", "2", "--storage", PG_URL, *QUICK],
                  cwd=tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Optuna-backed" in out and "Traceback" not in out


def test_killed_worker_trial_fails_and_rerun_resumes(study_name, tmp_path):
    """SIGKILL mid-trial: the trial goes FAIL by heartbeat, the same command resumes,
    finished trials stay, the budget counts the killed trial's epochs once."""
    require_server("PostgreSQL", PG_URL)
    k = 3
    cmd = ["run", "--searcher", "tpe", "--max-trials", str(k), "--storage", PG_URL,
           "--study", study_name, "--preset", "quick", "--image-size", "96x32",
           "--epochs-per-trial", "8", "--patience", "0", "--budget-epochs", "1000"]
    beat = {"BENCH_HEARTBEAT_SECONDS": "1", "BENCH_GRACE_SECONDS": "3"}
    proc = _bench(cmd, cwd=tmp_path, env_extra=beat)
    victim = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and victim is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=study_name, storage=_store(PG_URL))
        except KeyError:
            continue
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        if done and running:  # one finished trial to protect, one to kill mid-training
            victim = running[0]
    assert victim is not None, "no trial reached a killable state"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    before = {t.number: t.value for t in optuna.load_study(
        study_name=study_name, storage=_store(PG_URL)).get_trials(states=(TrialState.COMPLETE,))}
    time.sleep(4)  # past the grace period: the heartbeat is stale

    again = _bench(cmd, cwd=tmp_path, env_extra=beat)
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out
    study = optuna.load_study(study_name=study_name, storage=_store(PG_URL))
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    finished = _check_exact(PG_URL, study_name, k)
    after = {t.number: t.value for t in finished}
    assert all(after.get(n) == v for n, v in before.items()), "a finished trial was lost or changed"
    from bench.core.store import epochs_used
    # the killed trial counts what it trained: its reported epochs, or one more when the
    # signal came as an epoch ended, before that epoch's report was stored
    reported = len(killed.intermediate_values)
    counted = int(killed.user_attrs.get(schema.T_EPOCHS, reported))
    assert reported <= counted <= reported + 1
    assert epochs_used(study) == sum(t.user_attrs[schema.T_EPOCHS] for t in finished) + counted


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


LAUNCHER = """
import sys, time
from bench.run.processes import spawn_worker
worker = spawn_worker([sys.executable, "-c", "import time; time.sleep(120)"])
print(worker.pid, flush=True)
time.sleep(120)
"""


def test_killed_launcher_takes_its_workers_with_it(tmp_path):
    """SIGKILL cannot be relayed: the workers get SIGINT from the kernel (PDEATHSIG)."""
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=tmp_path,
                                stdout=subprocess.PIPE, text=True)
    worker = int(launcher.stdout.readline())
    assert _alive(worker)
    launcher.kill()
    launcher.communicate(timeout=30)
    assert _gone_within([worker], 10), "the worker outlived its killed launcher"


def _running_trial(name: str, seconds: float = 300) -> None:
    """Wait until some trial is RUNNING and has trained at least one epoch."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            trials = optuna.load_study(study_name=name, storage=_store(PG_URL)).get_trials(deepcopy=False)
        except KeyError:
            continue
        if any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials):
            return
    pytest.fail("no trial started training")


def test_interrupted_launcher_stops_every_worker_and_rerun_reaches_k(study_name, tmp_path):
    """SIGTERM, then SIGINT, to a --workers launcher mid-trial: it relays the stop, every
    worker exits and fails its running trial (none left RUNNING, the study stops growing),
    the launcher ends with the interrupt's line; the same command then finishes exactly K."""
    require_server("PostgreSQL", PG_URL)
    k = 2
    cmd = ["run", "--searcher", "tpe", "--workers", "2", "--max-trials", str(k),
           "--storage", PG_URL, "--study", study_name, "--preset", "quick",
           "--image-size", "96x32", "--epochs-per-trial", "12", "--patience", "0",
           "--budget-epochs", "1000"]  # trials long enough (~10 s) to be caught mid-training
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = _bench(cmd, cwd=tmp_path)
        _running_trial(study_name)
        workers = _children(proc.pid)
        assert len(workers) == 2
        below = [c for w in workers for c in _children(w)]  # their trial processes
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, out
        assert "interrupted:" in out
        # the launcher returns only once every process below it is gone
        assert not [p for p in workers + below if _alive(p)], "a process outlived its launcher"
        study = optuna.load_study(study_name=study_name, storage=_store(PG_URL))
        trials = study.get_trials(deepcopy=False)
        assert not [t.number for t in trials if t.state == TrialState.RUNNING], out
        assert [t for t in trials if t.user_attrs.get("error") == "interrupted"], (
            out, [(t.number, t.state, t.user_attrs, t.intermediate_values) for t in trials])
        snapshot = [(t.number, t.state) for t in trials]
        time.sleep(2)
        assert [(t.number, t.state) for t in study.get_trials(deepcopy=False)] == snapshot

    again = _bench(cmd, cwd=tmp_path)
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out
    _check_exact(PG_URL, study_name, k)
