"""The Optuna-backed oracle writes a trial's parameters (and its kt_trial_id) to the
store in one commit, not one commit per hyperparameter (searchers/optuna_oracle.py,
``_writes_at_once``), and writes exactly what Optuna's own per-call writes would.

"Today" below is the oracle with the batching switched off (``_writes_at_once`` replaced
by a no-op), i.e. Optuna's plain ``Trial.suggest_*`` writing each parameter on its own.
No training: ``populate_space`` / ``_restart`` are called directly.
"""
from __future__ import annotations

import contextlib
import re
import threading

import keras_tuner
import optuna
import pytest
import sqlalchemy
from keras_tuner.engine import trial as trial_module
from optuna.trial import TrialState

from searchers import optuna_oracle, seam
from searchers.optuna_oracle import OptunaOracle

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVE = keras_tuner.Objective("score", "min")
_WRITE = re.compile(r'^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)',
                    re.IGNORECASE)


def space() -> keras_tuner.HyperParameters:
    """Several Int / Choice / Float / Boolean hyperparameters and one conditional scope."""
    hps = keras_tuner.HyperParameters()
    hps.Int("units", 4, 32, step=4)
    hps.Choice("kernel", [3, 5])
    kind = hps.Choice("kind", ["a", "b"])
    with hps.conditional_scope("kind", "a"):
        hps.Int("a_depth", 1, 4)
    with hps.conditional_scope("kind", "b"):
        hps.Float("b_rate", 0.0, 0.9, step=0.1)
    hps.Float("lr", 1e-4, 1e-1, sampling="log")
    hps.Float("momentum", 0.0, 1.0)
    hps.Int("batch", 8, 128, sampling="log")
    hps.Boolean("bn")
    assert kind == "a"
    return hps


class Commits:
    """Commits on an engine, each with the tables its transaction wrote."""

    def __init__(self, engine: sqlalchemy.engine.Engine) -> None:
        self.engine = engine
        self.log: list[frozenset[str]] = []
        self._open: dict[int, set[str]] = {}

    def _execute(self, conn, cursor, statement, parameters, context, executemany):
        match = _WRITE.match(statement)
        if match:
            self._open.setdefault(threading.get_ident(), set()).add(match.group(1).lower())

    def _commit(self, conn):
        self.log.append(frozenset(self._open.pop(threading.get_ident(), set())))

    def _rollback(self, conn):
        self._open.pop(threading.get_ident(), None)

    @contextlib.contextmanager
    def counting(self):
        self.log = []
        events = (("before_cursor_execute", self._execute), ("commit", self._commit),
                  ("rollback", self._rollback))
        for name, fn in events:
            sqlalchemy.event.listen(self.engine, name, fn)
        try:
            yield self
        finally:
            for name, fn in events:
                sqlalchemy.event.remove(self.engine, name, fn)

    def writing(self, table: str) -> int:
        return sum(table in tables for tables in self.log)

    @property
    def writes(self) -> int:
        """Commits that wrote, heartbeats aside: Optuna updates a heartbeat row with SQL's
        ``now()``, which SQLite gives to the second, so a second beat of the same trial is
        an UPDATE or no write at all depending on whether the clock's second turned (the
        cause of this test's rare failures under load)."""
        return sum(bool(tables - {"trial_heartbeats"}) for tables in self.log)


def rdb(path, name: str = "s.db", **kw) -> optuna.storages.RDBStorage:
    storage = optuna.storages.RDBStorage(f"sqlite:///{path / name}", **kw)
    # no disk syncs: the tests count commits, they need not wait for them
    sqlalchemy.event.listen(storage.engine, "connect",
                            lambda con, _rec: con.execute("PRAGMA synchronous=OFF"))
    storage.engine.dispose()
    return storage


