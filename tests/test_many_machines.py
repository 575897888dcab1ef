"""Many machines, one study: two processes with their own project folders on one
PostgreSQL / MariaDB study (what two machines are), and one shared artifact folder.

Every KerasTuner trial id is unique in the study; on each side ``get_best_models(2)``
returns the study's two best trials with exactly the weights they trained (wherever they
trained); without the artifact store the side lacking a best trial's weights gets an
error naming it, never a model."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest

from searchers import seam
from tests.conftest import require_server
from tests.test_reliability import MYSQL_URL, PG_URL

ROOT = Path(__file__).resolve().parents[1]


def _machine(mode: str, directory: Path, url: str, study: str, max_trials: int,
             artifacts: Path | None, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.machine", mode, str(directory), url, study, str(max_trials),
         str(artifacts) if artifacts else "-", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _done(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


@pytest.mark.parametrize("url,kind", [(PG_URL, "PostgreSQL"), (MYSQL_URL, "MariaDB")])
def test_two_machines_one_study_get_the_studys_best_models(url: str, kind: str, tmp_path: Path) -> None:
    require_server(kind, url)
    study_name = f"machines-{uuid.uuid4().hex[:8]}"
    shared = tmp_path / "artifacts"
    shared.mkdir()
    a, b = tmp_path / "a" / "kt", tmp_path / "b" / "kt"   # two machines: two project folders
    try:
        _done(_machine("search", a, url, study_name, 3, shared, tmp_path / "out-a"))
        _done(_machine("search", b, url, study_name, 6, shared, tmp_path / "out-b"))
        best_a = _machine("best", a, url, study_name, 6, shared, tmp_path / "out-a")
        best_b = _machine("best", b, url, study_name, 6, shared, tmp_path / "out-b")
        _done(best_a)
        _done(best_b)

        study = optuna.load_study(study_name=study_name, storage=url)
        trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(trials) == 6
        ids = [t.user_attrs["kt_trial_id"] for t in trials]
        assert len(set(ids)) == 6, ids            # no id twice in the study
        tb_runs = [p.name for p in (tmp_path / "tb").iterdir()]  # one log folder for both
        assert sorted(tb_runs) == sorted(ids)     # one TensorBoard folder per trial, none shared

        ranked = sorted(trials, key=lambda t: (t.value, t.number))
        best_two = [t.number for t in ranked[:2]]
        trained = {int(p.stem.split("-")[1]): p for side in "ab"
                   for p in (tmp_path / f"out-{side}").glob("trained-*.npz")}
        assert sorted(trained) == sorted(t.number for t in trials)
        errors = []
        for side in "ab":
            with_store = tmp_path / f"out-{side}" / "with"
            assert json.loads((with_store / "best.json").read_text()) == best_two
            for rank, number in enumerate(best_two):  # exactly the weights that trial trained
                got, want = _weights(with_store / f"best-{rank}.npz"), _weights(trained[number])
                assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))
            without = tmp_path / f"out-{side}" / "without"
            if (without / "error.txt").exists():
                line = (without / "error.txt").read_text()
                assert "another process or machine" in line and "trial #" in line
                errors.append(side)
            else:  # both best trials trained here: its own files
                for rank, number in enumerate(best_two):
                    got = _weights(without / f"best-{rank}.npz")
                    assert all(np.array_equal(g, w) for g, w in zip(got, _weights(trained[number])))
        assert errors  # the best two cannot both have trained on both machines

        # the store keeps the best k=2 trials' files only (weights + build config each)
        assert len(list(shared.iterdir())) == 4
        attrs = seam.storage_of(study).get_study_system_attrs(seam.study_id(study))
        links = {k: v for k, v in attrs.items() if k.startswith("dashboard:artifacts:")}
        live = [json.loads(v) for v in links.values() if json.loads(v) is not None]
        assert len(live) == 4 and {m["filename"] for m in live} == {"checkpoint.weights.h5",
                                                                   "build_config.json"}
        kept = {int(k.split(":")[2]) for k, v in links.items() if json.loads(v) is not None}
        assert kept == {seam.storage_trial_id(t) for t in ranked[:2]}
    finally:
        try:
            optuna.delete_study(study_name=study_name, storage=url)
        except KeyError:
            pass


def test_without_an_artifact_store_a_foreign_best_trial_is_an_error(tmp_path: Path) -> None:
    """The same on SQLite, in one process: a second project on the study whose best trial
    trained in the first project raises, naming the trial; it never loads its own trial."""
    from searchers import OptunaSearch
    from searchers.checkpoint_artifacts import CheckpointNotFound
    from tests import tiny

    url = f"sqlite:///{tmp_path / 's.db'}"
    x, y, xv, yv = tiny.data(0)

    def tuner(name: str, max_trials: int, **kw) -> OptunaSearch:
        return OptunaSearch(tiny.build, objective="val_loss", max_trials=max_trials,
                            pruner=optuna.pruners.NopPruner(), storage=url, study_name="s",
                            directory=str(tmp_path / name), project_name="p", **kw)

    first = tuner("a", 2)
    first.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    second = tuner("b", 3, sampler=optuna.samplers.RandomSampler(seed=1))
    second.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0)
    assert sorted(first.oracle.trials) == ["0", "1"] and list(second.oracle.trials) == ["2"]
    best = second.oracle.get_best_trials(3)
    assert [second.oracle.study_trial_of(t).number for t in best] == [
        t.number for t in sorted(second.study.trials, key=lambda t: (t.value, t.number))]
    foreign = next(t for t in best if not second.oracle.is_local(t))
    with pytest.raises(CheckpointNotFound, match=f"trial #{second.oracle.study_trial_of(foreign).number}"):
        second.load_model(foreign)
