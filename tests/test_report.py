"""RESULTS.md from a small hand-built study store: figures checked against the store."""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from bench.core import schema
from bench.core import store as bench_store
from bench.core.errors import UserError
from bench.report.results import write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "toon"
BUDGET = 30
SEARCHERS = {"random": "keras_tuner", "hyperband": "keras_tuner", "tpe": "optuna"}
OFFSET = {"random": 0.30, "hyperband": 0.20, "tpe": 0.05}  # tpe finds good configs sooner
DISTS = {
    "conv_1_filters": IntDistribution(4, 16, step=4),
    "dropout_1_rate": FloatDistribution(0.0, 0.9, step=0.1),
    "learning_rate": CategoricalDistribution([1e-2, 1e-3, 1e-4]),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _study(url: str, name: str, bench: dict, retrain: dict | None = None) -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, direction=schema.DIRECTION)
    study.set_user_attr(schema.STUDY_BENCH, bench)
    if retrain is not None:
        study.set_user_attr(schema.STUDY_RETRAIN, retrain)
    return study


def _add_search(url: str, searcher: str, seed: int, n_trials: int = 7,
                retrain: bool = True, name: str | None = None) -> optuna.Study:
    rng = np.random.default_rng(100 * seed + len(searcher))
    bench = dict(kind=schema.KIND_SEARCH, searcher=searcher, seed=seed, dataset=DATASET,
                 budget_epochs=BUDGET, backend=SEARCHERS[searcher])
    acc = 0.90 + 0.01 * seed + (OFFSET["random"] - OFFSET[searcher]) / 10
    study = _study(url, name or schema.study_name(DATASET, searcher, seed), bench,
                   dict(test_accuracy=acc, test_loss=0.1 + OFFSET[searcher], params={"lr": 0.01},
                        n_params=10000 + 1000 * seed, epochs=5) if retrain else None)
    for i in range(n_trials):
        params = {"conv_1_filters": int(rng.choice([4, 8, 12, 16])),
                  "dropout_1_rate": round(float(rng.integers(0, 10)) / 10, 1),
                  "learning_rate": float(rng.choice([1e-2, 1e-3, 1e-4]))}
        loss = round(OFFSET[searcher] + params["dropout_1_rate"] + 0.1 * rng.random(), 4)
        state = {2: TrialState.PRUNED, 5: TrialState.FAIL}.get(i, TrialState.COMPLETE)
        epochs = {TrialState.PRUNED: 2, TrialState.FAIL: 1}.get(state, 5)
        fit = round(1.0 + rng.random(), 3)
        attrs = {schema.T_EPOCHS: epochs, schema.T_FIT: fit,
                 schema.T_WALL: round(fit + (0.2 if SEARCHERS[searcher] == "optuna" else 0.6)
                                      + 0.1 * rng.random(), 3),
                 schema.T_VAL_ACC: round(1.0 - loss / 2, 4)}
        inter = {e: loss + 0.05 * (epochs - e) for e in range(1, epochs + 1)}
        study.add_trial(create_trial(
            state=state, value=loss if state == TrialState.COMPLETE else None, params=params,
            distributions=DISTS, user_attrs=attrs,
            intermediate_values=inter if state != TrialState.FAIL else {}))
    return study


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'studies.db'}"
    for searcher in SEARCHERS:
        for seed in (0, 1):
            _add_search(url, searcher, seed)
    for seed in (0, 1):
        _study(url, f"{DATASET}-baseline-s{seed}",
               dict(kind=schema.KIND_BASELINE, dataset=DATASET, seed=seed),
               dict(test_accuracy=0.93 + 0.01 * seed, test_loss=0.24, n_params=14620, params={}))
    _study(url, f"{DATASET}-compare",
           dict(kind=schema.KIND_COMPARE, dataset=DATASET, command="bench compare --preset tiny",
                wall_seconds=123.4, machine={"cpu": "test"}, versions={"optuna": "5.0.0"},
                searchers=list(SEARCHERS), seeds=[0, 1], budget_epochs=BUDGET, preset="tiny"))
    return url


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "RESULTS.md"
    path = write_report(store, out, out.parent / "results")
    return path, path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- independent figures
