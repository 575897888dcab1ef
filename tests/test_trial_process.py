"""Trials in a replaceable child process (bench/run/supervisor.py): a replaced process resumes
the study exactly, and a trial whose process dies costs that one trial."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from bench.core import schema, store
from bench.core.errors import RunError
from bench.run import supervisor
from bench.run.runner import RunConfig
from tests.test_reliability import QUICK, _cli, _running_with_epochs, _spawn, _wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).trials


def _epochs_exact(url: str, name: str, budget: int) -> None:
    study = optuna.load_study(study_name=name, storage=url)
    trained = sum(int(t.user_attrs[schema.T_EPOCHS]) for t in study.trials)
    assert trained == store.epochs_used(study) == budget  # every trained epoch, once
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


@pytest.mark.parametrize("searcher", ["random", "tpe"])
def test_killed_trial_process_costs_one_trial(searcher: str, workdir: Path,
                                              storage_url: str) -> None:
    name = f"toon-{searcher}-s0"
    run = _spawn(["run", "--searcher", searcher, *QUICK, "--epochs-per-trial", "10",
                  "--budget-epochs", "24", "--storage", storage_url], workdir)
    victim = _wait_for(_running_with_epochs(storage_url, name, 1), what="a trial")[0]
    children = psutil.Process(run.pid).children()
    assert len(children) == 1  # the launcher runs no trial itself
    children[0].send_signal(signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "died by SIGKILL" in out and "Traceback" not in err

    trials = _trials(storage_url, name)
    dead = trials[victim.number]
    assert dead.state == TrialState.FAIL
    assert "SIGKILL" in dead.user_attrs[schema.T_CRASHED]
    assert "SIGKILL" in dead.user_attrs[schema.T_ERROR]
    # The run went on with new trials, and the dead one was not run again.
    later = trials[victim.number + 1:]
    assert later and all(t.state != TrialState.FAIL for t in later)
    same_id = [t for t in trials if t.user_attrs.get(schema.T_KT_ID) == dead.user_attrs[schema.T_KT_ID]]
    assert same_id == [dead]
    assert not any(t.user_attrs.get("retry_of") == dead.number for t in trials)
    _epochs_exact(storage_url, name, 24)
    assert "1 failed" in out and "epochs 24/24" in out


def test_replaced_process_resumes_the_same_study_exactly(workdir: Path, storage_url: str,
                                                         capfd: pytest.CaptureFixture) -> None:
    """KerasTuner's RandomSearch in fresh processes of 2 trials proposes exactly what it
    proposes in one process: nothing re-run, skipped or counted twice."""
    common = ["run", "--searcher", "random", *QUICK, "--budget-epochs", "10",
              "--storage", storage_url]
    rc, out, err = _cli([*common, "--study", "replaced", "--trials-per-process", "2"], capfd)
    assert rc == 0, err
    rc, _, err = _cli([*common, "--study", "one", "--trials-per-process", "0"], capfd)
    assert rc == 0, err
    replaced, one = _trials(storage_url, "replaced"), _trials(storage_url, "one")
    assert [t.params for t in replaced] == [t.params for t in one]
    assert [t.user_attrs[schema.T_KT_ID] for t in replaced] == [
        t.user_attrs[schema.T_KT_ID] for t in one]
    assert all(t.state == TrialState.COMPLETE for t in replaced)
    pids = [t.user_attrs[schema.T_PROCESS]["pid"] for t in replaced]
    assert len(replaced) == 5 and len(set(pids)) == 3  # 2 + 2 + 1
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert {t.user_attrs[schema.T_PROCESS]["pid"] for t in one} == {__import__("os").getpid()}
    assert all(t.user_attrs[schema.T_PROCESS]["rss_mb"] > 0 for t in replaced)
    _epochs_exact(storage_url, "replaced", 10)
    # One progress line per trial, the header once (the trial processes print them).
    assert out.count("study 'replaced' in") == 1 and out.count("] trial #") == 5


def test_optuna_backed_replaced_process_counts_once(workdir: Path, storage_url: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    rc, out, err = _cli(["run", "--searcher", "tpe", *QUICK, "--max-trials", "5",
                         "--budget-epochs", "100", "--trials-per-process", "2",
                         "--storage", storage_url], capsys)
    assert rc == 0, err
    trials = _trials(storage_url, "toon-tpe-s0")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5  # tickets: exactly 5
    assert len({t.user_attrs[schema.T_PROCESS]["pid"] for t in trials}) == 3
    assert sorted(t.user_attrs[schema.T_KT_ID] for t in trials) == [f"{i:01d}" for i in range(5)]
    # Each new process reseeds the sampler by the trials begun, not by the tickets waiting:
    # the random start-up trials of one process are not proposed again by the next.
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 5
    assert "trials: 5 complete" in out


def test_processes_that_keep_dying_end_the_run(workdir: Path, storage_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial process that dies before finishing anything, again and again, stops the
    run with one line instead of looping forever."""
    import bench.run.processes

    started: list[int] = []

    def dying(argv: list[str], env=None, pass_fds=()) -> subprocess.Popen:
        started.append(1)
        return subprocess.Popen([sys.executable, "-c",
                                 "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])

    monkeypatch.setattr(bench.run.processes, "spawn_worker", dying)
    cfg = RunConfig(searcher="random", preset="quick", storage=storage_url,
                    logdir=str(workdir / "runs"))
    with pytest.raises(RunError, match=r"died 3 times in a row.*SIGSEGV"):
        supervisor.run_supervised(cfg, 5)
    assert len(started) == supervisor.MAX_CONSECUTIVE_CRASHES


def test_config_round_trips_through_the_command_line() -> None:
    from bench.cli import build_parser
    from bench.run.runner import RunConfig

    cfg = RunConfig(searcher="tpe", seed=3, preset="quick", budget_epochs=7, epochs_per_trial=2,
                    max_trials=4, timeout=12.5, dataset="digits", image_size=(20, 10),
                    data_seed=2, storage="sqlite:///x.db", study="s", logdir="L",
                    sampler="random", pruner="median", batch_size=16, verbose=True)
    args = build_parser().parse_args(["run", *cfg.to_argv()])
    assert RunConfig.from_args(args, args.searcher, args.seed) == cfg
    # issue 15: the objectives and the size cap reach the trial processes too
    mo = RunConfig(searcher="random", preset="quick", objectives=("val_loss", "params"),
                   max_params=5000)
    args = build_parser().parse_args(["run", *mo.to_argv()])
    assert RunConfig.from_args(args, args.searcher, args.seed) == mo
    assert "--objectives" not in cfg.to_argv()  # the default: no flag
    # every flag a run takes crosses (workers are started from it too)
    full = RunConfig(searcher="tpe", seed=1, preset="quick", patience=0, trials_per_process=0,
                     warm_start="old-study", artifacts="/tmp/a", kind="record", worker="w1.x",
                     max_params=9, objectives=("val_loss", "params"))
    args = build_parser().parse_args(["run", *full.to_argv()])
    assert RunConfig.from_args(args, args.searcher, args.seed) == full
