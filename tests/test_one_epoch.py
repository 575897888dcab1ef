"""The one-epoch-then-top-k baseline: its plan, and a real run's trials as it plans them."""
from __future__ import annotations

import optuna
import pytest

from bench.core import schema
from bench.run.runner import RunConfig, run_search
from searchers.one_epoch import DEFAULT_SCREENED, plan

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("budget, epochs, expected", [
    (180, 15, (96, 6)),    # standard: half the budget screens, 6 continue 14 more epochs
    (8, 3, (4, 2)),
    (2, 2, (1, 1)),
    (10, 1, (10, 0)),      # one-epoch trials: nothing to continue
    (None, 15, (DEFAULT_SCREENED, 2)),
])
def test_plan_spends_the_budget(budget, epochs, expected):
    screened, continued = plan(budget, epochs)
    assert (screened, continued) == expected
    if budget and epochs > 1:
        assert screened + continued * (epochs - 1) <= budget + epochs


def test_a_run_screens_then_continues_the_best_from_their_checkpoints(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    summary = run_search(RunConfig(searcher="one-epoch", preset="quick", budget_epochs=8,
                                   epochs_per_trial=3, patience=0, storage=url,
                                   logdir=str(tmp_path / "runs"), trials_per_process=0),
                         printer=lambda _line: None)
    assert summary.epochs_used == 8
    trials = optuna.load_study(study_name=summary.study_name, storage=url).trials
    screened = [t for t in trials if t.user_attrs.get("tuner/round") == 0]
    continued = [t for t in trials if t.user_attrs.get("tuner/round") == 1]
    assert len(screened) == 4 and len(continued) == 2
    assert all(t.user_attrs[schema.T_EPOCHS] == 1 for t in screened)
    # the two best screened configurations, best first, each trained epochs 2..3 only
    by_id = {t.user_attrs[schema.T_KT_ID]: t for t in screened}
    best_two = sorted(screened, key=lambda t: t.value)[:2]
    assert [by_id[t.user_attrs["tuner/trial_id"]] for t in continued] == best_two
    for t in continued:
        assert t.params == by_id[t.user_attrs["tuner/trial_id"]].params
        assert t.user_attrs[schema.T_EPOCHS] == 2
        assert sorted(t.intermediate_values) == [2, 3]