def oracle(storage, *, seed: int = 3, max_trials=None, hps=None, sampler=None,
           study=None) -> OptunaOracle:
    if study is None:
        sampler = sampler or optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)
        study = optuna.create_study(storage=storage, study_name="s", sampler=sampler,
                                    load_if_exists=True)
    return OptunaOracle(objective=OBJECTIVE, max_trials=max_trials, study=study,
                        hyperparameters=hps or space())


@pytest.fixture
def today(monkeypatch):
    """Switch the batching off inside a ``with today():`` block (Optuna's plain writes)."""
    @contextlib.contextmanager
    def switch():
        with monkeypatch.context() as m:
            m.setattr(optuna_oracle, "_writes_at_once", lambda otrial: contextlib.nullcontext())
            yield
    return switch


def stored(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, number))


def score(values: dict) -> float:
    return values["units"] + 10 * values["lr"] + values["momentum"] + (values["kind"] == "b")


@pytest.mark.parametrize("tickets", [False, True], ids=["ask", "tickets"])
def test_one_commit_for_params_and_same_values_as_today(tmp_path, today, tickets):
    max_trials = 6 if tickets else None
    beat = dict(heartbeat_interval=600) if tickets else {}  # the project's stores beat
    new = oracle(rdb(tmp_path, "new.db", **beat), max_trials=max_trials)
    old = oracle(rdb(tmp_path, "old.db", **beat), max_trials=max_trials)
    assert isinstance(new.study._storage, optuna.storages._CachedStorage)  # what an RDB URL gets
    engine_new, engine_old = new.study._storage._backend.engine, old.study._storage._backend.engine
    kinds = set()
    try:
        for i in range(6):  # TPE models the space after 2: later values depend on history
            with Commits(engine_new).counting() as c_new:
                got = new.populate_space(f"t{i}")
            with today(), Commits(engine_old).counting() as c_old:
                want = old.populate_space(f"t{i}")
            assert got["status"] == want["status"] == trial_module.TrialStatus.RUNNING
            assert got["values"] == want["values"]  # bit-identical: same sampler calls
            values = got["values"]
            kinds.add(values["kind"])
            assert ("a_depth" in values) == (values["kind"] == "a")  # the conditional scope
            assert ("b_rate" in values) == (values["kind"] == "b")

            # today: one commit per hyperparameter, plus one for kt_trial_id
            assert c_old.writing("trial_params") == len(values)
            assert c_old.writing("trial_user_attributes") == 1
            # now: all of them in one commit
            assert c_new.writing("trial_params") == 1
            assert c_new.writing("trial_user_attributes") == 1
            assert [t for t in c_new.log if "trial_params" in t] == [
                frozenset({"trial_params", "trial_user_attributes"})]
            assert c_old.writes - c_new.writes == len(values), (
                f"old: {[sorted(t) for t in c_old.log]}\nnew: {[sorted(t) for t in c_new.log]}")

            a, b = stored(new.study, i), stored(old.study, i)
            assert a.params == b.params == values
            assert a.distributions == b.distributions
            assert a.user_attrs == b.user_attrs == {"kt_trial_id": f"t{i}"}
            assert a.state == b.state == TrialState.RUNNING
            live = new.optuna_trial(f"t{i}")
            assert live.params == values and live.storage is new.study._storage  # given back
            for orc in (new, old):
                orc.study.tell(orc.optuna_trial(f"t{i}"), score(values))
    finally:
        new.stop_heartbeats()
        old.stop_heartbeats()
    assert [t.params for t in new.study.trials] == [t.params for t in old.study.trials]
    assert kinds == {"a", "b"}  # both branches of the scope were written


