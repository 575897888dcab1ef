"""RESULTS.md with replayed searches: their own section, statistics, never mixed with real runs."""
from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from bench.core import schema
from bench.report.results import collect, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "toon"
PRESET = "tiny"
BUDGET = 20                 # 4 trials of 5 epochs: each trial ends at another 25% of the budget
BACKEND = {"tpe": schema.BACKEND_OPTUNA, "random": schema.BACKEND_KERAS_TUNER}
# val_loss of trials 1..4 in completion order; seed s adds 0.01 * s. tpe is clearly better.
CURVE = {"tpe": [0.30, 0.25, 0.22, 0.20], "random": [0.60, 0.55, 0.50, 0.45]}
REPLAY_SEEDS = range(6)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DIST = {"x": FloatDistribution(0.0, 1.0)}


def _study(url: str, name: str, bench: dict) -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, direction=schema.DIRECTION)
    study.set_user_attr(schema.STUDY_BENCH, bench)
    return study


def _add_run(url: str, kind: str, searcher: str, seed: int, losses: list[float],
             pruned_first: bool = False) -> None:
    """A run of 5-epoch trials, added (and so completed) in order."""
    replay = kind == schema.KIND_REPLAY
    name = (f"{DATASET}-replay-{PRESET}-{searcher}-s{seed}" if replay
            else schema.study_name(DATASET, searcher, seed))
    bench = dict(kind=kind, searcher=searcher, backend=BACKEND[searcher], seed=seed,
                 dataset=DATASET, preset=PRESET, budget_epochs=BUDGET, epochs_per_trial=5)
    if replay:
        bench["record_study"] = f"{DATASET}-record-{PRESET}"
    study = _study(url, name, bench)
    for i, loss in enumerate(losses):
        state = TrialState.PRUNED if pruned_first and i == 0 else TrialState.COMPLETE
        epochs = 2 if state == TrialState.PRUNED else 5
        study.add_trial(create_trial(
            state=state, value=loss if state == TrialState.COMPLETE else None,
            params={"x": 0.1 * i}, distributions=DIST,
            intermediate_values={e: loss + 0.01 * (epochs - e) for e in range(1, epochs + 1)},
            user_attrs={schema.T_EPOCHS: epochs, schema.T_WALL: 1.0, schema.T_FIT: 0.9,
                        schema.T_VAL_ACC: 1 - loss, schema.T_PARAMS: 1000,
                        schema.T_SEARCHER: searcher, schema.T_SEED: seed}))


def _replay_losses(searcher: str, seed: int) -> list[float]:
    return [round(v + 0.01 * seed, 4) for v in CURVE[searcher]]


SURROGATE = {"model": "gbm", "spearman_best": 0.91, "per_epoch_rmse": 0.043,
             "candidates": {"gbm": {"spearman": 0.91, "rmse": 0.05},
                            "knn": {"spearman": 0.8, "rmse": 0.07}},
             "noise": {"repeat_sd": 0.02, "surrogate_sd": 0.021}}   # no mae, no held_out_configs


def _summary(url: str, surrogate: dict | None = SURROGATE, preset: str = PRESET) -> None:
    bench = dict(kind=schema.KIND_REPLAY_SUMMARY, dataset=DATASET, preset=preset,
                 command=f"bench replay --preset {preset}", wall_seconds=12.5,
                 machine="test box", searchers=list(CURVE), seeds=len(REPLAY_SEEDS),
                 record_study=f"{DATASET}-record-{preset}")
    if surrogate is not None:
        bench["surrogate"] = surrogate
    _study(url, f"{DATASET}-replay-{preset}", bench)


REAL = {("tpe", 0): [0.35, 0.24, 0.23, 0.21], ("tpe", 1): [0.5, 0.4, 0.4, 0.39],
        ("random", 0): [0.7, 0.52, 0.52, 0.48], ("random", 1): [0.62, 0.6, 0.58, 0.57]}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("replay")
    url = f"sqlite:///{root / 'studies.db'}"
    for (searcher, seed), losses in REAL.items():
        _add_run(url, schema.KIND_SEARCH, searcher, seed, losses)
    for searcher in CURVE:
        for seed in REPLAY_SEEDS:
            _add_run(url, schema.KIND_REPLAY, searcher, seed, _replay_losses(searcher, seed),
                     pruned_first=(searcher, seed) == ("random", 0))
    _summary(url)
    out = root / "out" / "RESULTS.md"
    return out, write_report(url, out, root / "out" / "results").read_text(encoding="utf-8")


def _section(md: str, heading: str) -> str:
    """From ``heading`` to the next heading of the same or a higher level."""
    start = md.index(heading)
    level = heading.split(" ")[0]
    rest = md[start + len(heading):]
    ends = [m.start() for m in re.finditer(r"^#{1,%d} " % len(level), rest, flags=re.M)]
    return heading + (rest[:ends[0]] if ends else rest)