def _runs(url: str) -> dict[str, list[list]]:
    """searcher -> per seed, its trials in the order they were added."""
    runs: dict[str, list[list]] = {}
    for s in sorted(optuna.get_all_study_summaries(url, include_best_trial=False),
                    key=lambda s: s.study_name):
        bench = s.user_attrs[schema.STUDY_BENCH]
        if bench["kind"] == schema.KIND_SEARCH:
            trials = optuna.load_study(study_name=s.study_name, storage=url).trials
            runs.setdefault(bench["searcher"], []).append(sorted(trials, key=lambda t: t.number))
    return runs


def _best(trials) -> optuna.trial.FrozenTrial:
    return min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)


def _epochs_to(trials, target: float) -> float:
    used, best = 0, math.inf
    for t in trials:
        used += t.user_attrs[schema.T_EPOCHS]
        if t.state == TrialState.COMPLETE:
            best = min(best, t.value)
        if best <= target:
            return used
    return math.inf


def _table_after(md: str, heading: str) -> list[list[str]]:
    """Cells of the first table below ``heading`` (header row included)."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return [rows[0]] + rows[2:]


def _first_float(cell: str) -> float:
    return float(re.match(r"-?[0-9.]+", cell).group())


# ---------------------------------------------------------------- tests
def test_search_table_matches_store(store, report):
    _, md = report
    runs = _runs(store)
    header, *rows = _table_after(md, "### Search")
    table = {r[0]: dict(zip(header, r)) for r in rows}
    assert sorted(table) == sorted(SEARCHERS)
    target = statistics.median(_best(t).value for t in runs["random"])
    assert f"**{target:.4f}**" in md
    for searcher, seeds in runs.items():
        row = table[searcher]
        assert row["seeds"] == "2"
        assert row["backend"] == SEARCHERS[searcher]
        bests = [_best(t).value for t in seeds]
        assert _first_float(row["best val_loss"]) == pytest.approx(statistics.median(bests),
                                                                   abs=5e-5)
        assert f"[{min(bests):.4f}–{max(bests):.4f}]" in row["best val_loss"]
        accs = [_best(t).user_attrs[schema.T_VAL_ACC] for t in seeds]
        assert _first_float(row["val_accuracy of best"]) == pytest.approx(
            statistics.median(accs), abs=5e-5)
        counts = [sum(t.state == s for tr in seeds for t in tr)
                  for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        assert row["complete / pruned / failed"] == " / ".join(map(str, counts))
        overhead = statistics.median(t.user_attrs[schema.T_WALL] - t.user_attrs[schema.T_FIT]
                                     for tr in seeds for t in tr if t.state != TrialState.FAIL)
        assert float(row["overhead s/trial"]) == pytest.approx(overhead, abs=5e-4)
        assert float(row["budget epochs"]) == BUDGET
        used = statistics.median(sum(t.user_attrs[schema.T_EPOCHS] for t in tr) for tr in seeds)
        assert float(row["epochs used"]) == used
        reach = statistics.median(_epochs_to(tr, target) for tr in seeds)
        if math.isinf(reach):
            assert row["epochs to target"] == "not reached"
        else:
            assert float(row["epochs to target"]) == reach
        assert row["runs reaching target"] == (
            f"{sum(math.isfinite(_epochs_to(tr, target)) for tr in seeds)}/2")


def test_plots_exist_and_are_png(report):
    path, md = report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == ["results/toon_anytime.png", "results/toon_importance.png"]
    for link in links:
        png = path.parent / link
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert png.stat().st_size > 1000


def test_retrain_baseline_importances_targets_provenance(store, report):
    _, md = report
    header, *rows = _table_after(md, "### Retrained best configurations")
    table = {r[0]: dict(zip(header, r)) for r in rows}
    assert list(table) == ["baseline", "hyperband", "random", "tpe"]
    assert float(table["baseline"]["test accuracy"]) == pytest.approx(0.935)
    assert table["baseline"]["parameters"] == "14620"
    assert table["tpe"]["parameters"] == "10500"
    header, *rows = _table_after(md, "### Hyperparameter importances")
    assert sorted(r[0] for r in rows) == sorted(DISTS)
    assert sum(float(r[1]) for r in rows) == pytest.approx(1.0, abs=2e-3)
    assert "30 pooled COMPLETE trials" in md
    header, *rows = _table_after(md, "### Targets")
    status = [r[1] for r in rows]
    # (1) from the store: tpe (the only Optuna searcher) must reach RandomSearch's target
    # within BUDGET / 3 epochs (median over seeds) and be no worse than the best KT searcher
    runs = _runs(store)
    target = statistics.median(_best(t).value for t in runs["random"])
    to_target = statistics.median(_epochs_to(t, target) for t in runs["tpe"])
    best = {s: statistics.median(_best(t).value for t in seeds) for s, seeds in runs.items()}
    met = to_target <= BUDGET / 3 and best["tpe"] <= min(best["random"], best["hyperband"])
    assert (to_target, met) == (5, True)  # tpe's first trial already beats the target
    assert status == ["MET", "MET", "NOT MEASURED"]  # (2): 0.2 vs 0.6 s overhead; (3): no study
    assert f"reaches {target:.4f} after 5 epochs" in rows[0][2]
    assert "bench compare --preset tiny" in md and "123.4 s" in md and "optuna 5.0.0" in md


def test_markdown_is_deterministic(store, report, tmp_path):
    path, md = report
    again = write_report(store, path, path.parent / "results").read_text(encoding="utf-8")
    assert again == md


def test_empty_store_is_a_user_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(storage=url, study_name="not-a-benchmark")  # no bench attr
    with pytest.raises(UserError, match="no benchmark studies in"):
        write_report(url, tmp_path / "RESULTS.md", tmp_path / "results")
    with pytest.raises(UserError, match="does not exist"):
        write_report(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "R.md")
    assert not (tmp_path / "missing.db").exists()


def test_small_store_guards_and_extra_sections(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _add_search(url, "tpe", 0, n_trials=2, retrain=False)   # 2 COMPLETE trials, no random
    _study(url, f"{DATASET}-throughput",
           dict(kind=schema.KIND_THROUGHPUT, dataset=DATASET, bare_images_per_s=100.0,
                trial_images_per_s=97.0, ratio=0.97, command="bench throughput",
                batch_size=64))
    _study(url, f"{DATASET}-memory-p20",
           dict(kind="memory", dataset=DATASET, trials=3, loop="bench run", trials_per_process=20,
                searchers={"tpe": dict(trials=3, processes=1, rss_mb=[500, 510, 512],
                                       rss_at_window_mb=510, rss_at_last_mb=512, growth_mb=12,
                                       peak_trial_process_mb=515, peak_launcher_mb=90,
                                       disk_mb_per_100_trials=4.25,
                                       checkpoint_mb_per_100_trials=1.5)},
                command="bench memory"))
    _study(url, f"{DATASET}-overhead-quick",
           dict(kind=schema.KIND_OVERHEAD, dataset=DATASET, preset="quick", budget_epochs=8,
                seed=0, command="bench overhead",
                results=[dict(searcher=s, trials=4, median_overhead_s=m, mean_overhead_s=m,
                              components_s={"build": 0.03, "gc": g, "store_w": 0.01,
                                            "store_r": 0.002},
                              after_wall_s={"store_w": 0.02}, sql_commits={"overhead": 9})
                         for s, m, g in (("random", 0.4, 0.2), ("tpe", 0.19, 0.02))],
                verdicts=[dict(text="tpe: 0.48x random's", met=True)]))
    _study(url, f"{DATASET}-scaling",
           dict(kind="scaling", dataset=DATASET, workers={"1": 60.0, "2": 110.0}, ratio=1.83,
                command="bench scaling"))
    md = write_report(url, tmp_path / "out" / "RESULTS.md",
                      tmp_path / "plots").read_text(encoding="utf-8")
    assert "Retrained" not in md
    assert "Not computed: 2 COMPLETE trials" in md
    assert "](../plots/toon_anytime.png)" in md
    header, *rows = _table_after(md, "### Targets")
    # (2) comes from the side-by-side overhead study, not from the runs' own times
    assert [r[1] for r in rows] == ["NOT MEASURED", "MET", "MET"]
    assert "preset `quick`: tpe: 0.48x random's (`bench overhead`" in rows[1][2]
    assert "ratio 0.970" in md
    assert "| tpe | 3 | 1 | 510 | 512 | 12 | 515 | 90 | 4.2 | 1.5 | — |" in md  # memory, disk
    assert "](../plots/toon_memory.png)" in md and (tmp_path / "plots" / "toon_memory.png").is_file()
    assert "| median overhead (wall - fit) | 0.400 | 0.190 |" in md
    assert "|   garbage collection | 0.200 | 0.020 |" in md
    assert "|   store writes and reads | 0.012 | 0.012 |" in md and "- tpe: 0.48x random's" in md
    assert "| 2 | 110.0 |" in md
    assert "bench scaling" in md


def test_seeds_are_distinct_runs_empty_studies_left_out_epochs_as_the_run_counts(tmp_path):
    """Three studies of seed 0 are one seed; studies without a finished trial are no run;
    `epochs used` counts like the run's summary (store.epochs_used: RUNNING trials too)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    runs = [_add_search(url, "tpe", 0, retrain=False, name=f"toon-tpe-s0-{i}") for i in range(3)]
    live = runs[0].ask()  # a trial still running (another worker) with 2 epochs reported
    live.report(0.9, 1)
    live.report(0.8, 2)
    runs[1].add_trial(create_trial(state=TrialState.FAIL, intermediate_values={1: 2.0}))
    bench = dict(kind=schema.KIND_SEARCH, searcher="tpe", seed=0, dataset=DATASET)
    _study(url, "toon-tpe-never-started", bench)
    _study(url, "toon-tpe-died-in-trial-1", bench).ask().report(1.5, 1)
    md = write_report(url, tmp_path / "RESULTS.md", tmp_path / "results").read_text("utf-8")
    header, *rows = _table_after(md, "### Search")
    row = dict(zip(header, rows[0]))
    assert len(rows) == 1 and row["seeds"] == "1 (3 runs)"
    loaded = [optuna.load_study(study_name=r.study_name, storage=url) for r in runs]
    used = [bench_store.epochs_used(st) for st in loaded]
    # by hand: finished trials' epochs_trained (or reported epochs), RUNNING's reported ones
    assert used == [sum(t.user_attrs.get(schema.T_EPOCHS, len(t.intermediate_values))
                        for t in st.trials) for st in loaded]
    assert used[0] == used[2] + 2 and used[1] == used[2] + 1
    assert float(row["epochs used"]) == statistics.median(used)
    finished = [t for st in loaded for t in st.trials if t.state != TrialState.RUNNING]
    assert row["complete / pruned / failed"] == " / ".join(
        str(sum(t.state == s for t in finished))
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    assert ("Left out: 2 studies with no finished trial (not counted as runs or seeds): "
            "`toon-tpe-died-in-trial-1`, `toon-tpe-never-started`.") in md


def test_overhead_target_ignores_failed_trials(tmp_path):
    """Target (2) on FAIL trials only is not a measurement: their time says how they failed."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    _add_search(url, "random", 0, retrain=False)
    tpe = _study(url, "toon-tpe-s0", dict(kind=schema.KIND_SEARCH, searcher="tpe", seed=0,
                                          dataset=DATASET, backend="optuna"))
    for _ in range(3):
        tpe.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
            schema.T_EPOCHS: 1, schema.T_WALL: 0.2, schema.T_FIT: 0.1}))
    md = write_report(url, tmp_path / "RESULTS.md", tmp_path / "results").read_text("utf-8")
    header, *rows = _table_after(md, "### Search")
    table = {r[0]: dict(zip(header, r)) for r in rows}
    assert table["tpe"]["overhead s/trial"] == "—"
    assert table["tpe"]["complete / pruned / failed"] == "0 / 0 / 3"
    random = optuna.load_study(study_name="toon-random-s0", storage=url).trials
    assert float(table["random"]["overhead s/trial"]) == pytest.approx(statistics.median(
        t.user_attrs[schema.T_WALL] - t.user_attrs[schema.T_FIT] for t in random
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)), abs=5e-4)
    _, *targets = _table_after(md, "### Targets")
    assert targets[1][1] == "NOT MEASURED" and "COMPLETE or PRUNED" in targets[1][2]


def test_report_hides_a_password_with_an_at_sign(tmp_path, monkeypatch, capsys):
    """A real store whose URL holds a password with '@' in it (percent-encoded, as
    SQLAlchemy needs it): RESULTS.md names the store without any part of the password."""
    from bench.cli import main
    from tests.private_postgres import PrivatePostgres
    pg = PrivatePostgres()  # trust auth: any password is accepted, and must be hidden
    try:
        url = pg.url.replace("postgres@", "postgres:p%40ss%40w0rd@", 1)
        monkeypatch.chdir(tmp_path)
        assert main(["run", "--searcher", "random", "--preset", "quick", "--budget-epochs", "2",
                     "--trials-per-process", "0", "--storage", url]) == 0
        md = write_report(url, tmp_path / "R.md", tmp_path / "r").read_text("utf-8")
    finally:
        pg.close()
    assert f"postgresql://postgres:***@127.0.0.1:{pg.port}/postgres" in md
    assert "| random |" in md  # the run is in the report
    printed = capsys.readouterr()
    for part in ("p%40ss", "p@ss", "w0rd", "40ss"):
        assert part not in md and part not in printed.out and part not in printed.err


def test_recorded_commands_lose_this_machines_paths() -> None:
    """No absolute path of a machine in a generated file, and the same text in every
    checkout: the report's own store shown as the report names it, any other path by its
    last part."""
    from bench.report import render
    line = ("python -m bench memory --storage sqlite:////work/x/results/studies.db "
            "--logdir /tmp/runs --searchers random,tpe@/tmp/before,tpe@/srv/old --out=/var/x.md")
    token = render.project_files.set(("results/studies.db",))
    try:
        assert render.machine_free(line) == (
            "python -m bench memory --storage sqlite:///results/studies.db --logdir <dir>/runs "
            "--searchers random,tpe@<dir>/before,tpe@<dir>/old --out=<dir>/x.md")
        assert render.machine_free("python -m bench run --storage sqlite:///studies.db") == (
            "python -m bench run --storage sqlite:///studies.db")  # relative: as it was
    finally:
        render.project_files.reset(token)
    assert render.machine_free("--storage sqlite:////work/x/results/studies.db") == (
        "--storage sqlite:///<dir>/studies.db")  # a report of another store


def test_trial_overhead_is_wall_minus_fit_of_finished_trials() -> None:
    import optuna
    from optuna.trial import TrialState

    from bench.core import schema, store

    def trial(state, **attrs):
        return optuna.trial.create_trial(state=state, user_attrs=attrs,
                                         value=1.0 if state == TrialState.COMPLETE else None)
    assert store.trial_overhead(trial(TrialState.COMPLETE, **{schema.T_WALL: 3.5, schema.T_FIT: 3.0})) == 0.5
    assert store.trial_overhead(trial(TrialState.PRUNED, **{schema.T_WALL: 2.0, schema.T_FIT: 1.25})) == 0.75
    assert store.trial_overhead(trial(TrialState.FAIL, **{schema.T_WALL: 9.0, schema.T_FIT: 1.0})) is None
    assert store.trial_overhead(trial(TrialState.COMPLETE, **{schema.T_WALL: 3.0})) is None
