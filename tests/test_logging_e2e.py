"""End to end: real runs of every searcher, TensorBoard HParams vs the SQL study store.

One module-scoped store holds a quick run (48x16 toon images, 2-epoch trials) of each
searcher. For every study the TensorBoard event files are read back the way TensorBoard
reads them (``bench.run.tblog.read_hparams``) and compared trial by trial with the Optuna
study: hyperparameters, final objective, status, per-epoch steps, declared domains.
Then two of the runs are resumed with a bigger budget and must continue, not restart.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from bench.core import schema
from bench.run.runner import RunConfig, run_search
from bench.run.tblog import read_hparams
from models.space import SEARCH_SPACE, space_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUDGET = 6
BUDGETS = {"random": BUDGET, "hyperband": BUDGET, "bayesian": BUDGET, "tpe": BUDGET,
           "bohb": 8,  # bohb: room for Hyperband-pruned 1-epoch trials
           "one-epoch": 8}  # 4 configurations screened for one epoch, the best 2 continued

RESUMED = ("random", "tpe")
RESUME_BUDGET = 10
# The quick preset's 2-epoch trials; Hyperband gets 3 so that its first bracket has a
# continuation (a trial resuming its parent at epoch 2, logged at absolute epochs 2..3).
EPOCHS = {s: 3 if s in ("hyperband", "one-epoch") else 2 for s in BUDGETS}
TB_STATUS = {"COMPLETE": "STATUS_SUCCESS", "PRUNED": "STATUS_UNKNOWN", "FAIL": "STATUS_FAILURE"}


def _declared_grid(p) -> list[Any]:
    """The declared values of one hyperparameter, computed here (not by the code under test)."""
    kw = p.kwargs
    if p.kind == "Choice":
        return sorted(kw["values"])
    if p.kind == "Int":
        return list(range(kw["min_value"], kw["max_value"] + 1, kw.get("step") or 1))
    if p.kind == "Float":
        n = int(math.floor((kw["max_value"] - kw["min_value"]) / kw["step"] + 1e-6))
        return [round(kw["min_value"] + i * kw["step"], 10) for i in range(n + 1)]
    raise AssertionError(f"unexpected kind {p.kind}")


GRID = {p.name: _declared_grid(p) for p in SEARCH_SPACE}


def _config(searcher: str, root: Path, budget: int) -> RunConfig:
    return RunConfig(searcher=searcher, preset="quick", budget_epochs=budget,
                     epochs_per_trial=EPOCHS[searcher],
                     storage=f"sqlite:///{root / 'studies.db'}", logdir=str(root / "runs"))


def _snapshot(study: optuna.Study) -> dict[str, tuple]:
    return {t.user_attrs[schema.T_KT_ID]: (t.number, t.state, t.value, dict(t.params),
                                           dict(t.intermediate_values), t.datetime_start,
                                           t.datetime_complete)
            for t in study.get_trials(deepcopy=False)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("e2e")
    out: dict[str, Any] = {"root": root, "summaries": {}, "lines": {}, "before_resume": {},
                           "resumed": {}, "rerun": None}
    for searcher, budget in BUDGETS.items():
        lines: list[str] = []
        out["summaries"][searcher] = run_search(_config(searcher, root, budget), printer=lines.append)
        out["lines"][searcher] = lines
    url = f"sqlite:///{root / 'studies.db'}"
    # A finished run started again with the same budget has nothing to do.
    before = _snapshot(optuna.load_study(study_name="toon-random-s0", storage=url))
    again = run_search(_config("random", root, BUDGET), printer=lambda _line: None)
    out["rerun"] = (before, again,
                    _snapshot(optuna.load_study(study_name="toon-random-s0", storage=url)))
    for searcher in RESUMED:
        name = out["summaries"][searcher].study_name
        out["before_resume"][searcher] = _snapshot(optuna.load_study(study_name=name, storage=url))
        out["resumed"][searcher] = run_search(_config(searcher, root, RESUME_BUDGET),
                                              printer=lambda _line: None)
    return out


def _study(runs: dict[str, Any], searcher: str) -> optuna.Study:
    url = f"sqlite:///{runs['root'] / 'studies.db'}"
    return optuna.load_study(study_name=f"toon-{searcher}-s0", storage=url)


def _budget(searcher: str) -> int:
    return RESUME_BUDGET if searcher in RESUMED else BUDGETS[searcher]


def test_one_study_per_searcher(runs: dict[str, Any]) -> None:
    url = f"sqlite:///{runs['root'] / 'studies.db'}"
    names = {s.study_name for s in optuna.get_all_study_summaries(url)}
    assert names == {f"toon-{s}-s0" for s in BUDGETS}
    for searcher, summary in runs["summaries"].items():
        assert summary.study_name == f"toon-{searcher}-s0"
        assert summary.epochs_used == BUDGETS[searcher]
        assert summary.counts["COMPLETE"] >= 1
        assert Path(summary.logdir) == runs["root"] / "runs" / summary.study_name


@pytest.mark.parametrize("searcher", list(BUDGETS))
def test_tensorboard_agrees_with_store_trial_by_trial(runs: dict[str, Any], searcher: str) -> None:
    study = _study(runs, searcher)
    tb = read_hparams(runs["root"] / "runs" / study.study_name)
    trials = study.get_trials(deepcopy=False)
    assert trials and all(t.state != TrialState.RUNNING for t in trials)
    by_kt = {t.user_attrs[schema.T_KT_ID]: t for t in trials}
    assert len(by_kt) == len(trials), "two trials share a KerasTuner id"
    assert set(tb["trials"]) == set(by_kt), "TensorBoard trial ids != the store's kt_trial_id"

    for kt_id, t in by_kt.items():
        row = tb["trials"][kt_id]
        where = f"{searcher} trial #{t.number} (kt {kt_id})"
        assert row["attempts"] == 1, f"{where} was started more than once"
        # Hyperparameters: the store's params, exactly the same names, values on the grid.
        assert set(row["hparams"]) == set(t.params), where
        for name, value in t.params.items():
            assert row["hparams"][name] == pytest.approx(value, abs=1e-9), f"{where}: {name}"
            assert any(math.isclose(value, g, abs_tol=1e-9) for g in GRID[name]), f"{where}: {name}"
        # Status, and the final objective only for COMPLETE trials.
        assert row["status"] == t.state.name, where
        assert row["tb_status"] == TB_STATUS[t.state.name], where
        if t.state == TrialState.COMPLETE:
            assert row["metrics"][schema.OBJECTIVE] == pytest.approx(t.value, rel=1e-6), where
        else:
            assert schema.OBJECTIVE not in row["metrics"], f"{where}: {t.state.name} has an objective"
        assert row["metrics"]["epochs_trained"] == t.user_attrs[schema.T_EPOCHS], where
        if schema.T_VAL_ACC in t.user_attrs:
            assert row["metrics"]["val_accuracy"] == pytest.approx(
                t.user_attrs[schema.T_VAL_ACC], rel=1e-6), where
        # Per-epoch curves: same steps (absolute epochs) and values as the intermediate values.
        curve = dict(row["scalars"][schema.OBJECTIVE])
        assert sorted(curve) == sorted(t.intermediate_values), where
        for step, value in t.intermediate_values.items():
            assert curve[step] == pytest.approx(value, rel=1e-6), f"{where} epoch {step}"
        for tag in ("loss", "accuracy", "val_accuracy"):
            assert [s for s, _ in row["scalars"][tag]] == sorted(t.intermediate_values), (where, tag)


@pytest.mark.parametrize("searcher", list(BUDGETS))
def test_hparams_config_is_the_declared_space(runs: dict[str, Any], searcher: str) -> None:
    cfg = read_hparams(runs["root"] / "runs" / f"toon-{searcher}-s0")["config"]
    for p in SEARCH_SPACE:
        dom = cfg[p.name]
        assert dom["type"] == "discrete", p.name
        assert dom["values"] == pytest.approx(GRID[p.name]), p.name
    assert cfg["metrics"][0] == schema.OBJECTIVE
    assert {"val_loss", "val_accuracy", "loss", "accuracy", "epochs_trained"} <= set(cfg["metrics"])


def _expected_distribution(p) -> Any:
    kw = p.kwargs
    if p.kind == "Choice":
        return CategoricalDistribution(kw["values"])
    if p.kind == "Int":
        return IntDistribution(kw["min_value"], kw["max_value"], step=kw.get("step") or 1)
    return FloatDistribution(kw["min_value"], GRID[p.name][-1], step=kw["step"])


@pytest.mark.parametrize("searcher", list(BUDGETS))
def test_store_trials_have_distributions_values_and_attrs(runs: dict[str, Any],
                                                         searcher: str) -> None:
    study = _study(runs, searcher)
    expected = {p.name: _expected_distribution(p) for p in SEARCH_SPACE}
    for t in study.get_trials(deepcopy=False):
        where = f"{searcher} trial #{t.number}"
        assert set(t.distributions) == set(expected), where
        for name, dist in t.distributions.items():
            want = expected[name]
            assert type(dist) is type(want), (where, name)
            if isinstance(dist, CategoricalDistribution):
                assert list(dist.choices) == list(want.choices), (where, name)
            else:
                assert (dist.low, dist.step, dist.log) == (want.low, want.step, want.log), (where, name)
                assert dist.high == pytest.approx(want.high), (where, name)
        # Intermediate values: one per trained epoch, absolute 1-based consecutive epochs.
        steps = sorted(t.intermediate_values)
        ua = t.user_attrs
        assert len(steps) == ua[schema.T_EPOCHS] >= 1, where
        assert steps == list(range(steps[0], steps[-1] + 1)) and steps[0] >= 1, where
        assert steps[-1] <= EPOCHS[searcher], where
        assert all(math.isfinite(v) for v in t.intermediate_values.values()), where
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(min(t.intermediate_values.values())), where
        # User attrs.
        assert ua[schema.T_SEARCHER] == searcher, where
        assert ua[schema.T_SEED] == 0, where
        assert ua[schema.T_DATASET] == "toon", where
        assert isinstance(ua[schema.T_EPOCHS], int) and 1 <= ua[schema.T_EPOCHS] <= EPOCHS[searcher]
        assert ua[schema.T_WALL] >= ua[schema.T_FIT] > 0, where
        assert isinstance(ua[schema.T_PARAMS], int) and ua[schema.T_PARAMS] > 0, where
        assert 0.0 <= ua[schema.T_VAL_ACC] <= 1.0, where


@pytest.mark.parametrize("searcher", list(BUDGETS))
def test_study_bench_attr_and_budget(runs: dict[str, Any], searcher: str) -> None:
    study = _study(runs, searcher)
    bench = study.user_attrs[schema.STUDY_BENCH]
    assert bench["kind"] == schema.KIND_SEARCH
    assert bench["searcher"] == searcher
    assert bench["backend"] == ("optuna" if searcher in ("tpe", "bohb") else "keras_tuner")
    assert bench["seed"] == 0 and bench["dataset"] == "toon" and bench["preset"] == "quick"
    assert bench["space"] == space_config()
    assert bench["objective"] == schema.OBJECTIVE and bench["direction"] == schema.DIRECTION
    assert bench["epochs_per_trial"] == EPOCHS[searcher]
    assert bench["image_size"] == [48, 16]
    assert bench["budget_epochs"] == _budget(searcher)
    versions = bench["versions"]
    for dist in ("python", "keras", "keras-tuner", "optuna", "numpy", "sqlalchemy"):
        assert versions.get(dist, "").strip(), f"no version of {dist}"
    assert versions.get("tensorflow") or versions.get("tensorflow-cpu"), "no TensorFlow version"
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    # The budget is spent exactly: the run stops inside the trial that reaches it.
    used = sum(t.user_attrs[schema.T_EPOCHS] for t in study.get_trials(deepcopy=False))
    assert used == _budget(searcher)


def test_bohb_prunes(runs: dict[str, Any]) -> None:
    states = [t.state for t in _study(runs, "bohb").get_trials(deepcopy=False)]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    pruned = [t for t in _study(runs, "bohb").get_trials(deepcopy=False)
              if t.state == TrialState.PRUNED]
    assert all(t.user_attrs[schema.T_EPOCHS] < EPOCHS["bohb"] for t in pruned)


def test_hyperband_continuation_is_logged_at_absolute_epochs(runs: dict[str, Any]) -> None:
    study = _study(runs, "hyperband")
    tb = read_hparams(runs["root"] / "runs" / study.study_name)["trials"]
    cont = [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("tuner/initial_epoch", 0) > 0]
    assert cont, "no Hyperband continuation within the budget: the test lost its point"
    for t in cont:
        start = t.user_attrs["tuner/initial_epoch"]
        steps = sorted(t.intermediate_values)
        assert steps[0] == start + 1, t.intermediate_values
        assert t.user_attrs[schema.T_EPOCHS] == len(steps)  # its own epochs, not the parent's
        row = tb[t.user_attrs[schema.T_KT_ID]]
        assert [s for s, _ in row["scalars"][schema.OBJECTIVE]] == steps
        parent = t.user_attrs["tuner/trial_id"]
        assert parent in tb and parent != t.user_attrs[schema.T_KT_ID]


def test_printed_one_line_per_trial(runs: dict[str, Any]) -> None:
    for searcher, lines in runs["lines"].items():
        summary = runs["summaries"][searcher]
        n_trials = sum(summary.counts.values())
        trial_lines = [ln for ln in lines if " trial " in ln and "budget" in ln and "ETA" in ln]
        assert len(trial_lines) == n_trials, (searcher, lines)
        assert f"budget {BUDGETS[searcher]}/{BUDGETS[searcher]} ep" in trial_lines[-1]


def test_finished_run_started_again_trains_nothing(runs: dict[str, Any]) -> None:
    before, summary, after = runs["rerun"]
    assert after == before
    assert summary.epochs_used == BUDGET


@pytest.mark.parametrize("searcher", RESUMED)
def test_resume_with_bigger_budget_continues(runs: dict[str, Any], searcher: str) -> None:
    old = runs["before_resume"][searcher]
    study = _study(runs, searcher)
    now = _snapshot(study)
    # Finished trials are kept as they were, none re-run.
    for kt_id, snap in old.items():
        assert now[kt_id] == snap, f"{searcher}: trial kt {kt_id} changed on resume"
    new = {k: v for k, v in now.items() if k not in old}
    assert new, f"{searcher}: the resumed run added no trial"
    # Trial numbers and KerasTuner ids continue after the old ones.
    assert min(v[0] for v in new.values()) == max(v[0] for v in old.values()) + 1
    assert sorted(v[0] for v in now.values()) == list(range(len(now)))
    assert min(new) > max(old)
    # The new budget is spent exactly, and the summary says so.
    used = sum(t.user_attrs[schema.T_EPOCHS] for t in study.get_trials(deepcopy=False))
    assert used == RESUME_BUDGET
    summary = runs["resumed"][searcher]
    assert summary.epochs_used == RESUME_BUDGET and summary.budget_epochs == RESUME_BUDGET
    # TensorBoard: every trial once, the old ones untouched by the resume.
    tb = read_hparams(runs["root"] / "runs" / study.study_name)
    assert set(tb["trials"]) == set(now)
    assert all(row["attempts"] == 1 for row in tb["trials"].values())


@pytest.mark.parametrize("searcher", ["random", "hyperband", "bayesian"])
def test_import_kt_of_the_runs_own_project_gives_the_runs_trials(runs: dict[str, Any],
                                                                  searcher: str,
                                                                  tmp_path: Path) -> None:
    """``bench import-kt`` of a run's own KerasTuner project: every trial comes back with
    exactly the params and distributions the run stored (one mapping, searchers.seam)."""
    from bench.run.import_kt import import_project
    study = _study(runs, searcher)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    res = import_project(runs["root"] / "runs" / study.study_name / "kt" / "main", storage=url)
    imported = {t.user_attrs[schema.T_KT_ID]: t
                for t in optuna.load_study(study_name=res.study_name, storage=url).trials}
    ran = {t.user_attrs[schema.T_KT_ID]: t for t in study.get_trials(deepcopy=False)
           if t.state == TrialState.COMPLETE}
    assert ran and set(ran) <= set(imported)
    for kt_id, t in ran.items():
        assert imported[kt_id].distributions == t.distributions, kt_id
        assert imported[kt_id].params == t.params, kt_id


def test_progress_printer_formats_trial_and_run_lines() -> None:
    from bench.run.tracking import ProgressPrinter, RunStarted, TrialEvent
    lines: list[str] = []
    printer = ProgressPrinter(lines.append)
    printer.run_started(RunStarted(
        label="tpe", seed=1, worker="w0", study="toon-tpe-s1", storage="sqlite:///s.db",
        data="toon", image_size="48x16", size_note="preset quick", n_train=10, n_val=5,
        n_test=5, budget_epochs=6, used_before=2, epochs_per_trial=2))
    event = TrialEvent(label="tpe", seed=1, worker=None, number=3, kt_id="03",
                       state="COMPLETE", objective="val_loss", value=0.51234, val_accuracy=0.75,
                       best=0.5, epochs=2, wall=3.14, used=4, budget=6, eta_seconds=125.0,
                       params={"lr": 0.001, "units": 8})
    printer.trial_ended(event)
    from dataclasses import replace
    printer.trial_ended(replace(event, number=None, state="PRUNED", value=None,
                                val_accuracy=None, best=None, eta_seconds=None))
    printer.trial_ended(replace(event, n_params=70000, max_params=60812))  # size matters
    printer.note("tpe", 1, None, "the trial process (7) died")
    assert lines == [
        "[tpe s1 w0] study 'toon-tpe-s1' in sqlite:///s.db | data toon 48x16 (preset quick) "
        "train/val/test 10/5/5 | budget 6 epochs (2 used before), 2 per trial",
        "[tpe s1] trial #3 COMPLETE val_loss=0.5123 acc=0.750 best=0.5000 | 2 ep 3.1s | "
        "budget 4/6 ep | ETA 2m05s | lr=0.001 units=8",
        "[tpe s1] trial kt 03 PRUNED   val_loss=- best=- | 2 ep 3.1s | budget 4/6 ep | ETA ? | "
        "lr=0.001 units=8",
        "[tpe s1] trial #3 COMPLETE val_loss=0.5123 acc=0.750 params=70000 (infeasible) "
        "best=0.5000 | 2 ep 3.1s | budget 4/6 ep | ETA 2m05s | lr=0.001 units=8",
        "[tpe s1] the trial process (7) died",
    ]
