"""How the default Optuna-backed search was chosen (results/studies.notes.md, "Choosing the
default Optuna-backed search").

Replays candidate sampler/pruner settings with the project's own replay code
(``bench.replay.simulation.replay_run``: the searcher's real oracle, training looked up in the
record's surrogate) on seeds 1000.. - not the seeds 0..99 that RESULTS.md's verdicts use,
so the choice is not tested on the runs it was made on. Candidates that are not registry
names are added to the registries in this process only (the forked workers inherit them).

    python docs/experiments/choose_default.py run toon gradient_boosting ENTRIES 1000 100
    python docs/experiments/choose_default.py run digits random_forest ENTRIES 1000 100
    python docs/experiments/choose_default.py table /tmp/choose_default/toon.jsonl

ENTRIES: comma-separated ``NAME`` or ``optuna:SAMPLER:PRUNER``, as for ``bench replay``.
Each run appends its best val_loss at 25/50/100% of the budget to
/tmp/choose_default/<dataset>.jsonl; ``table`` prints the markdown table of the notes.
"""
from __future__ import annotations

import collections
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["OMP_NUM_THREADS"] = "1"  # as bench replay's workers (see bench/replay/simulation.py)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402 - after the environment above
import optuna  # noqa: E402
import scipy.stats  # noqa: E402

from bench.replay import simulation as replay  # noqa: E402
from searchers import optuna_components  # noqa: E402

Pruners = optuna.pruners


def _tpe(**kwargs: Any) -> Callable[[int], optuna.samplers.BaseSampler]:
    return lambda seed: optuna.samplers.TPESampler(seed=seed, warn_independent_sampling=False,
                                                   **kwargs)


CANDIDATE_SAMPLERS = {
    "tpe-mv": _tpe(n_startup_trials=5, multivariate=True, group=True),
    "tpe-mv3": _tpe(n_startup_trials=3, multivariate=True, group=True),
    "tpe-mv10": _tpe(n_startup_trials=10, multivariate=True, group=True),
}
CANDIDATE_PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "hb-min2": lambda e: Pruners.HyperbandPruner(min_resource=2, max_resource=e, reduction_factor=3),
    "hb-min3": lambda e: Pruners.HyperbandPruner(min_resource=3, max_resource=e, reduction_factor=3),
    "hb-rf2": lambda e: Pruners.HyperbandPruner(min_resource=1, max_resource=e, reduction_factor=2),
    "hb-rf4": lambda e: Pruners.HyperbandPruner(min_resource=1, max_resource=e, reduction_factor=4),
    "hb-min2-rf4": lambda e: Pruners.HyperbandPruner(min_resource=2, max_resource=e,
                                                     reduction_factor=4),
    "sha-min2": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
    "sha-min3": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3),
    "sha-rf2": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
    "sha-min2-rf2": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=2),
    "sha-min2-rf4": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=4),
    "sha-min2-b2": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3,
                                                             bootstrap_count=2),
    "sha-min1-es1": lambda e: Pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3,
                                                              min_early_stopping_rate=1),
    "median3": lambda e: Pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    "pct25": lambda e: Pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=2),
    "pat-sha": lambda e: Pruners.PatientPruner(
        Pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), patience=1),
}
# ("tpe10" and "sha2", the chosen default, are registry names: sha2 is sha-min2 above.)
optuna_components.SAMPLERS.update(CANDIDATE_SAMPLERS)
optuna_components.PRUNERS.update(CANDIDATE_PRUNERS)
SHARES = (0.25, 0.5, 1.0)
_WORKER: dict[str, Any] = {}


def _init(storage: str, record: str, model: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _WORKER["surrogate"] = replay.load_surrogate(storage, record, model=model, evaluate=False)
    _WORKER["tmp"] = Path(tempfile.mkdtemp())


def _best_within(run: replay.ReplayedRun, budget: int) -> list[float]:
    """Best COMPLETE val_loss among the trials whose cumulative epochs fit in each share."""
    found = []
    for share in SHARES:
        spent, best = 0, float("inf")
        for t in run.trials:
            spent += t.attrs["epochs_trained"]
            if spent > budget * share:
                break
            if t.state == "COMPLETE" and t.value is not None:
                best = min(best, t.value)
        found.append(best)
    return found


def _work(spec: replay.ReplaySpec) -> dict[str, Any]:
    run = replay.replay_run(spec, _WORKER["surrogate"], _WORKER["tmp"])
    entry = ":".join(x for x in (spec.searcher, spec.sampler, spec.pruner) if x)
    b25, b50, b100 = _best_within(run, spec.budget_epochs)
    return {"entry": entry, "seed": spec.seed, "b25": b25, "b50": b50, "b100": b100,
            "n": len(run.trials)}


def run(dataset: str, model: str, entries: str, first_seed: int, seeds: int) -> None:
    storage = f"sqlite:///{ROOT / 'results' / 'studies.db'}"
    specs = []
    for entry in entries.split(","):
        name, *parts = entry.split(":")
        sampler = parts[0] if parts else None
        pruner = parts[1] if len(parts) > 1 else None
        specs += [replay.ReplaySpec(name, seed, 180, 15, 3, dataset, "standard",
                                    sampler=sampler, pruner=pruner)
                  for seed in range(first_seed, first_seed + seeds)]
    started = time.time()
    out = Path(f"/tmp/choose_default/{dataset}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("fork").Pool(
            2, initializer=_init,
            initargs=(storage, f"{dataset}-record-standard-s0", model)) as pool, out.open("a") as f:
        for row in pool.imap_unordered(_work, specs, chunksize=2):
            f.write(json.dumps(row) + "\n")
    print(f"{len(specs)} runs in {time.time() - started:.0f}s -> {out}")


def table(path: str) -> None:
    by: dict[str, dict[int, dict]] = collections.defaultdict(dict)
    for line in open(path):
        row = json.loads(line)
        by[row["entry"]][row["seed"]] = row
    hyperband = [r["b100"] for r in by["hyperband"].values()]
    rows = []
    for entry, runs in by.items():
        b100 = [r["b100"] for r in runs.values()]
        p = scipy.stats.mannwhitneyu(b100, hyperband, alternative="less").pvalue
        rows.append((float(np.median(b100)), entry,
                     float(np.median([r["b50"] for r in runs.values()])),
                     float(scipy.stats.trim_mean(b100, 0.25)), float(p)))
    print("| candidate | median best at 100% | at 50% | IQM at 100% | p (lower than hyperband) |")
    print("|---|---|---|---|---|")
    for med, entry, half, iqm, p in sorted(rows):
        print(f"| `{entry}` | {med:.4f} | {half:.4f} | {iqm:.4f} | {p:.2g} |")


if __name__ == "__main__":
    if sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
