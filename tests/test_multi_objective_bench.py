"""Issue 15, the benchmark side: ``bench run/compare --objectives val_loss,params
[--max-params N]``. A KerasTuner searcher runs its own summed objective and is mirrored
with every objective's value; the Optuna-backed default searches the multi-objective
study; both land in one study each with two directions, the size cap as Optuna's
constraint, TensorBoard metrics for both objectives, and compare's retrained front."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.core import schema
from bench.run.tblog import read_hparams
from tests.test_reliability import QUICK, _cli, _one_line

MO = ["--objectives", "val_loss,params"]


def _check_study(url: str, name: str, cap: int) -> optuna.Study:
    study = optuna.load_study(study_name=name, storage=url)
    assert len(study.directions) == 2
    assert all(d == optuna.study.StudyDirection.MINIMIZE for d in study.directions)
    assert study.metric_names == ["val_loss", "params"]
    bench = study.user_attrs[schema.STUDY_BENCH]
    assert bench["objectives"] == ["val_loss", "params"]
    assert bench["directions"] == ["minimize", "minimize"]
    assert bench["max_params"] == cap
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done
    for t in done:
        assert len(t.values) == 2
        assert t.values[1] == t.user_attrs[schema.T_PARAMS]
        assert t.constraints == {"max_params": t.user_attrs[schema.T_PARAMS] - cap}
    # Optuna's own front holds feasible trials only
    assert all(t.constraints["max_params"] <= 0 for t in study.best_trials)
    return study


def _check_tensorboard(run_dir: Path, study: optuna.Study) -> None:
    tb = read_hparams(run_dir)
    assert tb["config"]["metrics"][:2] == ["val_loss", "params"]
    shown = {m["name"]: m["display_name"] for m in tb["config"]["metric_infos"]}
    assert shown["val_loss"] == "val_loss (objective)" and shown["params"] == "params (objective)"
    by_kt = {str(t.user_attrs[schema.T_KT_ID]): t for t in study.get_trials(states=(TrialState.COMPLETE,))}
    for kt_id, t in by_kt.items():
        metrics = tb["trials"][kt_id]["metrics"]
        assert metrics["params"] == pytest.approx(t.values[1])
        assert metrics["val_loss"] == pytest.approx(t.values[0], rel=1e-6)


def test_kerastuner_searcher_is_mirrored_with_both_values(workdir: Path, storage_url: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    cap = 1700
    rc, out, err = _cli(["run", "--searcher", "random", *QUICK, "--budget-epochs", "8", *MO,
                         "--max-params", str(cap), "--storage", storage_url,
                         "--trials-per-process", "0"], capsys)
    assert rc == 0, err
    study = _check_study(storage_url, "toon-random-mo-s0", cap)
    constraints = [t.constraints["max_params"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert any(c > 0 for c in constraints) and any(c <= 0 for c in constraints)
    # epochs per trial stay val_loss (the first objective)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.intermediate_values[max(t.intermediate_values)] == pytest.approx(
            t.user_attrs[schema.T_CURVE]["val_loss"][-1])
    assert "Pareto front (val_loss, params):" in out
    _check_tensorboard(workdir / "runs" / "toon-random-mo-s0", study)


def test_optuna_backed_default_runs_the_multi_objective_study(
        workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    cap = 3000
    # through trial processes: the flags cross into them (RunConfig.to_argv)
    rc, out, err = _cli(["run", *QUICK, "--budget-epochs", "8", *MO, "--max-params", str(cap),
                         "--storage", storage_url], capsys)
    assert rc == 0, err
    study = _check_study(storage_url, "toon-optuna-mo-s0", cap)
    assert not study.get_trials(states=(TrialState.PRUNED,))  # no pruner on two objectives
    assert study.user_attrs[schema.STUDY_BENCH]["searcher"] == "optuna"
    _check_tensorboard(workdir / "runs" / "toon-optuna-mo-s0", study)


@pytest.mark.parametrize("argv, words", [
    (["--pruner", "sha2", *MO], "cannot prune"),
    (["--objectives", "foo"], "unknown 'foo'"),
    (["--objectives", "val_accuracy"], "single objective"),
    (["--objectives", "val_loss,params", "--max-params", "0"], "--max-params"),
])
def test_bad_multi_objective_flags_are_one_line(argv: list[str], words: str, workdir: Path,
                                                storage_url: str,
                                                capsys: pytest.CaptureFixture) -> None:
    rc, _out, err = _cli(["run", *QUICK, *argv, "--storage", storage_url], capsys)
    assert rc == 2
    assert words in _one_line(err)


def test_compare_retrains_each_front_and_the_report_draws_it(
        workdir: Path, storage_url: str, capsys: pytest.CaptureFixture) -> None:
    from bench.report.results import write_report

    rc, out, err = _cli(["compare", "--searchers", "random,optuna", "--seeds", "1", *QUICK,
                         "--budget-epochs", "6", *MO, "--storage", storage_url,
                         "--trials-per-process", "0"], capsys)
    assert rc == 0, err
    for searcher in ("random", "optuna"):
        study = optuna.load_study(study_name=f"toon-{searcher}-mo-s0", storage=storage_url)
        front = study.user_attrs[schema.STUDY_RETRAIN_FRONT]
        best = sorted(study.best_trials, key=lambda t: (t.values[0], t.number))
        assert [r["trial"] for r in front] == [t.number for t in best][:5]
        for row, t in zip(front, best):
            assert set(row) >= {"trial", "params", "n_params", "val_loss", "test_accuracy", "test_loss"}
            assert row["n_params"] == t.values[1] and row["val_loss"] == t.values[0]
        assert study.user_attrs[schema.STUDY_RETRAIN]["trial"] == front[0]["trial"]
    names = {s.study_name for s in optuna.get_all_study_summaries(storage_url)}
    assert "toon-compare-mo" in names and "toon-compare" not in names  # its own record
    text = Path(write_report(storage_url, out=str(workdir / "RESULTS.md"),
                             plots_dir=str(workdir / "results"))).read_text()
    assert "### Accuracy against model size" in text
    assert "random [val_loss, params]" in text and "optuna [val_loss, params]" in text
