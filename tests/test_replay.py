"""The replay benchmark: a replayed run is the real run, with training looked up.

The strongest check of "decisions unchanged" and "same budget rules": replay a real run
against a table of that very run's recorded curves; every proposal, every epoch count
(Hyperband's continued trainings, a pruned trial, the trial the budget cut short), every
value and state must come out as the real run stored them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.core import schema, store
from bench.replay.simulation import ReplaySpec, frozen_trials, replay_run
from bench.replay.surrogate import Curve, config_key

QUICK = ["--preset", "quick", "--trials-per-process", "0"]


class TableSurrogate:
    """Curves looked up in a run's own records: config -> {absolute epoch: (loss, acc)}."""

    overhead = 0.5

    def __init__(self, trials: list[optuna.trial.FrozenTrial], epochs: int) -> None:
        self.epochs = epochs
        self.table: dict[str, dict[int, tuple[float, float]]] = {}
        for t in trials:
            curve = t.user_attrs[schema.T_CURVE]
            rows = self.table.setdefault(config_key(t.params), {})
            for e, v, a in zip(curve["epochs"], curve["val_loss"], curve["val_accuracy"]):
                rows[e] = (v, a)

    def curve(self, params: Mapping[str, Any], seed: int) -> Curve:
        rows = self.table.get(config_key(params), {})
        # An epoch the real run never trained: the replay went elsewhere (the test fails).
        loss = [rows.get(e, (math.nan, 0.0))[0] for e in range(1, self.epochs + 1)]
        acc = [rows.get(e, (math.nan, 0.0))[1] for e in range(1, self.epochs + 1)]
        return Curve(params=dict(params), val_loss=np.array(loss), val_accuracy=np.array(acc),
                     seconds=np.full(self.epochs, 0.1), n_params=1000, overhead=self.overhead)


def _trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    loaded = optuna.load_study(study_name=study, storage=store.open_storage(storage))
    return sorted(loaded.get_trials(deepcopy=False), key=lambda t: t.datetime_complete)


@pytest.mark.parametrize("searcher, extra, budget", [
    ("random", [], 9),
    ("hyperband", [], 14),                        # 3-epoch trials: brackets continue 1 -> 3
    ("optuna", ["--sampler", "tpe", "--pruner", "sha"], 14),  # TPE decides on the values
])
def test_replay_of_a_run_on_its_own_curves_is_that_run(searcher: str, extra: list[str], budget: int,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'real.db'}"
    assert main(["run", "--searcher", searcher, *extra, *QUICK, "--seed", "3", "--epochs-per-trial", "3",
                 "--budget-epochs", str(budget), "--storage", url]) == 0
    real_name = optuna.get_all_study_summaries(store.open_storage(url))[0].study_name
    real = _trials(url, real_name)
    spec = ReplaySpec(searcher, 3, budget, 3, 3, "toon", "quick",
                      sampler="tpe" if extra else None, pruner="sha" if extra else None)
    replayed = replay_run(spec, TableSurrogate(real, 3), tmp_path / "kt")

    assert [t.params for t in replayed.trials] == [t.params for t in real]
    assert [t.state for t in replayed.trials] == [t.state.name for t in real]
    assert [t.attrs[schema.T_EPOCHS] for t in replayed.trials] == [
        t.user_attrs[schema.T_EPOCHS] for t in real]
    assert [t.intermediate for t in replayed.trials] == [t.intermediate_values for t in real]
    assert [t.value for t in replayed.trials] == [t.value for t in real]
    assert [bool(t.attrs.get(schema.T_BUDGET_CUT)) for t in replayed.trials] == [
        bool(t.user_attrs.get(schema.T_BUDGET_CUT)) for t in real]
    for key in ("tuner/epochs", "tuner/initial_epoch", "tuner/trial_id"):
        assert [t.attrs.get(key) for t in replayed.trials] == [t.user_attrs.get(key) for t in real]
    assert replayed.epochs_used == store.epochs_used(real) == budget
    assert store.epochs_used(frozen_trials(replayed)) == budget
    if searcher == "hyperband":  # the case this row is for: continued trainings happened
        continued = [t for t in real if "tuner/trial_id" in t.user_attrs]
        assert continued and all(t.user_attrs[schema.T_EPOCHS] == 2 for t in continued
                                 if not t.user_attrs.get(schema.T_BUDGET_CUT))
    if extra:  # and a pruned trial that counts the epochs it ran
        pruned = [t for t in real if t.state == TrialState.PRUNED]
        assert pruned and all(t.user_attrs[schema.T_EPOCHS] == len(t.intermediate_values)
                              for t in pruned)
        # at least one stopped before its last epoch (a rung can also be the last epoch)
        assert any(len(t.intermediate_values) < 3 for t in pruned)


