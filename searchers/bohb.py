"""BOHB-like: TPE proposals with Optuna's Hyperband pruner stopping weak trials early."""
from searchers.optuna_backed import OptunaBacked


class BOHB(OptunaBacked):
    name = "bohb"
    summary = "Optuna TPESampler + HyperbandPruner (BOHB-like)"
    sampler = "tpe"
    pruner = "hyperband"
