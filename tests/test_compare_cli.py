"""The real ``compare`` + ``report`` commands on a tiny store with COMPLETE, PRUNED and
FAIL trials; the report's numbers are checked against the study store."""
from __future__ import annotations

import itertools
import re
import statistics

import optuna
import pytest
from optuna.trial import TrialState

import models
from bench import cli
from bench.core import schema


@pytest.fixture
def flaky_builds(monkeypatch):
    """Every fifth model build after the first raises, so some trials FAIL."""
    real = models.make_build_model
    calls = itertools.count()

    def factory(shape, n):
        build = real(shape, n)

        def build_model(hp):
            if next(calls) % 5 == 3:
                raise RuntimeError("deliberate build failure")
            return build(hp)
        return build_model
    monkeypatch.setattr(models, "make_build_model", factory)


def _row(markdown: str, searcher: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == searcher and len(cells) > 8:
            return cells
    raise AssertionError(f"no table row for {searcher}")


def test_compare_then_report_matches_store(workdir, storage_url, flaky_builds, capsys):
    # --trials-per-process 0: the flaky builds are patched into this process
    rc = cli.main(["compare", "--searchers", "random,bohb", "--seeds", "2", "--preset", "quick",
                   "--budget-epochs", "8", "--storage", storage_url, "--report", "--no-retrain",
                   "--trials-per-process", "0"])
    assert rc == 0
    text = (workdir / "RESULTS.md").read_text()
    assert (workdir / "results" / "toon_anytime.png").stat().st_size > 1000
    all_states = []
    for searcher in ("random", "bohb"):
        studies = [optuna.load_study(study_name=f"toon-{searcher}-s{s}", storage=storage_url)
                   for s in (0, 1)]
        trials = [t for st in studies for t in st.trials]
        all_states += [t.state for t in trials]
        counts = [sum(t.state == s for t in trials)
                  for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        cells = _row(text, searcher)
        assert " / ".join(map(str, counts)) in cells, (cells, counts)
        bests = [min(t.value for t in st.trials if t.state == TrialState.COMPLETE) for st in studies]
        shown = float(re.match(r"([0-9.]+)", cells[3]).group(1))
        assert shown == pytest.approx(statistics.median(bests), abs=1e-4)
        for st in studies:  # every run spent exactly its budget
            assert sum(t.user_attrs[schema.T_EPOCHS] for t in st.trials) == 8
    assert TrialState.PRUNED in all_states and TrialState.FAIL in all_states
    meta = optuna.load_study(study_name="toon-compare", storage=storage_url)
    assert meta.user_attrs[schema.STUDY_BENCH]["seeds"] == [0, 1]
    assert "python -m bench compare" in text


def test_every_sampler_and_pruner_name_runs(quick_config, storage_url):
    """Each --sampler / --pruner name the CLI offers builds a working search (gp needs torch)."""
    from bench.run.runner import run_search
    from searchers.errors import ConfigError
    from searchers.optuna_components import DEFAULT_PRUNER, DEFAULT_SAMPLER, PRUNERS, SAMPLERS

    pairs = list(zip([s for s in SAMPLERS if s != "gp"], itertools.cycle(PRUNERS)))
    for sampler, pruner in pairs + [("tpe", p) for p in PRUNERS if p not in dict(pairs).values()]:
        summary = run_search(quick_config("optuna", sampler=sampler, pruner=pruner, budget_epochs=4))
        assert summary.searcher == ("optuna" if (sampler, pruner) == (DEFAULT_SAMPLER, DEFAULT_PRUNER)
                                    else f"optuna-{sampler}-{pruner}")
        assert summary.epochs_used == 4
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="PyTorch"):
            run_search(quick_config("optuna", sampler="gp"))