def test_same_values_as_plain_optuna_suggest(tmp_path):
    """Against Optuna alone: a study with the same seeded sampler, suggest_* per hp."""
    from searchers.seam import suggest

    orc = oracle(rdb(tmp_path), seed=7)
    plain = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7, n_startup_trials=2))
    for i in range(5):
        values = orc.populate_space(f"t{i}")["values"]
        trial = plain.ask()
        hps = keras_tuner.HyperParameters()
        expected = {}
        for hp in space().space:
            hps.merge([hp])
            if hps.is_active(hp):
                expected[hp.name] = hps.values[hp.name] = suggest(trial, hp)
        assert values == expected
        assert stored(orc.study, i).params == trial.params
        assert stored(orc.study, i).distributions == trial.distributions
        orc.study.tell(orc.optuna_trial(f"t{i}"), score(values))
        plain.tell(trial, score(values))


def test_retry_records_params_in_one_commit(tmp_path):
    storage = rdb(tmp_path)
    first = oracle(storage)
    values = first.populate_space("t0")["values"]
    state = first.get_state()
    # a later process resumes the search: KerasTuner retries t0 with the same values
    again = oracle(storage)
    again._optuna_ids = dict(state["optuna_trial_ids"])
    hps = space()
    hps.values.update(values)
    retried = trial_module.Trial(hps, trial_id="t0", status=trial_module.TrialStatus.RUNNING)
    with Commits(storage.engine).counting() as commits:
        assert again._restart(retried)
    assert commits.writing("trial_params") == 1
    assert [t for t in commits.log if "trial_params" in t] == [
        frozenset({"trial_params", "trial_user_attributes"})]
    old, new = again.study.trials
    assert old.state == TrialState.FAIL
    assert new.state == TrialState.RUNNING
    assert new.params == old.params == values
    assert new.distributions == old.distributions
    assert new.user_attrs == {"kt_trial_id": "t0", "retry_of": 0}
    assert again.optuna_trial("t0").storage is again.study._storage


def test_attrs_before_tell_in_one_commit(tmp_path, today):
    """The ``before_tell`` hook's user attrs (the benchmark's per-trial record: wall and fit
    seconds, epochs, curve...) reach the store in one commit, then ``tell``; the stored
    trial is the one per-call writes leave."""
    attrs = {f"attr{i}": i for i in range(6)} | {"curve": {"val_loss": [0.5, 0.4]}}
    finished = {}
    for label, ctx in (("new", contextlib.nullcontext), ("old", today)):
        storage = rdb(tmp_path, f"{label}.db")
        orc = oracle(storage)
        orc.before_tell = lambda _id, live: [live.set_user_attr(k, v) for k, v in attrs.items()]
        orc.populate_space("t0")
        kt = trial_module.Trial(space(), trial_id="t0", status=trial_module.TrialStatus.COMPLETED)
        kt.score = 0.25
        with ctx(), Commits(storage.engine).counting() as commits:
            orc._finish(kt)
        finished[label] = (commits, orc.study.trials[0])
    (new, new_trial), (old, old_trial) = finished["new"], finished["old"]
    assert new.writing("trial_user_attributes") == 1
    assert old.writing("trial_user_attributes") == len(attrs)
    assert new_trial.user_attrs == old_trial.user_attrs == {"kt_trial_id": "t0", **attrs}
    assert new_trial.state == old_trial.state == TrialState.COMPLETE
    assert new_trial.value == old_trial.value == 0.25


def test_in_memory_storage(today):
    """Not an RDB store: the writes are the plain per-call ones, values unchanged."""
    got, want = [], []
    for out, ctx in ((got, contextlib.nullcontext), (want, today)):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=5, n_startup_trials=2))
        assert isinstance(study._storage, optuna.storages.InMemoryStorage)
        orc = oracle(None, study=study, max_trials=4)
        for i in range(4):
            with ctx():
                values = orc.populate_space(f"t{i}")["values"]
            trial = study.trials[i]
            assert trial.params == values and trial.user_attrs == {"kt_trial_id": f"t{i}"}
            out.append((values, trial.distributions))
            study.tell(orc.optuna_trial(f"t{i}"), score(values))
        assert orc.populate_space("t4")["status"] == trial_module.TrialStatus.STOPPED
    assert got == want


