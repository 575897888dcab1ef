"""``python -m bench overhead``: two searchers side by side, each in its own process, with a
breakdown that adds up and a measurement recorded in the store."""
from __future__ import annotations

import gc
import time

import optuna
import pytest

from bench.cli import main
from bench.core import schema
from bench.measure import overhead

TOLERANCE_S = 0.02  # per trial: the profiler's windows vs the tracker's own clock


@pytest.mark.timeout(300)
def test_overhead_side_by_side(workdir, storage_url, capsys):
    rc = main(["overhead", "--searchers", "random,tpe", "--preset", "quick",
               "--budget-epochs", "6", "--storage", storage_url])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "median overhead / baseline" in out and "verdict: tpe:" in out

    studies = {s.study_name: s for s in optuna.get_all_study_summaries(storage_url)}
    bench = studies["toon-overhead-quick"].user_attrs[schema.STUDY_BENCH]
    assert bench["kind"] == schema.KIND_OVERHEAD and bench["preset"] == "quick"
    assert bench["command"].startswith("python -m bench overhead")
    assert bench["machine"] and bench["versions"].get("optuna")
    results = {r["searcher"]: r for r in bench["results"]}
    assert list(results) == ["random", "tpe"]
    assert len(bench["verdicts"]) == 1 and isinstance(bench["met"], bool)
    for name, r in results.items():
        assert r["trials"] >= 2 and r["trials_profiled"] == r["trials"], (name, r)
        assert r["missing_hooks"] == [], (name, r["missing_hooks"])
        comps = {c: v for c, v in r["components_s"].items() if c != "other"}
        assert all(v >= 0 for v in comps.values()), (name, comps)
        # the named parts never exceed the overhead ("other" is not negative beyond noise)
        assert sum(comps.values()) <= r["mean_overhead_s"] + TOLERANCE_S, (name, r)
        # the profiler's own in-overhead total agrees with wall - fit from the store
        assert r["profiled_overhead_s"] == pytest.approx(r["mean_overhead_s"], abs=TOLERANCE_S)
        assert comps["build"] > 0 and comps["gc"] > 0, (name, comps)  # clear_session collects
        assert r["store_calls"]["overhead"] + r["store_calls"]["after_wall"] > 0, (name, r)
        assert sum(r["sql_commits"].values()) > 0, (name, r)
        assert r["median_overhead_s"] > 0 and r["mean_fit_s"] > 0
    # the Optuna-backed tuner asks its sampler for every trial; RandomSearch its oracle
    assert results["tpe"]["calls_per_trial"].get("TPESampler.before_trial", 0) >= 1
    assert results["random"]["calls_per_trial"].get("RandomSearchOracle.populate_space", 0) >= 1


def test_unknown_searcher_is_one_line(workdir, storage_url, capsys):
    assert main(["overhead", "--searchers", "random,nope", "--storage", storage_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown searcher 'nope'") and err.count("\n") == 1


def test_profiler_counts_exclusive_time_and_uninstalls():
    """Components nest without double counting; everything is restored afterwards."""
    import keras

    original = keras.backend.clear_session
    p = overhead.install_profiler()
    try:
        p._new_window()
        keras.backend.clear_session()  # collects inside: gc, not clear_session
        junk = [[i] for i in range(50_000)]
        start = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - start
        del junk
        p.finish()
    finally:
        p.uninstall()
    assert keras.backend.clear_session is original
    again = overhead.install_profiler()  # installable again, and uninstalled again
    assert keras.backend.clear_session is not original
    again.uninstall()
    assert keras.backend.clear_session is original
    row = dict(zip(overhead.COMPONENTS, p.windows[0].seconds[overhead.OVER]))
    assert row["gc"] >= took * 0.9
    assert row["clear"] >= 0 and p.calls["keras.backend.clear_session"] == 1
    assert gc.callbacks.count(p._on_gc) == 0


def test_checkout_entry_must_be_a_checkout(workdir, storage_url, capsys):
    assert main(["overhead", "--searchers", f"random,tpe@{workdir}", "--storage", storage_url]) == 2
    err = capsys.readouterr().err
    assert "is not a checkout of this benchmark" in err and err.count("\n") == 1


def test_each_searcher_is_compared_with_the_first_of_its_code():
    def result(name, code, median):
        return {"searcher": name, "code": code, "median_overhead_s": median}

    results = [result("random", "new", 0.4), result("tpe", "new", 0.15),
               result("random@old", "old", 0.8), result("tpe@old", "old", 0.9)]
    lines = overhead.verdicts(results, "standard")
    assert [ok for _, ok in lines] == [True, False]
    assert lines[0][0].startswith("tpe: median overhead 0.150 s = 0.37x random's 0.400 s")
    assert "absolute 0.150 s" in lines[0][0]
    assert lines[1][0].startswith("tpe@old: median overhead 0.900 s = 1.12x random@old's")
    quick = overhead.verdicts([result("random", "new", 0.4), result("tpe", "new", 0.21)], "quick")
    assert quick == [(quick[0][0], False)] and "absolute" not in quick[0][0]


def test_rounds_pool_their_trials_and_each_rounds_ratio_is_shown():
    """--rounds N: a searcher's trials of every round count as one sample (ids kept apart),
    and the verdict lists each round's side-by-side ratio."""
    def part(overheads):
        windows, trials = [], {}
        for i, over in enumerate(overheads):
            w = overhead._Window()
            w.kt_id = f"{i:02d}"
            w.seconds[overhead.OVER][overhead.BUILD] = over
            windows.append(w.as_dict())
            trials[w.kt_id] = {"wall": 1.0 + over, "fit": 1.0, "overhead": over, "number": i,
                              "state": "COMPLETE"}
        return {"windows": windows, "calls": {"Tuner._build_hypermodel": len(overheads)},
                "missing": []}, trials, 10.0

    random_parts = [part([0.4, 0.4, 0.4]), part([0.6, 0.6, 0.6])]
    tpe_parts = [part([0.1, 0.1, 0.1]), part([0.4, 0.4, 0.4])]
    profile, trials = overhead.pooled(tpe_parts)
    assert sorted(trials) == ["0:00", "0:01", "0:02", "1:00", "1:01", "1:02"]
    tpe = overhead.summarize("tpe", profile, trials)
    assert tpe["trials"] == tpe["trials_profiled"] == 6
    assert tpe["components_s"]["build"] == pytest.approx(0.25)
    assert tpe["calls_per_trial"]["Tuner._build_hypermodel"] == 1.0
    random = overhead.summarize("random", *overhead.pooled(random_parts))
    assert random["median_overhead_s"] == pytest.approx(0.5)
    tpe["round_medians_s"], random["round_medians_s"] = [0.1, 0.4], [0.4, 0.6]
    tpe["code"] = random["code"] = "here"
    [(text, ok)] = overhead.verdicts([random, tpe], "quick")
    assert ok and "= 0.50x random's" in text
    assert text.endswith("each round's ratio: 0.25x, 0.67x)")
    assert overhead.pooled(tpe_parts[:1]) == tpe_parts[0][:2]  # one round: as it was


def test_rounds_below_one_is_one_line(workdir, storage_url, capsys):
    assert main(["overhead", "--rounds", "0", "--storage", storage_url]) == 2
    err = capsys.readouterr().err
    assert err == "error: --rounds must be >= 1 (got 0)\n"
