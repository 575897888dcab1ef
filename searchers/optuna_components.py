"""Optuna samplers and pruners by name, for the CLI and the Optuna-backed searchers.

Defaults are engineering choices for short trials (a handful of epochs, tens of
trials); see RESULTS.md for the measurements behind them.
"""
from __future__ import annotations

from typing import Callable

import optuna

from searchers.errors import ConfigError

TPE_STARTUP_TRIALS = 5  # random trials before TPE models the space (`tpe`, `bohb`)
# The default Optuna-backed search (`optuna` with no --sampler/--pruner, and OptunaSearch
# with no sampler=/pruner=): chosen on the replay benchmark, RESULTS.md "Choosing the
# default". TPE with Optuna's own start-up (10 random trials), and successive halving from
# epoch 2 (rungs at epochs 2, 6, 18...; a trial goes on when it is in the best third of
# those that reached its rung). Measured for 15-epoch trials only.
DEFAULT_SAMPLER = "tpe10"
DEFAULT_PRUNER = "sha2"
SHA_MIN_RESOURCE = 2
SHA_REDUCTION_FACTOR = 3


def default_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)  # n_startup_trials=10: Optuna's default


def default_pruner() -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=SHA_MIN_RESOURCE,
                                                  reduction_factor=SHA_REDUCTION_FACTOR)

SamplerFactory = Callable[[int], optuna.samplers.BaseSampler]
PrunerFactory = Callable[[int], optuna.pruners.BasePruner]


def _gp(seed: int) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401 - Optuna's GPSampler runs on PyTorch
    except ImportError as exc:
        raise ConfigError("sampler 'gp' needs PyTorch: pip install torch (CPU build is enough)") from exc
    return optuna.samplers.GPSampler(seed=seed)


SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS),
    "tpe10": default_sampler,
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
    "gp": _gp,
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False),
}

# Pruners get the epochs of a full trial: the resource Hyperband / SHA divide up.
PRUNERS: dict[str, PrunerFactory] = {
    "none": lambda epochs: optuna.pruners.NopPruner(),
    "median": lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    "sha": lambda epochs: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    "sha2": lambda epochs: default_pruner(),
    "hyperband": lambda epochs: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=epochs, reduction_factor=3),
}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name](seed)


def make_pruner(name: str, epochs_per_trial: int) -> optuna.pruners.BasePruner:
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    return PRUNERS[name](epochs_per_trial)
