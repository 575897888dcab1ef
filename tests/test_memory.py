"""`bench memory`: a real `bench run` per searcher, figures read back from the store."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.core import schema, store
from bench.core.errors import UserError
from bench.measure.memory import _trials


def test_memory_reads_each_trial_process_from_the_store(workdir, storage_url, capsys) -> None:
    rc = main(["memory", "--searchers", "random,tpe", "--trials", "4", "--trials-per-process", "2",
               "--storage", storage_url])
    assert rc == 0
    bench = optuna.load_study(study_name="toon-memory-p2", storage=storage_url).user_attrs[
        schema.STUDY_BENCH]
    assert bench["kind"] == schema.KIND_MEMORY and bench["trials_per_process"] == 2
    for searcher in ("random", "tpe"):
        row = bench["searchers"][searcher]
        assert row["trials"] == 4 and len(row["rss_mb"]) == 4
        assert row["processes"] == 2  # replaced after 2 trials
        assert row["peak_trial_process_mb"] >= max(row["rss_mb"]) > 0
        # the launcher never imports TensorFlow: a fraction of a trial process
        assert 0 < row["peak_launcher_mb"] < row["peak_trial_process_mb"] / 2
        assert row["disk_mb_per_100_trials"] > row["checkpoint_mb_per_100_trials"] > 0
        assert row["replacement_seconds"] > 1  # TensorFlow's import at least
    out = capsys.readouterr().out
    assert "random: RSS at trial 2" in out and "2 process(es)" in out
    # re-measuring one searcher keeps the other's row
    assert main(["memory", "--searchers", "tpe", "--trials", "4", "--trials-per-process", "2",
                 "--storage", storage_url]) == 0
    again = optuna.load_study(study_name="toon-memory-p2", storage=storage_url).user_attrs[
        schema.STUDY_BENCH]["searchers"]
    assert again["random"] == bench["searchers"]["random"] and again["tpe"] != bench["searchers"]["tpe"]



def test_progress_counts_trials_in_the_store_not_printed_text(workdir) -> None:
    """While the run starts there may be no store or no study yet: no trials, no error;
    afterwards a missing store is an error. Finished trials count, tickets do not."""
    url = f"sqlite:///{workdir / 'memory.db'}"
    assert _trials(url, "memory-tpe", started=True) == []
    with pytest.raises(UserError, match="no study store"):
        _trials(url, "memory-tpe")
    study = store.create_study(url, "memory-tpe")
    assert _trials(url, "other", started=True) == []
    study.enqueue_trial({})
    study.enqueue_trial({})  # tickets (WAITING)
    study.tell(study.ask(), 1.0)
    trials = _trials(url, "memory-tpe", started=True)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.WAITING]
    assert sum(t.state.is_finished() for t in trials) == 1
