"""Measurement commands: typed settings built from the command line in one place, one
helper that records a measurement study, one-line errors, and the logging setup."""
from __future__ import annotations

import logging
import shlex
from typing import Any

import optuna
import pytest

from bench import cli
from bench.core import logs, schema
from bench.core.measurement import command_line, record_measurement
from bench.core.provenance import machine, versions
from bench.measure import calibrate
from bench.measure.compare import CompareSettings
from bench.measure.memory import MemorySettings, _keep_other_searchers
from bench.measure.overhead import OverheadSettings
from bench.measure.scaling import ScalingSettings
from bench.measure.throughput import ThroughputSettings
from bench.replay.record import RecordSettings
from bench.run.runner import RunConfig
from bench.run.workers import WorkersSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _bench(url: str, name: str) -> dict[str, Any]:
    return optuna.load_study(study_name=name, storage=url).user_attrs[schema.STUDY_BENCH]


# ------------------------------------------------------------------ record_measurement
def test_record_measurement_writes_kind_figures_and_provenance(storage_url: str) -> None:
    written = record_measurement(storage_url, "toon-throughput", schema.KIND_THROUGHPUT,
                                 {"dataset": "toon", "ratio": 0.97},
                                 command="python -m bench throughput")
    stored = _bench(storage_url, "toon-throughput")
    assert stored == written
    assert list(stored) == ["kind", "dataset", "ratio", "command", "machine", "versions"]
    assert stored["kind"] == schema.KIND_THROUGHPUT and stored["ratio"] == 0.97
    assert stored["machine"] == machine() and stored["versions"] == versions()
    study = optuna.load_study(study_name="toon-throughput", storage=storage_url)
    assert study.metric_names == [schema.OBJECTIVE]  # made by store.create_study
    # recording again replaces the attr (no merge asked for)
    record_measurement(storage_url, "toon-throughput", schema.KIND_THROUGHPUT,
                       {"dataset": "toon", "ratio": 0.9}, command="again")
    assert _bench(storage_url, "toon-throughput")["ratio"] == 0.9


def test_memory_merge_keeps_the_rows_of_searchers_not_measured_again(storage_url: str) -> None:
    def measure(rows: dict[str, Any], trials: int) -> dict[str, Any]:
        return record_measurement(storage_url, "toon-memory-p2", schema.KIND_MEMORY,
                                  {"dataset": "toon", "trials": trials, "searchers": rows},
                                  command="c", merge=_keep_other_searchers)

    measure({"random": {"growth_mb": 1}, "tpe": {"growth_mb": 2}}, 4)
    assert measure({"tpe": {"growth_mb": 3}}, 4)["searchers"] == {
        "random": {"growth_mb": 1}, "tpe": {"growth_mb": 3}}
    # another trial count is another measurement: the old rows go
    assert measure({"tpe": {"growth_mb": 5}}, 8)["searchers"] == {"tpe": {"growth_mb": 5}}


