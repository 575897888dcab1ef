"""Names shared by everything that writes or reads the study store.

One Optuna study per search run, named ``<dataset>-<searcher>-s<seed>``. Its user attr
``bench`` (a dict, see ``bench_attrs`` in bench/run/runner.py) records what makes runs
comparable; extra studies hold the baseline, the compare meta data and the throughput
measurement, told apart by ``bench["kind"]``.
"""
from __future__ import annotations

import re
from typing import Final

from bench.core.errors import UserError

DEFAULT_STORAGE = "sqlite:///studies.db"  # the store every command uses unless told
OBJECTIVE = "val_loss"
DIRECTION: Final = "minimize"
# What --objectives accepts, and each one's direction (KerasTuner's inference: accuracies
# are maximised; "params", the built model's parameter count, is minimised). Kept here so
# the CLI checks --objectives without importing KerasTuner; a test holds it to the library.
OBJECTIVE_DIRECTIONS: Final = {"val_loss": "minimize", "val_accuracy": "maximize",
                               "loss": "minimize", "accuracy": "maximize", "params": "minimize"}
MULTI_OBJECTIVE_TAG = "mo"     # default study name of a multi-objective run: <dataset>-<searcher>-mo-s<seed>
MAX_PARAMS_CONSTRAINT = "max_params"  # Optuna constraint: n_params - max_params (<= 0 feasible)

# study user attr keys
STUDY_BENCH = "bench"          # dict: kind, searcher, seed, dataset, budget, space, versions, ...
# In the ``bench`` dict: why the run's clocks are not a timing measurement (e.g. it ran two
# at a time); the report then shows none of its wall seconds or overhead.
B_TIMING_NOTE = "timing_not_measured"
STUDY_SURROGATE = "surrogate_fidelity"  # bench record: the replay surrogate's held-out scores
STUDY_RETRAIN = "retrain"      # dict: test_accuracy, test_loss, n_params, params, epochs
# multi-objective runs: list of {trial, params, n_params, val_loss, test_accuracy, test_loss}
STUDY_RETRAIN_FRONT = "retrain_front"

# values of bench["kind"]
KIND_SEARCH = "search"
KIND_BASELINE = "baseline"
KIND_COMPARE = "compare"
KIND_THROUGHPUT = "throughput"
KIND_BACKEND_THROUGHPUT = "backend_throughput"  # bench throughput --backend A,B,...: a row each
KIND_MEMORY = "memory"
KIND_OVERHEAD = "overhead"
KIND_SCALING = "scaling"
KIND_CALIBRATION = "calibration"
KIND_RECORD = "record"                  # learning curves of uniform configurations (bench record)
KIND_REPLAY = "replay"                  # a search replayed on the surrogate (bench replay)
KIND_REPLAY_SUMMARY = "replay-summary"  # one replay command: surrogate fidelity, speed
KIND_WARM_START = "warm-start-replay"   # bench replay --warm-start-random: warm vs cold per seed
# A replay whose surrogate ranks held-out configurations below this (Spearman of best
# val_loss) is said to give weak evidence, at run time and in the report.
SURROGATE_MIN_SPEARMAN = 0.8
SURROGATE_MIN_CONFIGS = 10  # recorded configurations the surrogate needs (record refuses fewer)
REPLAY_RUN_PREFIX = "run:"              # replay-summary user attr per replayed run (compact)

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
T_INTERRUPTED = "interrupted"  # True: FAIL because its process ended mid-trial
T_BUDGET_CUT = "budget_cut"      # True: stopped early because the run's budget was spent
T_CRASHED = "crashed"            # why the process running it died (a signal): FAIL, not retried
T_PROCESS = "process"            # {"pid", "rss_mb"} of the process that ran it, at its end
T_CURVE = "curve"                # per-epoch lists: val_loss, val_accuracy, loss, accuracy, seconds
T_TRAIN_SEED = "train_seed"      # the seed its weights and shuffling started from
T_REPEAT_OF = "repeat_of"        # bench record: the trial number whose configuration this re-trains


MAX_STUDY_NAME = 100  # it names a folder too (runs/<study>/...), and a database row
_STUDY_NAME = re.compile(r"[^\W][\w.-]*")  # word characters, '.', '-'; no path separators


def study_name(dataset: str, searcher: str, seed: int, tag: str = "") -> str:
    """The default study name; a data folder's name is made safe for paths first.
    ``tag`` (e.g. ``MULTI_OBJECTIVE_TAG``) goes before the seed: ``toon-random-mo-s0``."""
    safe = re.sub(r"[^\w.-]+", "_", dataset).strip("._-")[:60] or "data"
    return f"{safe}-{searcher}-{tag}-s{seed}" if tag else f"{safe}-{searcher}-s{seed}"


def check_study_name(name: str) -> str:
    """A study name is also a folder under --logdir: refuse what would escape or break it."""
    if not (len(name) <= MAX_STUDY_NAME and _STUDY_NAME.fullmatch(name)):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise UserError(f"study name {shown!r} ({len(name)} characters) is not usable: use "
                        f"letters, digits, '_', '.' and '-', starting with a letter or digit, "
                        f"at most {MAX_STUDY_NAME} characters")
    return name


BACKEND_OPTUNA = "optuna"
BACKEND_KERAS_TUNER = "keras_tuner"
