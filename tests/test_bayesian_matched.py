"""KerasTuner's BayesianOptimization at its default is RandomSearch for its first 33
trials; the `bayesian5` variant hands over to the Gaussian process after 5, like TPE."""
from __future__ import annotations

import optuna

from bench.run.runner import run_search
from searchers.base import SearchSettings
from searchers.optuna_components import TPE_STARTUP_TRIALS
from searchers.registry import get_searcher

TRIALS = TPE_STARTUP_TRIALS + 1


def _params(quick_config, searcher: str) -> list[dict]:
    cfg = quick_config(searcher, epochs_per_trial=1, budget_epochs=TRIALS, study=searcher)
    run_search(cfg)
    study = optuna.load_study(study_name=searcher, storage=cfg.storage)
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def test_matched_start_hands_over_to_the_gaussian_process(quick_config) -> None:
    settings = SearchSettings(seed=0, epochs_per_trial=1)
    assert get_searcher("bayesian5").tuner_kwargs(settings)["num_initial_points"] == TPE_STARTUP_TRIALS
    assert "num_initial_points" not in get_searcher("bayesian").tuner_kwargs(settings)
    random, default, matched = (_params(quick_config, s)
                                for s in ("random", "bayesian", "bayesian5"))
    assert len(random) == len(default) == len(matched) == TRIALS
    assert default == random  # the default: still random draws, the same ones
    assert matched[:TPE_STARTUP_TRIALS] == random[:TPE_STARTUP_TRIALS]
    assert matched[TPE_STARTUP_TRIALS] != random[TPE_STARTUP_TRIALS]  # the GP proposed it