def _table_after(md: str, heading: str) -> list[dict[str, str]]:
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return [dict(zip(rows[0], r)) for r in rows[2:]]


def test_replays_are_kept_apart_from_real_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _add_run(url, schema.KIND_SEARCH, "tpe", 0, REAL[("tpe", 0)])
    _add_run(url, schema.KIND_REPLAY, "tpe", 0, _replay_losses("tpe", 0))
    _add_run(url, schema.KIND_REPLAY, "random", 3, _replay_losses("random", 3))
    _study(url, f"{DATASET}-replay-{PRESET}-random-s9", dict(    # no finished trial
        kind=schema.KIND_REPLAY, searcher="random", seed=9, dataset=DATASET, preset=PRESET))
    _summary(url)
    group = collect(url)[DATASET]
    assert [r.name for rs in group.runs.values() for r in rs] == ["toon-tpe-s0"]
    assert {s: [r.seed for r in rs] for s, rs in group.replays[PRESET].items()} == {
        "random": [3], "tpe": [0]}
    assert group.replay_empty == {PRESET: [f"{DATASET}-replay-{PRESET}-random-s9"]}
    assert group.empty == {}
    assert [n for n, _ in group.extra[schema.KIND_REPLAY_SUMMARY]] == [f"{DATASET}-replay-{PRESET}"]
    assert group.replays[PRESET]["tpe"][0].preset == PRESET


def test_search_section_holds_only_real_runs(report):
    _, md = report
    search = _section(md, "### Search")
    assert "replay" not in search
    rows = {r["searcher"]: r for r in _table_after(md, "### Search")}
    assert sorted(rows) == ["random", "tpe"] and {r["seeds"] for r in rows.values()} == {"2"}
    assert float(rows["tpe"]["best val_loss"].split()[0]) == pytest.approx(
        statistics.median([0.21, 0.39]))
    real = _section(md, "### Statistics over seeds")
    assert "Left out of the statistics (fewer than 5 seeds): `random` (2), `tpe` (2)." in real
    assert "Too few seeds for a test: at least two searchers need 5 seeds or more." in real


def test_replay_section_provenance_and_surrogate(report):
    _, md = report
    section = _section(md, f"### Replay, preset `{PRESET}`")
    assert f"Study `{DATASET}-replay-{PRESET}`:" in section
    assert "bench replay --preset tiny" in section and "12.5 s" in section
    assert f"study `{DATASET}-record-{PRESET}`" in section
    assert "| spearman_best | 0.91 |" in section and "| model | gbm |" in section
    assert "| candidates | rmse | spearman |" in section and "| knn | 0.07 | 0.8 |" in section
    assert "| surrogate_sd | 0.021 |" in section
    # after the real runs' sections, before the provenance of the real runs
    assert md.index("### Targets") < md.index(section) < md.index("### How this was produced")


def _best_within(losses: list[float], percent: int, pruned_first: bool = False) -> float:
    """By hand: trial i (5 epochs, 2 when pruned) ends at a known share of the 20 epochs."""
    epochs, best = 0, float("inf")
    for i, loss in enumerate(losses):
        pruned = pruned_first and i == 0
        epochs += 2 if pruned else 5
        if epochs > BUDGET * percent / 100:
            break
        if not pruned:
            best = min(best, loss)
    return best


def test_replay_statistics_at_budget_shares(report):
    _, md = report
    rows = _table_after(md, "#### Statistics over replayed seeds")
    assert [(r["budget"], r["searcher"]) for r in rows] == [
        (f"{p}%", s) for p in (25, 50, 100) for s in ("random", "tpe")]
    for row in rows:
        percent, searcher = int(row["budget"].rstrip("%")), row["searcher"]
        values = [_best_within(_replay_losses(searcher, s), percent,
                               pruned_first=(searcher, s) == ("random", 0)) for s in REPLAY_SEEDS]
        assert row["seeds"] == "6" and row["backend"] == BACKEND[searcher]
        assert int(row["no result yet"]) == sum(v == float("inf") for v in values)
        assert float(row["median best val_loss [95% CI]"].split()[0]) == pytest.approx(
            np.median(values), abs=5e-5)
        low, high = re.search(r"\[([0-9.]+)–([0-9.]+|not reached)\]",
                              row["median best val_loss [95% CI]"]).groups()
        assert float(low) <= np.median(values) <= float(high.replace("not reached", "inf"))
        assert float(row["mean rank"]) == (1.0 if searcher == "tpe" else 2.0)
    # random seed 0 pruned its first trial: nothing yet at 25%, still counted as a run
    assert rows[0]["no result yet"] == "1"
    assert rows[0]["median best val_loss [95% CI]"].endswith("–not reached]")


