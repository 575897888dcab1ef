"""A benchmark's seeds are independent, reproducible runs for every searcher.

KerasTuner's oracles draw the i-th value of a run from ``seed + i`` and take seed 0 as
"random"; the searchers' ``tuner_kwargs`` map run seeds so that neither shows (see
``searchers.base.keras_tuner_seed``). Checked on KerasTuner's real oracles."""
from __future__ import annotations

import tempfile
from typing import Any

import pytest

from models.space import SEARCH_SPACE
from searchers.base import SearchSettings, keras_tuner_seed
from searchers.registry import SEARCHERS


def _declare(hp: Any) -> None:
    for p in SEARCH_SPACE:
        p.declare(hp)


def _proposals(name: str, seed: int, n: int = 4) -> list[tuple]:
    """The first ``n`` configurations the searcher's own tuner proposes for a run seed."""
    searcher = SEARCHERS[name]
    tuner = searcher.tuner_class()(
        hypermodel=_declare, objective="val_loss", directory=tempfile.mkdtemp(),
        project_name="p", overwrite=True,
        **searcher.tuner_kwargs(SearchSettings(seed=seed, epochs_per_trial=9)))
    oracle, found = tuner.oracle, []
    oracle.verbose = 0
    for _ in range(n):
        trial = oracle.create_trial("t")
        found.append(tuple(sorted((k, v) for k, v in trial.hyperparameters.values.items()
                                  if not k.startswith("tuner/"))))
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return found


@pytest.mark.parametrize("name", ["random", "hyperband", "bayesian"])
def test_keras_tuner_searchers_seeds_are_reproducible_and_independent(name: str) -> None:
    assert _proposals(name, 0) == _proposals(name, 0)        # seed 0 too (KerasTuner: random)
    shift = len(SEARCH_SPACE)                                 # one trial's draws
    one, other = _proposals(name, 1), _proposals(name, 1 + shift)
    assert not set(one) & set(other)   # unmapped, 1 + 11 re-proposes 1's trials, shifted


def test_keras_tuner_seed_is_valid_and_distinct() -> None:
    seeds = [keras_tuner_seed(s) for s in (0, 1, 2, 99, 4_294_967_290)]
    assert all(0 < s < 2**32 for s in seeds) and len(set(seeds)) == len(seeds)