def test_a_failed_write_raises_and_leaves_what_today_leaves(tmp_path, today):
    """A parameter whose distribution disagrees with the study's: Optuna refuses it; the
    store then holds what the per-call writes left (those before it), as today."""
    stores = {}
    for mode, ctx in (("new", contextlib.nullcontext), ("old", today)):
        storage = rdb(tmp_path, f"{mode}.db")
        study = optuna.create_study(storage=storage, study_name="s",
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 0.5}, distributions={"lr": optuna.distributions.CategoricalDistribution(
                [0.5, 0.7])}, value=1.0))
        orc = oracle(None, study=study)
        with ctx(), pytest.raises(ValueError, match="different distribution"):
            orc.populate_space("t0")
        stores[mode] = stored(study, 1)
    new, old = stores["new"], stores["old"]
    assert new.params == old.params and {"units", "kernel", "kind"} <= set(new.params)
    assert "lr" not in new.params and "momentum" not in new.params
    assert new.user_attrs == old.user_attrs == {"kt_trial_id": "t0"}


def test_trial_failed_meanwhile_raises(tmp_path, monkeypatch):
    """The trial ended (e.g. failed as stale) before its values were written: the write
    raises as Optuna's per-call write would, and nothing is written."""
    orc = oracle(rdb(tmp_path))
    real = optuna_oracle.suggest

    def failing_first(otrial, hp):
        if not otrial.params:
            orc.study._storage.set_trial_state_values(otrial._trial_id, TrialState.FAIL)
        return real(otrial, hp)

    monkeypatch.setattr(optuna_oracle, "suggest", failing_first)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        orc.populate_space("t0")
    trial = orc.study.trials[0]
    assert trial.state == TrialState.FAIL and trial.params == {}


