"""The report's "Across data sets": normalised regret, ranks, Friedman and Nemenyi over
(data set, seed) blocks, from a hand-built store whose order is known."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from bench.core import schema
from bench.report import across
from bench.report.collect import collect
from bench.report.results import best_within, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

SEEDS = range(8)
# per data set: a loss scale; per searcher: its best loss at the full budget, as a share
LEVELS = {"optuna": 0.0, "hyperband": 0.5, "random": 1.0}
SCALES = {"toon": 1.0, "digits": 0.1}


def _search(url: str, dataset: str, searcher: str, seed: int) -> None:
    study = optuna.create_study(storage=url, study_name=f"{dataset}-{searcher}-s{seed}")
    study.set_user_attr(schema.STUDY_BENCH, dict(
        kind=schema.KIND_SEARCH, searcher=searcher, seed=seed, dataset=dataset,
        budget_epochs=20, backend="optuna" if searcher == "optuna" else "keras_tuner"))
    base = SCALES[dataset] * (1 + LEVELS[searcher] + 0.01 * seed)
    # two trials of 10 epochs: the second (at the full budget) is the run's best
    for i, loss in enumerate((base + 0.5, base)):
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=loss, params={"x": 0.1 * i},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs={schema.T_EPOCHS: 10, schema.T_FIT: 1.0, schema.T_WALL: 1.1}))


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('across') / 's.db'}"
    for dataset in SCALES:
        for searcher in LEVELS:
            for seed in SEEDS:
                _search(url, dataset, searcher, seed)
    return url


def test_regret_ranks_and_tests_over_the_blocks(url):
    data = collect(url)
    result = across.compare({d: g.runs for d, g in data.items()}, best_within)
    assert result is not None
    assert result.blocks == 2 * len(SEEDS) and result.datasets == ["digits", "toon"]
    # optuna is every block's best, random its worst: ranks 1, 2, 3 exactly
    assert result.final_rank == {"optuna": 1.0, "hyperband": 2.0, "random": 3.0}
    # regret 0 is the best any run found; 1 is RandomSearch's median run, on either scale
    assert result.regret["optuna"] == pytest.approx(0.035 / 1.035, abs=0.02)
    assert result.regret["random"] == pytest.approx(1.0, abs=0.02)
    assert result.friedman_p < 1e-4
    assert result.nemenyi.loc["optuna", "random"] < 0.05
    assert result.nemenyi.loc["optuna", "hyperband"] > result.nemenyi.loc["optuna", "random"]


def test_too_few_common_searchers_is_no_test(url):
    data = collect(url)
    runs = {d: {s: r for s, r in g.runs.items() if s != "random"} for d, g in data.items()}
    assert across.compare(runs, best_within) is None  # no RandomSearch to scale by


def test_the_answer_has_the_section_and_its_diagram(url, tmp_path):
    out = write_report(url, out=tmp_path / "R.md", plots_dir=tmp_path / "p")
    text = out.read_text()
    answer = text.split("## Data set")[0]
    assert "### Across data sets" in answer
    assert "**Across data sets, real runs:** 16 (data set, seed) blocks over `digits`, `toon`" in answer
    assert "`optuna` and `random` (p = " in answer
    assert (tmp_path / "p" / "across_real_cd.png").read_bytes().startswith(b"\x89PNG")
