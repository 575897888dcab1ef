"""TPE: the Optuna-backed tuner with Optuna's TPESampler, no pruning."""
from searchers.optuna_backed import OptunaBacked


class TPE(OptunaBacked):
    name = "tpe"
    summary = "Optuna TPESampler through the KerasTuner API"
    sampler = "tpe"
    pruner = "none"