def test_interrupted_while_suggesting_writes_what_was_suggested(tmp_path, monkeypatch):
    """Stopped between two suggestions (Ctrl-C): what was suggested so far is written, as
    it was with one write per call, and the interrupt goes on."""
    orc = oracle(rdb(tmp_path))
    real = optuna_oracle.suggest

    def interrupt_third(otrial, hp):
        if len(otrial.params) == 2:
            raise KeyboardInterrupt
        return real(otrial, hp)

    monkeypatch.setattr(optuna_oracle, "suggest", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        orc.populate_space("t0")
    trial = orc.study.trials[0]
    assert set(trial.params) == {"units", "kernel"}
    assert trial.user_attrs == {"kt_trial_id": "t0"}
    assert orc.optuna_trial("t0").storage is orc.study._storage
    orc.fail_live_trials("interrupted")
    assert orc.study.trials[0].state == TrialState.FAIL


def test_cache_knows_the_distributions(tmp_path, monkeypatch):
    """Like _CachedStorage.set_trial_param, the batch fills the cache's distributions and
    passes them on, so a later trial's writes skip the study-wide distribution query."""
    orc = oracle(rdb(tmp_path))
    values = orc.populate_space("t0")["values"]
    cache = orc.study._storage
    assert set(cache._studies[orc.study._study_id].param_distribution) == set(values)
    seen = {}
    real = optuna.storages.RDBStorage._set_trial_param_without_commit

    def spy(self, session, trial_id, name, value, dist, previous=None):
        seen[name] = previous
        return real(self, session, trial_id, name, value, dist, previous)

    monkeypatch.setattr(optuna.storages.RDBStorage, "_set_trial_param_without_commit", spy)
    again = orc.populate_space("t1")["values"]
    assert set(seen) == set(again)
    assert all(seen[name] == stored(orc.study, 0).distributions[name]
               for name in set(values) & set(again))


def test_skipped_retries_are_not_consecutive_failures(tmp_path) -> None:
    """Retries of interrupted trials that get no place in the study end FAILED, but they
    are no failed configurations: three of them must not stop the search as KerasTuner's
    "consecutive failures" (seen after two interrupted --workers launches)."""
    import keras_tuner
    from keras_tuner.engine import trial as trial_module

    from searchers.optuna_oracle import OptunaOracle

    oracle = OptunaOracle(objective="val_loss", max_trials=1, seed=0,
                          storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s",
                          max_consecutive_failed_trials=3)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.hyperparameters.Int("a", 0, 3)
    for i in range(3):
        trial = trial_module.Trial(oracle.hyperparameters.copy(), trial_id=str(i),
                                   status=trial_module.TrialStatus.RUNNING)
        oracle.trials[trial.trial_id] = trial
        oracle.ongoing_trials["tuner0"] = trial
        oracle._skip_retry("tuner0", trial)
        assert trial.status == trial_module.TrialStatus.FAILED and "its place" in trial.message
    oracle._check_consecutive_failures()  # raised RuntimeError before
    assert not oracle.ongoing_trials and isinstance(oracle, keras_tuner.Oracle)
    assert (tmp_path / "p" / "trial_2" / "trial.json").is_file()


# ----------------------------------------------------------------------------- many trials at once
def _finished_trials() -> list[optuna.trial.FrozenTrial]:
    import datetime

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    dists = {"units": IntDistribution(4, 32, step=4), "rate": FloatDistribution(0.0, 0.9, step=0.1),
             "lr": CategoricalDistribution([0.01, 0.001]), "act": CategoricalDistribution(["relu", "tanh"])}
    base = datetime.datetime(2000, 1, 1)
    trials = []
    for i, (state, value) in enumerate([(TrialState.COMPLETE, 0.5), (TrialState.PRUNED, 0.9),
                                        (TrialState.COMPLETE, float("inf")), (TrialState.FAIL, None)]):
        trials.append(optuna.trial.FrozenTrial(
            number=i, state=state, value=value, trial_id=i,
            datetime_start=base + datetime.timedelta(seconds=10 * i),
            datetime_complete=base + datetime.timedelta(seconds=10 * i + 7),
            params={"units": 8 + 4 * i, "rate": round(0.1 * i, 1), "lr": 0.001, "act": "tanh"},
            distributions=dists,
            user_attrs={"epochs_trained": i + 1, "curve": {"val_loss": [1.0, 0.5]}, "cut": i == 2},
            system_attrs={"fixed_params": {"units": 8}} if i == 1 else {},
            intermediate_values={1: 1.0, 2: 0.5 + i, 3: float("nan") if i == 3 else 0.25}))
    return trials


def _seen(trial: optuna.trial.FrozenTrial) -> tuple:
    return (trial.number, trial.state, trial.values, trial.params, trial.distributions,
            trial.user_attrs, trial.system_attrs,
            {k: ("nan" if v != v else v) for k, v in trial.intermediate_values.items()},
            trial.datetime_start, trial.datetime_complete)


@pytest.mark.parametrize("url", ["sqlite", "postgresql://postgres@127.0.0.1:5432/test"])
def test_add_trials_at_once_stores_what_add_trials_stores(url: str, tmp_path) -> None:
    from bench.core import store
    from tests.conftest import require_server
    if url == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.db'}"
    else:
        require_server("PostgreSQL", url)
    rdb = store.open_storage(url)
    names = [f"at-once-{tmp_path.name}"[-60:], f"each-{tmp_path.name}"[-60:]]
    for name in names:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=rdb)
        store.create_study(rdb, name, load_if_exists=False)
    seam.add_trials_at_once(rdb, names[0], _finished_trials())
    optuna.load_study(study_name=names[1], storage=rdb).add_trials(_finished_trials())
    at_once, each = (optuna.load_study(study_name=n, storage=url).trials for n in names)
    assert [_seen(t) for t in at_once] == [_seen(t) for t in each]
    assert len(at_once) == 4
    with pytest.raises(ValueError, match="already has trials"):  # never into a study with trials
        seam.add_trials_at_once(rdb, names[0], _finished_trials())
    for name in names:
        optuna.delete_study(study_name=name, storage=rdb)