def test_replay_verdicts_and_rank_plot(report):
    path, md = report
    section = _section(md, f"### Replay, preset `{PRESET}`")
    for percent in (25, 50, 100):
        found = re.search(rf"- tpe beats random at {percent}% budget \(Mann-Whitney U one-sided, "
                          rf"Holm-adjusted p = ([0-9.e-]+), n = 6 vs 6\)", section)
        assert found, percent
        assert float(found.group(1)) < 0.05
    # 6 vs 6 without overlap: exact p = 1 / C(12, 6); Holm over both directions doubles it
    assert "Holm-adjusted p = 0.0022" in section
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", section)
    assert links == [f"results/{DATASET}_replay_{PRESET}_ranks.png"]
    png = path.parent / links[0]
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000


def test_replay_vs_real(report):
    _, md = report
    rows = {r["searcher"]: r for r in _table_after(md, "#### Replay vs real runs")}
    for searcher in CURVE:
        real = [_best_within(REAL[(searcher, s)], 100) for s in (0, 1)]
        replay = sorted(_best_within(_replay_losses(searcher, s), 100) for s in REPLAY_SEEDS)
        row = rows[searcher]
        assert (row["real runs"], row["replay runs"]) == ("2", "6")
        assert float(row["real median best"]) == pytest.approx(np.median(real), abs=5e-5)
        assert float(row["replay median best"]) == pytest.approx(np.median(replay), abs=5e-5)
        # 6 runs: the 5th percentile is the smallest value, the 95th the largest
        assert row["replay 5–95%"] == f"{replay[0]:.4f}–{replay[-1]:.4f}"
        inside = sum(replay[0] <= x <= replay[-1] for x in real)
        assert row["inside"] == f"{inside}/2"
    assert rows["tpe"]["inside"] == "1/2" and rows["random"]["inside"] == "1/2"
    assert ("rho = 1.00, no p-value for 2. The replay orders the searchers exactly as the real "
            "runs do (with 2 searchers this is no significant evidence either way).") in md


def test_markdown_is_deterministic(report, tmp_path):
    path, md = report
    url = f"sqlite:///{path.parent.parent / 'studies.db'}"
    assert write_report(url, path, path.parent / "results").read_text(encoding="utf-8") == md


def test_real_runs_with_enough_seeds_get_tests_and_odd_summaries_render(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    for searcher in CURVE:
        for seed in range(5):
            _add_run(url, schema.KIND_SEARCH, searcher, seed, _replay_losses(searcher, seed))
    _summary(url, surrogate=None, preset="quick")           # a summary without runs or figures
    md = write_report(url, tmp_path / "RESULTS.md", tmp_path / "results").read_text("utf-8")
    section = _section(md, "### Statistics over seeds")
    assert "Too few seeds" not in section
    assert "- tpe beats random at 100% budget (Mann-Whitney U one-sided" in section
    assert "](results/toon_ranks.png)" in section and (tmp_path / "results" / "toon_ranks.png").is_file()
    replay = _section(md, "### Replay, preset `quick`")
    assert "No surrogate fidelity figures recorded." in replay
    assert "No replay studies with a finished trial for this preset." in replay
    assert "Replay vs real" not in md


def test_answer_opens_the_report_with_the_winner_its_verdicts_and_epochs(report):
    _, md = report
    answer = _section(md, "## Answer")
    assert md.index("## Answer") < md.index(f"## Data set `{DATASET}`")
    # replay medians at 100%: tpe 0.20 + 0.01 * median(0..5), random 0.45 + 0.025
    assert ("- Lowest median best val_loss at 100% of the budget: `tpe` (optuna) 0.2250; "
            "best KerasTuner searcher `random` 0.4750.") in answer
    assert re.search(r"  - tpe beats random at 100% budget \(Mann-Whitney U one-sided, "
                     r"Holm-adjusted p = [0-9.e-]+, n = 6 vs 6\)", answer)
    # RandomSearch's median 0.475 is met by tpe's first trial (0.30..0.35): 5 of 20 epochs
    assert ("- `tpe` reaches RandomSearch's median full-budget quality (0.4750) after 5 epochs "
            "(median over seeds); within a third of the budget (6.7 epochs): target met.") in answer
    assert "**`toon`, real runs:** `tpe` median best val_loss 0.3000 over 2 seed(s)" in answer


def test_notes_beside_the_store_follow_the_answer(tmp_path):
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    _add_run(url, schema.KIND_SEARCH, "tpe", 0, REAL[("tpe", 0)])
    (tmp_path / "bench.notes.md").write_text("### How to read this\n\nProse the store lacks.\n")
    md = write_report(url, tmp_path / "R.md", tmp_path / "plots").read_text(encoding="utf-8")
    assert "\n### How to read this\n\nProse the store lacks.\n\n## Data set `toon`" in md
    (tmp_path / "bench.notes.md").unlink()
    assert "Prose" not in write_report(url, tmp_path / "R.md", tmp_path / "plots").read_text()