def test_calibrate_records_the_command_it_was_given(storage_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The command recorded is the CLI's own arguments (it was the host's sys.argv), and what
    it records is a real calibration: a baseline and two configurations trained."""
    argv = ["calibrate", "--configs", "2", "--epochs", "1", "--image-size", "24x8",
            "--storage", storage_url]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| baseline |" in out
    stored = _bench(storage_url, "toon-calibration")
    assert stored["command"] == "python -m bench " + shlex.join(argv)
    assert stored["kind"] == schema.KIND_CALIBRATION and stored["n_configs"] == 2
    assert 0 < stored["baseline"]["val_loss"] < 10 and 0 <= stored["baseline"]["test_accuracy"] <= 1
    assert stored["val_loss"]["best"] <= stored["val_loss"]["median"] <= stored["val_loss"]["worst"]
    assert set(stored) == {"kind", "dataset", "markdown", "baseline", "val_loss", "n_configs",
                           "epochs", "command", "machine", "versions"}


def test_command_line_quotes_like_a_shell() -> None:
    assert command_line(["memory", "--dataset", "my data"]) == "python -m bench memory --dataset 'my data'"


# ------------------------------------------------------------------ settings
def test_each_command_gets_typed_settings_from_its_flags() -> None:
    args = cli.parse_args(["compare", "--searchers", "random, tpe,", "--seeds", "2", "--seed", "3",
                           "--preset", "quick", "--no-retrain", "--budget-epochs", "8"])
    compare = CompareSettings.from_args(args)
    assert compare.searchers == ("random", "tpe") and compare.seeds == (3, 4)
    assert not compare.retrain and not compare.report
    assert compare.argv == tuple(args.argv) and compare.argv[0] == "compare"
    run = compare.config("tpe", 4)
    assert (run.searcher, run.seed, run.preset, run.budget_epochs) == ("tpe", 4, "quick", 8)
    assert run == RunConfig.from_args(args, "tpe", 4)

    memory = MemorySettings.from_args(cli.parse_args(["memory", "--searchers", "random,tpe",
                                                      "--trials", "4", "--bare"]))
    assert (memory.searchers, memory.trials, memory.bare) == (("random", "tpe"), 4, True)
    assert memory.trials_per_process is None and memory.storage == schema.DEFAULT_STORAGE

    overhead = OverheadSettings.from_args(cli.parse_args(["overhead", "--searchers", "random,tpe@x"]))
    assert (overhead.searchers, overhead.preset, overhead.storage) == (
        "random,tpe@x", "quick", schema.DEFAULT_STORAGE)

    scaling = ScalingSettings.from_args(cli.parse_args(["scaling", "--storage", "postgresql://h/db"]))
    assert (scaling.storage, scaling.result_storage, scaling.workers) == (
        "postgresql://h/db", schema.DEFAULT_STORAGE, 2)

    throughput = ThroughputSettings.from_args(cli.parse_args(["throughput", "--image-size", "20x10"]))
    assert throughput.image_size == (20, 10) and throughput.epochs == 3

    cal = calibrate.CalibrateSettings.from_args(cli.parse_args(["calibrate", "--configs", "5"]))
    assert (cal.configs, cal.epochs, cal.storage) == (5, 20, schema.DEFAULT_STORAGE)

    from bench.replay.simulation import ReplaySettings
    replay = ReplaySettings.from_args(cli.parse_args(["replay", "--seeds", "3", "--searchers", "tpe",
                                                      "--jobs", "2", "--compact"]))
    assert (replay.seeds, replay.searchers, replay.jobs, replay.compact) == (3, "tpe", 2, True)
    assert replay.argv[0] == "replay" and replay.storage == schema.DEFAULT_STORAGE
    assert ReplaySettings.from_args(cli.parse_args(["replay"])) == ReplaySettings(argv=("replay",),
                                                                                    jobs=replay_jobs())
    record = RecordSettings.from_args(cli.parse_args(["record", "--configs", "4", "--seed", "2"]))
    assert record.study_name == "toon-record-standard-s2" and record.repeats == 10

    argv = ["run", "--searcher", "tpe", "--workers", "3", "--storage", "postgresql://h/db"]
    workers = WorkersSettings.from_args(cli.parse_args(argv))
    assert workers.workers == 3
    assert workers.config.searcher == "tpe" and workers.config.storage == "postgresql://h/db"


@pytest.mark.parametrize("argv, line", [
    (["compare", "--searchers", " ,"], "error: --searchers is empty"),
    (["compare", "--seeds", "0"], "error: --seeds must be > 0 (got 0)"),
    (["memory", "--trials", "1"], "error: --trials must be >= 2"),
    (["throughput", "--epochs", "1"], "error: --epochs must be >= 2, --repeats and --batch-size >= 1"),
    (["calibrate", "--epochs", "0"], "error: --epochs and --configs must be >= 1"),
    (["scaling", "--storage", "sqlite:///x.db"],
     "error: scaling needs a server store shared by workers: --storage postgresql://..."),
    (["record", "--configs", "1"], "error: --configs must be >= 10 (got 1)"),
    (["record", "--configs", "9"], "error: --configs must be >= 10 (got 9)"),  # replay needs 10
])
def test_bad_measurement_flags_are_one_line(argv: list[str], line: str, workdir,
                                           capsys: pytest.CaptureFixture) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err == line + "\n" and out == ""
    assert not (workdir / "studies.db").exists()  # refused before the store is touched


# ------------------------------------------------------------------ logging
def test_project_logs_reach_stderr_as_plain_lines(capsys: pytest.CaptureFixture,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    try:
        logs.configure_logging()
        logs.configure_logging()  # idempotent: one handler, one line per record
        logging.getLogger("bench.anything").info("an info line")
        logging.getLogger("searchers.anything").warning("warning: a warning line")
        logging.getLogger("bench.anything").debug("a debug line")
        assert capsys.readouterr().err == "an info line\nwarning: a warning line\n"
        assert "an info line" in caplog.text  # records still propagate
        logs.configure_logging(verbose=True)
        logging.getLogger("bench.anything").debug("a debug line")
        assert capsys.readouterr().err == "a debug line\n"
    finally:
        logs.configure_logging()


def replay_jobs() -> int:
    import os
    return os.cpu_count() or 1
