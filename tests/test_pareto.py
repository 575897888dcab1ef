"""Multi-objective runs (val_loss, params) in the report: fronts and hypervolumes checked
against Optuna's own ``study.best_trials`` and hypervolume function (issue 15).

The store is built with Optuna's API to the storage contract in bench/report/pareto.py: one study
per run with two minimised objectives named by ``set_metric_names``, infeasible trials
through Optuna's constraints (both forms Optuna reads), PRUNED trials without values, a
``retrain_front`` per run, baselines and single-objective runs to compare with.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._base import _CONSTRAINTS_KEY
from optuna.trial import TrialState, create_trial

from bench.core import schema
from bench.report import pareto
from bench.report.results import collect, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "toon"
CLASSES = 4
CAP = 6000
BUDGET = 40
SEARCHERS = {"optuna": "optuna", "random": "keras_tuner", "hyperband": "keras_tuner"}
SEEDS = {"optuna": (0, 1, 2), "random": (0, 1, 2), "hyperband": (0, 1)}
DISTS = {"filters": IntDistribution(2, 32, log=True),
         "dropout": FloatDistribution(0.0, 0.5, step=0.1),
         "learning_rate": CategoricalDistribution([1e-2, 1e-3])}
OBJ = ["val_loss", "params"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _label(searcher: str) -> str:
    return f"{searcher} [val_loss, params]"


def _bench(searcher: str, seed: int, cap: int | None) -> dict:
    return dict(kind=schema.KIND_SEARCH, searcher=searcher, seed=seed, dataset=DATASET,
                backend=SEARCHERS[searcher], budget_epochs=BUDGET,
                dataset_info={"num_classes": CLASSES}, objectives=OBJ,
                directions=["minimize", "minimize"], max_params=cap)


def _add_multi(url: str, searcher: str, seed: int, cap: int | None, n_trials: int = 14,
               list_form: bool = False) -> optuna.Study:
    """One multi-objective run: bigger models fit better; the biggest ones break the cap
    (with the best val_loss of all, so a front that let them in would show it)."""
    rng = np.random.default_rng(1000 * seed + sum(map(ord, searcher)))
    study = optuna.create_study(storage=url, study_name=schema.study_name(DATASET, searcher, seed),
                                directions=["minimize", "minimize"])
    study.set_metric_names(OBJ)
    study.set_user_attr(schema.STUDY_BENCH, _bench(searcher, seed, cap))
    for i in range(n_trials):
        params = {"filters": int(rng.integers(2, 33)), "dropout": round(float(rng.integers(0, 6)) / 10, 1),
                  "learning_rate": float(rng.choice([1e-2, 1e-3]))}
        n_params = 150 * params["filters"] + int(rng.integers(0, 100))
        over = i % 5 == 4  # a model over the cap, better than anything feasible
        if over:
            n_params += CAP
            params["dropout"] = 0.0
        loss = round(1.3 - 0.25 * math.log10(n_params) + params["dropout"] / 4
                     + 0.1 * rng.random() - 0.2 * over, 4)
        state = TrialState.PRUNED if i % 6 == 3 else TrialState.COMPLETE
        epochs = 2 if state == TrialState.PRUNED else 5
        attrs = {schema.T_EPOCHS: epochs, schema.T_PARAMS: n_params, schema.T_FIT: 1.0,
                 schema.T_WALL: 1.5, schema.T_VAL_ACC: round(1 - loss / 3, 4)}
        inter = {e: loss + 0.05 * (epochs - e) for e in range(1, epochs + 1)}
        excess = float(n_params - cap) if cap is not None else None
        system = {_CONSTRAINTS_KEY: [excess]} if list_form and excess is not None else None
        study.add_trial(create_trial(
            state=state, values=[loss, n_params] if state == TrialState.COMPLETE else None,
            params=params, distributions=DISTS, user_attrs=attrs, intermediate_values=inter,
            system_attrs=system,
            constraints={"max_params": excess} if excess is not None and not list_form else None))
    study.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={},
                                 user_attrs={schema.T_EPOCHS: 1}))
    study.set_user_attr("retrain_front", [
        {"trial": t.number, "params": t.params, "n_params": int(t.values[1]), "val_loss": t.values[0],
         "test_accuracy": round(1 - t.values[0] / 2, 4), "test_loss": t.values[0] + 0.05}
        for t in study.best_trials])
    return study


def _add_single(url: str, searcher: str, seed: int) -> None:
    """A single-objective run of the same searcher (another study name): the model to beat."""
    study = optuna.create_study(storage=url, study_name=f"{DATASET}-{searcher}-single-s{seed}",
                                direction="minimize")
    study.set_user_attr(schema.STUDY_BENCH, dict(kind=schema.KIND_SEARCH, searcher=searcher,
                                                 seed=seed, dataset=DATASET, budget_epochs=BUDGET,
                                                 backend=SEARCHERS[searcher]))
    study.set_user_attr(schema.STUDY_RETRAIN, dict(test_accuracy=0.70 + 0.01 * seed, test_loss=0.6,
                                                   n_params=4000 + 100 * seed, params={}, epochs=5))
    for i in range(4):
        study.add_trial(create_trial(value=0.8 + 0.01 * i, params={"dropout": 0.1 * i},
                                     distributions={"dropout": FloatDistribution(0.0, 0.5)},
                                     user_attrs={schema.T_EPOCHS: 5}))


def _add_baseline(url: str, seed: int, val_loss: float | None = 0.95) -> None:
    study = optuna.create_study(storage=url, study_name=f"{DATASET}-baseline-s{seed}")
    bench = dict(kind=schema.KIND_BASELINE, dataset=DATASET, seed=seed)
    if val_loss is not None:
        bench["val_loss"] = val_loss + 0.01 * seed
    study.set_user_attr(schema.STUDY_BENCH, bench)
    study.set_user_attr(schema.STUDY_RETRAIN, dict(test_accuracy=0.60 + 0.01 * seed, test_loss=0.9,
                                                   n_params=860, params=None, epochs=8))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('pareto') / 'studies.db'}"
    for searcher, seeds in SEEDS.items():
        for seed in seeds:
            # KerasTuner's mirrored runs in Optuna's old list form (constraints_func), the
            # Optuna-backed ones through the constraint API: the report reads both
            _add_multi(url, searcher, seed, CAP, list_form=SEARCHERS[searcher] == "keras_tuner")
    for seed in (0, 1):
        _add_single(url, "random", seed)
        _add_baseline(url, seed)
    return url


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out")
    md = write_report(store, out=out / "RESULTS.md", plots_dir=out / "results")
    return out, md.read_text(encoding="utf-8")


def _studies(url: str) -> dict[tuple[str, int], optuna.Study]:
    return {(s, seed): optuna.load_study(study_name=schema.study_name(DATASET, s, seed), storage=url)
            for s, seeds in SEEDS.items() for seed in seeds}


def _runs(url: str) -> dict[tuple[str, int], pareto.Run]:
    group = collect(url)[DATASET]
    return {(s, r.seed): r for s in SEEDS for r in group.runs[_label(s)]}


def _infeasible(study: optuna.Study) -> set[int]:
    return {t.number for t in study.trials if t.state == TrialState.COMPLETE
            and any(c > 0 for c in t.constraints.values())}


def _section(md: str, heading: str) -> str:
    start = md.index(heading)
    end = md.find("\n#### ", start + len(heading))
    end2 = md.find("\n### ", start + len(heading))
    ends = [e for e in (end, end2) if e != -1]
    return md[start:min(ends)] if ends else md[start:]


def _rows(section: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    return [[c.strip() for c in row] for row in rows[1:]]


def test_front_is_optunas_best_trials_and_never_infeasible(store):
    studies, runs = _studies(store), _runs(store)
    for key, study in studies.items():
        ours = [p.trial for p in pareto.front([runs[key]])]
        theirs = sorted(study.best_trials, key=lambda t: (t.values[1], t.values[0], t.number))
        assert ours == [t.number for t in theirs], key
        bad = _infeasible(study)
        assert bad and not bad & set(ours), key
        # the test means something: without the constraint an infeasible trial is on the front
        unconstrained = optuna.create_study(directions=["minimize", "minimize"])
        unconstrained.add_trials([create_trial(values=t.values) for t in study.trials
                                  if t.state == TrialState.COMPLETE])
        assert max(t.values[1] for t in unconstrained.best_trials) > CAP, key
        assert all(p.retrain is not None for p in pareto.front([runs[key]]))


def _optuna_volume(study: optuna.Study, ref: np.ndarray) -> float:
    pts = np.array([[t.values[0], math.log10(t.values[1])] for t in study.best_trials])
    return float(compute_hypervolume(pts[np.all(pts <= ref, axis=1)].reshape(-1, 2), ref))


def test_reference_point_and_hypervolume_match_optuna(store):
    studies, runs = _studies(store), _runs(store)
    ref = pareto.reference_point(list(runs.values()))
    assert ref is not None
    assert ref.val_loss == pytest.approx(math.log(CLASSES)) and ref.n_params == CAP
    point = np.array([math.log(CLASSES), math.log10(CAP)])
    volumes = {}
    for key, study in studies.items():
        volumes[key] = pareto.run_hypervolume(runs[key], ref)
        assert volumes[key] == pytest.approx(_optuna_volume(study, point), rel=1e-12), key
        assert volumes[key] > 0
    # one point, by hand: (ln K - loss) x (log10 cap - log10 n)
    assert pareto.hypervolume([(1.0, 600)], ref) == pytest.approx(
        (math.log(CLASSES) - 1.0) * (math.log10(CAP) - math.log10(600)))
    # points beyond the reference add nothing, and do not raise as Optuna's function would
    assert pareto.hypervolume([(1.0, 600), (0.1, 10 * CAP), (2.0, 10)], ref) == pytest.approx(
        pareto.hypervolume([(1.0, 600)], ref))
    for searcher, seeds in SEEDS.items():
        v = pareto.searcher_volume([runs[(searcher, s)] for s in seeds], ref)
        assert v.volumes == [volumes[(searcher, s)] for s in seeds]
        assert v.spread()[0] == pytest.approx(float(np.median(v.volumes)))


def test_section_lists_fronts_medians_and_comparisons(store, report):
    out, md = report
    studies, runs = _studies(store), _runs(store)
    ref = pareto.reference_point(list(runs.values()))
    assert ref is not None
    section = _section(md, "#### Hypervolume per searcher")
    assert f"val_loss = {math.log(CLASSES):.4f}" in section and f"parameters = {CAP}" in section
    table = {r[0]: r for r in _rows(section)}
    point = np.array([math.log(CLASSES), math.log10(CAP)])
    for searcher, seeds in SEEDS.items():
        vols = [_optuna_volume(studies[(searcher, s)], point) for s in seeds]
        row = table[_label(searcher)]
        assert row[2] == str(len(seeds))
        assert row[3] == f"{np.median(vols):.4f}"
        assert row[5] == f"{min(vols):.4f}–{max(vols):.4f}"
    assert "baseline (one point per seed)" in table
    # the front: each searcher's union over its seeds, nothing infeasible
    front_rows = _rows(_section(md, "#### Pareto-optimal configurations"))
    for searcher, seeds in SEEDS.items():
        pooled = [(s, t) for s in seeds for t in studies[(searcher, s)].best_trials]
        expect = sorted((int(t.values[1]), t.values[0], s, t.number) for s, t in pooled
                        if not any(u.values[0] <= t.values[0] and u.values[1] <= t.values[1]
                                   and u.values != t.values for _, u in pooled))
        got = [(int(r[4]), float(r[3]), int(r[1]), int(r[2])) for r in front_rows
               if r[0] == _label(searcher)]
        assert [(n, round(v, 4), s, i) for n, v, s, i in expect] == got
        for _, _, s, i in got:
            assert i not in _infeasible(studies[(searcher, s)])
            assert max(n for n, *_ in got) <= CAP
    label = {_label(s): s for s in SEEDS}
    for r in front_rows:  # retrained: test accuracy as the run's retrain_front records it
        attr = studies[(label[r[0]], int(r[1]))].user_attrs["retrain_front"]
        assert r[5] == f"{next(x for x in attr if x['trial'] == int(r[2]))['test_accuracy']:.4f}"
    # smaller and at least as accurate: against each baseline and single-objective best
    smaller = _section(md, "#### Smaller and at least as accurate?")
    refs = {r[0]: r for r in _rows(smaller)}
    assert set(refs) == {"baseline s0", "baseline s1", "random s0 (tuned on val_loss)",
                         "random s1 (tuned on val_loss)"}
    retrained = [row for st in studies.values() for row in st.user_attrs["retrain_front"]]
    beaten = 0
    for name, row in refs.items():
        n, acc = int(row[1]), float(row[2])
        ok = [c for c in retrained if c["n_params"] < n and c["test_accuracy"] >= acc]
        beaten += bool(ok)
        assert row[4] == (str(min(c["n_params"] for c in ok)) if ok else "—"), name
    assert f"{beaten} of 4 reference models" in smaller
    png = out / "results" / f"{DATASET}_pareto.png"
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert f"](results/{DATASET}_pareto.png)" in md


def test_single_objective_sections_read_the_first_objective(store, report):
    _, md = report
    studies = _studies(store)
    search = {r[0]: r for r in _rows(_section(md, "### Search"))}
    for searcher, seeds in SEEDS.items():
        best = [min(t.values[0] for t in studies[(searcher, s)].trials
                    if t.state == TrialState.COMPLETE and not any(c > 0 for c in t.constraints.values()))
                for s in seeds]
        assert search[_label(searcher)][3].startswith(f"{np.median(best):.4f} ")
    # the single-objective runs of `random` stay apart from its multi-objective ones
    assert search["random"][2] == "2"
    assert "### Retrained best configurations (test split)" in md
    assert "### Hyperparameter importances" in md
    assert "### Targets" in md


def test_no_cap_uses_the_largest_model_and_missing_baseline_loss(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    for seed in (0, 1):
        _add_multi(url, "optuna", seed, None)
    _add_baseline(url, 0, val_loss=None)
    runs = collect(url)[DATASET].runs[_label("optuna")]
    ref = pareto.reference_point(runs)
    assert ref is not None
    largest = max(t.values[1] for r in runs for t in r.trials if t.state == TrialState.COMPLETE)
    assert ref.n_params == largest and "no size cap" in ref.n_params_from
    for r in runs:  # no constraint: the front is best_trials over every COMPLETE trial
        study = optuna.load_study(study_name=r.name, storage=url)
        assert {p.trial for p in pareto.front([r])} == {t.number for t in study.best_trials}
    md = write_report(url, out=tmp_path / "RESULTS.md", plots_dir=tmp_path / "results").read_text()
    assert "### Accuracy against model size" in md
    assert "no reference model" in md or "reference models have" in md
    assert re.search(r"\| optuna \[val_loss, params\] \| optuna \| 2 \| \d", md)
    assert (tmp_path / "results" / f"{DATASET}_pareto.png").is_file()


def test_single_objective_store_has_no_section(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    _add_single(url, "random", 0)
    md = write_report(url, out=tmp_path / "RESULTS.md", plots_dir=tmp_path / "results").read_text()
    assert "Accuracy against model size" not in md
    assert not (tmp_path / "results" / f"{DATASET}_pareto.png").exists()
