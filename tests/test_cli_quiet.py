"""The CLI on a machine whose TensorFlow prints start-up lines (issue: README tests failed on
another CPU). Such lines are simulated here, written to file descriptor 2 while
``tensorflow`` is imported, exactly where TensorFlow's C++ logging writes them, so the test
means the same on every CPU; TensorFlow's own lines, where it prints any, come on top.

Assertions are on the project's own output only: the one ``error:`` line, exit codes, and
which modules got imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from bench.core import schema

REPO = Path(__file__).resolve().parents[1]
NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. (simulated)\n")

# Runs bench.cli.main(argv) with a finder that makes `import tensorflow` noisy on fd 2, then
# reports which heavy modules the command imported.
DRIVER = r'''
import importlib.abc, importlib.machinery, json, os, sys
NOISE = %r.encode()
class Noisy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        real = spec.loader.exec_module
        def exec_module(module):
            os.write(2, NOISE)
            real(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Noisy())
from bench.cli import main
try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    rc = exc.code if isinstance(exc.code, int) else 0
heavy = [m for m in ("tensorflow", "keras", "keras_tuner") if m in sys.modules]
sys.stdout.write("\nIMPORTED " + json.dumps(heavy) + "\n")
sys.exit(rc)
''' % NOISE


def _bench(argv: list[str], cwd: Path) -> tuple[int, str, str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    out, marker, imported = proc.stdout.rpartition("\nIMPORTED ")
    assert marker, proc.stdout + proc.stderr
    return proc.returncode, out, proc.stderr, json.loads(imported)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{err}"
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["report", "--help"],
                                  ["dashboard", "--help"], ["import-kt", "--help"]])
def test_help_does_not_import_tensorflow(argv: list[str], tmp_path: Path) -> None:
    rc, out, err, imported = _bench(argv, tmp_path)
    assert rc == 0 and "usage:" in out
    assert imported == [], f"{argv} imported {imported}"
    assert err == ""


@pytest.mark.parametrize("argv,words", [
    (["run", "--searcher", "nosuch"], ["'nosuch'", "tpe"]),
    (["report", "--storage", "sqlite:///missing.db"], ["missing.db"]),
    (["dashboard", "--storage", "notaurl"], ["notaurl"]),
])
def test_user_mistakes_are_one_line_without_tensorflow(argv: list[str], words: list[str],
                                                       tmp_path: Path) -> None:
    rc, out, err, imported = _bench(argv, tmp_path)
    line = _one_error_line(err)
    assert rc == 2 and all(w in line for w in words), line
    assert imported == []
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_error_after_tensorflow_import_is_still_one_line(tmp_path: Path) -> None:
    """A KerasTuner project damaged on disk is found only when the tuner loads it, after
    TensorFlow was imported (noisily): the user still reads exactly the one line."""
    from bench.data.datasets import load_dataset
    from bench.run.runner import RunConfig, bench_attrs

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    cfg = RunConfig(searcher="random", preset="quick", budget_epochs=4, storage=url).resolved()
    data = load_dataset(cfg.dataset, image_size=cfg.image_size, seed=cfg.data_seed)
    study = optuna.create_study(storage=url, study_name="toon-random-s0")
    study.set_user_attr(schema.STUDY_BENCH, bench_attrs(cfg, "random", "keras_tuner", data))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={schema.T_EPOCHS: 1}))
    project = tmp_path / "runs" / "toon-random-s0" / "kt" / "main"
    project.mkdir(parents=True)
    # whole JSON but not KerasTuner's state: found only when the tuner reloads it
    (project / "oracle.json").write_text('{"ongoing_trials": {}}')
    (project / "tuner0.json").write_text("{}")
    for per_process in ("0", "20"):  # trials in this process, or in a trial process
        rc, out, err, imported = _bench(["run", "--searcher", "random", "--preset", "quick",
                                         "--budget-epochs", "4", "--storage", url,
                                         "--trials-per-process", per_process], tmp_path)
        line = _one_error_line(err)
        assert rc == 2 and "cannot resume" in line, line
        # the error came after a noisy TensorFlow import: this process's, or its child's
        assert ("tensorflow" in imported) == (per_process == "0")
