"""How the default Optuna-backed search was chosen (RESULTS.md, notes: "Choosing the default").

Replays candidate sampler/pruner settings with the project's own replay code
(``bench.replay.replay_run``: the searcher's real oracle, training looked up in the
record's surrogate) on seeds 1000.. - not the seeds 0..99 that RESULTS.md's verdicts use,
so the choice is not tested on the runs it was made on. Candidates that are not registry
names are added to the registries in this process only (forked workers inherit them).

    python docs/experiments/choose_default.py toon gradient_boosting ENTRIES 1000 100
    python docs/experiments/choose_default.py digits random_forest ENTRIES 1000 100
    python docs/experiments/choose_default.py --table /tmp/choose_default/toon.jsonl

ENTRIES: comma-separated ``NAME`` or ``optuna:SAMPLER:PRUNER`` as for ``bench replay``.
Results are appended to /tmp/choose_default/<dataset>.jsonl (best val_loss at 25/50/100%
of the budget per run).
"""
import json, os, sys, time, multiprocessing as mp, tempfile
from pathlib import Path
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import optuna
from searchers import optuna_components as oc

def tpe(**kw):
    return lambda seed: optuna.samplers.TPESampler(seed=seed, **kw)
oc.SAMPLERS.update({
    "tpe-mv": tpe(n_startup_trials=5, multivariate=True, group=True, warn_independent_sampling=False),
    "tpe-mv10": tpe(n_startup_trials=10, multivariate=True, group=True, warn_independent_sampling=False),
    "tpe10": tpe(n_startup_trials=10),
    "tpe-mv3": tpe(n_startup_trials=3, multivariate=True, group=True, warn_independent_sampling=False),
    "tpe-mv-noprior": tpe(n_startup_trials=5, multivariate=True, group=True, consider_prior=True, warn_independent_sampling=False),
})
P = optuna.pruners
oc.PRUNERS.update({
    "hb-min2": lambda e: P.HyperbandPruner(min_resource=2, max_resource=e, reduction_factor=3),
    "hb-min3": lambda e: P.HyperbandPruner(min_resource=3, max_resource=e, reduction_factor=3),
    "hb-rf2": lambda e: P.HyperbandPruner(min_resource=1, max_resource=e, reduction_factor=2),
    "hb-rf4": lambda e: P.HyperbandPruner(min_resource=1, max_resource=e, reduction_factor=4),
    "sha-min2": lambda e: P.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
    "sha-min3": lambda e: P.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3),
    "sha-rf2": lambda e: P.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
    "sha-min1-es1": lambda e: P.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=1),
    "median3": lambda e: P.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    "pct25": lambda e: P.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=2),
    "sha-min2-rf2": lambda e: P.SuccessiveHalvingPruner(min_resource=2, reduction_factor=2),
    "sha-min2-rf4": lambda e: P.SuccessiveHalvingPruner(min_resource=2, reduction_factor=4),
    "sha-min2-b2": lambda e: P.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3, bootstrap_count=2),
    "hb-min2-rf4": lambda e: P.HyperbandPruner(min_resource=2, max_resource=e, reduction_factor=4),
    "pat-sha": lambda e: P.PatientPruner(P.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), patience=1),
})
# (The default became tpe10 + sha2, now registry names: the same as tpe10 + sha-min2 here.)
from bench import replay


def table(path):
    import collections, numpy as np, scipy.stats as st
    rows = [json.loads(line) for line in open(path)]
    by = collections.defaultdict(dict)
    for r in rows: by[r["entry"]][r["seed"]] = r
    ref = {s: r["b100"] for s, r in by["random"].items()} if "random" in by else None
    target = np.median(list(ref.values())) if ref else None
    out = []
    for e, runs in by.items():
        b100 = np.array([r["b100"] for r in runs.values()]); b50 = np.array([r["b50"] for r in runs.values()]); b25=np.array([r["b25"] for r in runs.values()])
        p_hb = st.mannwhitneyu(b100, [r["b100"] for r in by["hyperband"].values()], alternative="less").pvalue if "hyperband" in by else float("nan")
        p_r = st.mannwhitneyu(b100, [r["b100"] for r in by["random"].values()], alternative="less").pvalue if "random" in by else float("nan")
        out.append((np.median(b100), e, len(b100), np.median(b50), np.median(b25), st.trim_mean(b100, .25), p_hb, p_r, np.median([r["n"] for r in runs.values()])))
    print(f"target (random median b100) {target}")
    print(f"{'entry':32s} n  med100  med50  med25  iqm100  p<hb  p<rand trials")
    for o in sorted(out):
        print(f"{o[1]:32s} {o[2]:3d} {o[0]:.4f} {o[3]:.4f} {o[4]:.4f} {o[5]:.4f} {o[6]:.3g} {o[7]:.3g} {o[8]:.0f}")


W = {}
def init(storage, record, model):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings; warnings.filterwarnings("ignore")
    W["s"] = replay.load_surrogate(storage, record, model=model, evaluate=False)
    from threadpoolctl import threadpool_limits; threadpool_limits(1)
    W["tmp"] = Path(tempfile.mkdtemp())
def work(spec):
    run = replay.replay_run(spec, W["s"], W["tmp"])
    # best within 25/50/100% budget
    out = {}
    for frac in (0.25, 0.5, 1.0):
        cum, best = 0, float("inf")
        for t in run.trials:
            cum += t.attrs["epochs_trained"]
            if cum > spec.budget_epochs * frac: break
            if t.state == "COMPLETE" and t.value is not None: best = min(best, t.value)
        out[frac] = best
    return (spec.searcher, spec.sampler, spec.pruner, spec.seed, out, len(run.trials))

if __name__ == "__main__" and sys.argv[1] == "--table":
    table(sys.argv[2])
elif __name__ == "__main__":
    dataset, model = sys.argv[1], sys.argv[2]
    entries = sys.argv[3].split(",")
    seeds = range(int(sys.argv[4]), int(sys.argv[4]) + int(sys.argv[5]))
    storage = "sqlite:///" + str(Path(__file__).resolve().parents[2] / "results" / "studies.db")
    specs = []
    for e in entries:
        name, *parts = e.split(":")
        s = parts[0] if parts else None; p = parts[1] if len(parts) > 1 else None
        for seed in seeds:
            specs.append(replay.ReplaySpec(name, seed, 180, 15, 3, dataset, "standard", sampler=s, pruner=p))
    t0 = time.time()
    res = []
    with mp.get_context("fork").Pool(2, initializer=init, initargs=(storage, f"{dataset}-record-standard-s0", model)) as pool:
        for r in pool.imap_unordered(work, specs, chunksize=2):
            res.append(r)
    out = Path(f"/tmp/choose_default/{dataset}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        for r in res:
            name, s, p, seed, best, n = r
            f.write(json.dumps({"entry": ":".join(x for x in (name, s or "", p or "") if x is not None).rstrip(":"), "seed": seed, "b25": best[0.25], "b50": best[0.5], "b100": best[1.0], "n": n}) + "\n")
    print(f"{len(res)} runs in {time.time()-t0:.0f}s")
