"""Searchers by name. Adding a searcher: one new module, one line below."""
from __future__ import annotations

from searchers.base import Searcher
from searchers.bayesian import BayesianOptimization
from searchers.bayesian_matched import BayesianMatchedStart
from searchers.bohb import BOHB
from searchers.errors import ConfigError
from searchers.hyperband import Hyperband
from searchers.one_epoch import OneEpochTopKSearcher
from searchers.optuna_backed import Optuna
from searchers.random_search import RandomSearch
from searchers.tpe import TPE
from searchers.tpe_hyperband import TPEHyperbandSearcher

SEARCHERS: dict[str, Searcher] = {s.name: s for s in (
    RandomSearch(),
    Hyperband(),
    BayesianOptimization(),
    BayesianMatchedStart(),
    TPE(),
    BOHB(),
    Optuna(),
    TPEHyperbandSearcher(),
    OneEpochTopKSearcher(),
)}


def get_searcher(name: str) -> Searcher:
    try:
        return SEARCHERS[name]
    except KeyError:
        raise ConfigError(f"unknown searcher {name!r}; choose from {', '.join(SEARCHERS)}") from None
