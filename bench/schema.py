"""Names shared by everything that writes or reads the study store.

One Optuna study per search run, named ``<dataset>-<searcher>-s<seed>``. Its user attr
``bench`` (a dict, see ``bench_attrs`` in bench/runner.py) records what makes runs
comparable; extra studies hold the baseline, the compare meta data and the throughput
measurement, told apart by ``bench["kind"]``.
"""
from __future__ import annotations

OBJECTIVE = "val_loss"
DIRECTION = "minimize"

# study user attr keys
STUDY_BENCH = "bench"          # dict: kind, searcher, seed, dataset, budget, space, versions, ...
STUDY_RETRAIN = "retrain"      # dict: test_accuracy, test_loss, n_params, params, epochs

# values of bench["kind"]
KIND_SEARCH = "search"
KIND_BASELINE = "baseline"
KIND_COMPARE = "compare"
KIND_THROUGHPUT = "throughput"
KIND_MEMORY = "memory"
KIND_SCALING = "scaling"
KIND_CALIBRATION = "calibration"

# trial user attr keys
T_SEARCHER = "searcher"
T_SEED = "seed"
T_DATASET = "dataset"
T_EPOCHS = "epochs_trained"     # epochs this trial actually trained (Hyperband: only its own)
T_WALL = "wall_seconds"         # whole trial as the tuner ran it (build, fit, bookkeeping)
T_FIT = "fit_seconds"           # time inside model.fit
T_PARAMS = "n_params"
T_KT_ID = "kt_trial_id"
T_VAL_ACC = "val_accuracy"      # at the reported epoch
T_ERROR = "error"               # last lines of the traceback of a FAIL trial
T_PRUNED_AT = "pruned_at_epoch"


def study_name(dataset: str, searcher: str, seed: int) -> str:
    return f"{dataset}-{searcher}-s{seed}"


BACKEND_OPTUNA = "optuna"
BACKEND_KERAS_TUNER = "keras_tuner"