def _draw(hp: Any, rng: np.random.Generator) -> Any:
    if hp.kind == "Choice":
        return hp.kwargs["values"][int(rng.integers(len(hp.kwargs["values"])))]
    low, high, step = hp.kwargs["min_value"], hp.kwargs["max_value"], hp.kwargs.get("step", 1)
    value = low + step * int(rng.integers(int((high - low) // step) + 1))
    return round(value, 1) if hp.kind == "Float" else int(value)


def _synthetic_record(n: int = 40, repeats: int = 8, epochs: int = 6,
                      noise: float = 0.05) -> list[optuna.trial.FrozenTrial]:
    """A record study's trials whose curves follow a known function of two params."""
    from models.space import SEARCH_SPACE, space_hyperparameters
    from searchers.seam import active_params
    rng = np.random.default_rng(0)
    space = optuna.create_study()
    trials = []
    for i in range(n + repeats):
        if i < n:
            params = {p.name: _draw(p, rng) for p in SEARCH_SPACE}
        else:
            params = dict(trials[i - n].params)
        quality = 0.2 + params["dropout_1_rate"] + 0.05 * params["conv_1_filters"] / 4
        offset = rng.normal(0, noise)
        losses = [math.exp(math.log(quality + 1.0 / (e + 1)) + offset + rng.normal(0, noise / 2))
                  for e in range(epochs)]
        attrs = {schema.T_CURVE: {"epochs": list(range(1, epochs + 1)), "val_loss": losses,
                                  "val_accuracy": [1 - v / 3 for v in losses],
                                  "seconds": [0.2 + 0.01 * params["conv_2_filters"]] * epochs},
                 schema.T_PARAMS: 1000 * params["conv_1_filters"], schema.T_WALL: 2.0 + epochs,
                 schema.T_FIT: float(epochs)}
        if i >= n:
            attrs[schema.T_REPEAT_OF] = i - n
        hps = space_hyperparameters()
        hps.values.update(params)
        params, distributions = active_params(hps)
        trial = optuna.trial.create_trial(params=params, distributions=distributions,
                                          value=min(losses), user_attrs=attrs)
        space.add_trial(trial)
        trials.append(space.trials[-1])
    return trials


def test_surrogate_is_deterministic_and_learns_a_known_curve() -> None:
    from bench.replay import surrogate
    from models.space import space_config
    trials = _synthetic_record()
    a = surrogate.fit(trials, space_config(), model="random_forest")
    b = surrogate.fit(trials, space_config(), model="random_forest")
    params = dict(trials[3].params)
    one, again, other = a.curve(params, 7), b.curve(params, 7), a.curve(params, 8)
    assert np.array_equal(one.val_loss, again.val_loss)        # refitted: identical
    assert np.array_equal(one.val_accuracy, again.val_accuracy)
    assert not np.array_equal(one.val_loss, other.val_loss)    # another seed: another run
    assert a.fidelity["candidates"]["random_forest"]["spearman"] > 0.8  # a learnable function
    # The noise the repeats show is the noise replay adds (offset 0.05, jitter 0.025).
    noise = a.fidelity["noise"]
    assert 0.02 < noise["log_val_loss_offset_sd"] < 0.1
    assert 0.01 < noise["log_val_loss_jitter_sd"] < 0.05
    assert 0.5 < noise["replay_sd_log_best"] / noise["repeat_sd_log_best"] < 2


def test_fast_forest_prediction_is_the_forests() -> None:
    from bench.replay.surrogate import CANDIDATES, predict
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    for name in CANDIDATES:
        model = CANDIDATES[name]().fit(x, y)
        z = rng.normal(size=(15, 5))
        assert np.allclose(predict(model, z), model.predict(z), rtol=0, atol=1e-12), name


def test_replay_command_stores_replay_studies_and_is_resumable(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    rdb = store.open_storage(url)
    record = store.create_study(rdb, "toon-record-quick-s0")
    from models.space import space_config
    for t in _synthetic_record(epochs=2):
        record.add_trial(t)
    record.set_user_attr(schema.STUDY_BENCH, {"kind": schema.KIND_RECORD, "space": space_config()})
    args = ["replay", "--searchers", "random,bohb", "--seeds", "2", "--preset", "quick",
            "--jobs", "1", "--storage", url]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("[replay random s") == 2 and out.count("[replay bohb s") == 2
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(store.open_storage(url))}
    run = summaries["toon-replay-quick-bohb-s1"]
    bench = run.user_attrs[schema.STUDY_BENCH]
    assert bench["kind"] == schema.KIND_REPLAY and bench["backend"] == "optuna"
    trials = optuna.load_study(study_name=run.study_name, storage=url).trials
    assert store.epochs_used(trials) == 8 == bench["budget_epochs"]
    assert all(schema.T_WALL in t.user_attrs and schema.T_SEARCHER in t.user_attrs for t in trials)
    assert [t.datetime_complete for t in trials] == sorted(t.datetime_complete for t in trials)
    meta = summaries["toon-replay-quick"].user_attrs[schema.STUDY_BENCH]
    assert meta["kind"] == schema.KIND_REPLAY_SUMMARY and meta["surrogate"]["configs"] == 40
    # Again: nothing replayed twice, nothing lost.
    assert main(args) == 0
    assert "0 runs to replay (4 already stored)" in capsys.readouterr().out
    assert len(optuna.load_study(study_name=run.study_name, storage=url).trials) == len(trials)


def test_record_keeps_full_curves_and_repeats_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'rec.db'}"
    args = ["record", "--preset", "quick", "--configs", "10", "--repeats", "1",
            "--epochs-per-trial", "2", "--trials-per-process", "0", "--storage", url]
    assert main(args) == 0
    assert capsys.readouterr().out.count("] trial #") == 11  # one progress line per configuration
    study = optuna.load_study(study_name="toon-record-quick-s0", storage=url)
    assert study.user_attrs[schema.STUDY_BENCH]["kind"] == schema.KIND_RECORD
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 11
    for t in trials:  # no early stopping: every curve has every epoch
        curve = t.user_attrs[schema.T_CURVE]
        assert curve["epochs"] == [1, 2] and len(curve["val_loss"]) == 2
        assert list(t.intermediate_values.values()) == curve["val_loss"]
        assert len(curve["seconds"]) == 2 and all(s > 0 for s in curve["seconds"])
    repeat = trials[10]
    assert repeat.user_attrs[schema.T_REPEAT_OF] == 0 and repeat.params == trials[0].params
    assert repeat.user_attrs[schema.T_TRAIN_SEED] != trials[0].user_attrs[schema.T_TRAIN_SEED]
    assert repeat.user_attrs[schema.T_CURVE]["val_loss"] != trials[0].user_attrs[schema.T_CURVE]["val_loss"]
    assert main(args) == 0  # resumes: nothing trained again, no second repeat
    assert len(optuna.load_study(study_name="toon-record-quick-s0", storage=url).trials) == 11


def test_a_replayed_run_is_deterministic(tmp_path: Path) -> None:
    """Twice the same (searcher, seed): the same run, Hyperband pruner brackets included
    (Optuna derives them from the study name)."""
    from bench.replay import surrogate
    from models.space import space_config
    fitted = surrogate.fit(_synthetic_record(epochs=6), space_config(), model="random_forest",
                           evaluate=False)
    spec = ReplaySpec("bohb", 11, 60, 6, 3, "toon", "quick")
    one, two = (replay_run(spec, fitted, tmp_path / str(i)) for i in range(2))
    assert [(t.params, t.state, t.value, t.intermediate) for t in one.trials] == [
        (t.params, t.state, t.value, t.intermediate) for t in two.trials]
    assert any(t.state == "PRUNED" for t in one.trials)


def _record_store(url: str) -> None:
    from models.space import space_config
    record = store.create_study(store.open_storage(url), "toon-record-quick-s0")
    for t in _synthetic_record(epochs=2):
        record.add_trial(t)
    record.set_user_attr(schema.STUDY_BENCH, {"kind": schema.KIND_RECORD, "space": space_config()})


def test_compact_rows_are_what_the_report_reads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A replay stored only as summary rows (--compact) gives the report exactly the runs a
    replay with a study per run gives, and its store holds no study per run."""
    from bench.report import results as report
    stores = {}
    for mode in ("studies", "compact"):
        url = f"sqlite:///{tmp_path / (mode + '.db')}"
        _record_store(url)
        args = ["replay", "--searchers", "random,bohb", "--seeds", "3", "--preset", "quick",
                "--jobs", "1", "--storage", url] + (["--compact"] if mode == "compact" else [])
        assert main(args) == 0
        stores[mode] = url
    capsys.readouterr()
    names = {s.study_name for s in optuna.get_all_study_summaries(store.open_storage(stores["compact"]))}
    assert names == {"toon-record-quick-s0", "toon-replay-quick"}
    full, compact = (report.collect(stores[m])["toon"].replays["quick"] for m in ("studies", "compact"))
    assert sorted(full) == sorted(compact) == ["bohb", "random"]
    for searcher in full:
        assert [r.seed for r in full[searcher]] == [r.seed for r in compact[searcher]] == [0, 1, 2]
        for a, b in zip(full[searcher], compact[searcher]):
            assert (a.used, a.budget_epochs, a.backend) == (b.used, b.budget_epochs, b.backend)
            assert [p for p in report.anytime(a.trials)] == [p for p in report.anytime(b.trials)]
            assert report.best_within(a, [25, 50, 100]).tolist() == report.best_within(
                b, [25, 50, 100]).tolist()
    # The compact store resumes from its rows: nothing replayed twice.
    assert main(["replay", "--searchers", "random,bohb", "--seeds", "3", "--preset", "quick",
                 "--jobs", "1", "--storage", stores["compact"], "--compact"]) == 0
    assert "0 runs to replay (6 already stored)" in capsys.readouterr().out


def test_a_summary_filled_by_two_commands_shows_both(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.report import results as report
    url = f"sqlite:///{tmp_path / 'two.db'}"
    _record_store(url)
    base = ["replay", "--preset", "quick", "--jobs", "1", "--storage", url, "--compact"]
    assert main(base + ["--searchers", "random", "--seeds", "2"]) == 0
    assert main(base + ["--searchers", "bohb", "--seeds", "1"]) == 0
    assert main(base + ["--searchers", "bohb", "--seeds", "1"]) == 0  # nothing to do: no entry
    capsys.readouterr()
    meta = optuna.load_study(study_name="toon-replay-quick", storage=url).user_attrs[schema.STUDY_BENCH]
    assert [(c["searchers"], c["replayed_runs"]) for c in meta["commands"]] == [
        (["random"], 2), (["bohb"], 1)]
    group = report.collect(url)["toon"]
    lines = report.render_replay_summary(group.extra[schema.KIND_REPLAY_SUMMARY][0])
    text = "\n".join(lines)
    assert "filled by 2 replay commands" in text
    assert '- 2 runs in' in text and '- 1 runs in' in text
    assert sorted(group.replays["quick"]) == ["bohb", "random"]
