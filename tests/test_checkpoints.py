"""Checkpoint retention of ``OptunaSearch`` (``keep_best_checkpoints``).

Two searches of the project's CNN on tiny random images, 6 trials each, same seed: one
keeps the best 2 checkpoints, one keeps all (KerasTuner's behaviour). The build seeds the
weight initialisation and ``fit`` does not shuffle, so both searches train the same models
and ``get_best_models`` of the first can be compared weight by weight with the second's.
Trial 1 is pruned in both, so a STOPPED trial with a checkpoint file is in the mix.
"""
from __future__ import annotations

import glob
import os
import shutil
import warnings

import keras
import numpy as np
import optuna
import pytest
from keras_tuner.engine.trial import TrialStatus

from models import make_build_model
from searchers import OptunaSearch

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

SHAPE, CLASSES, TRIALS, K = (16, 8, 3), 4, 6, 2
RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, size=(64, *SHAPE)).astype("float32")
Y = RNG.integers(0, CLASSES, size=64)
XV = RNG.integers(0, 256, size=(32, *SHAPE)).astype("float32")
YV = RNG.integers(0, CLASSES, size=32)
_BUILD = make_build_model(SHAPE, CLASSES)


def build(hp):
    keras.utils.set_random_seed(0)  # same hps -> same initial weights in both searches
    return _BUILD(hp)


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 after its first epoch: a STOPPED trial that wrote a checkpoint."""

    def prune(self, study, trial):
        return trial.number == 1 and trial.last_step is not None and trial.last_step >= 1


def tuner(path, keep, max_trials=TRIALS):
    return OptunaSearch(build, objective="val_loss", max_trials=max_trials, seed=5,
                        pruner=PruneTrialOne(), keep_best_checkpoints=keep,
                        directory=str(path), project_name="proj")


def search(t) -> None:
    t.search(X, Y, epochs=2, batch_size=32, shuffle=False, validation_data=(XV, YV),
             verbose=0)


def checkpoint_ids(t) -> set[str]:
    """Trial ids with a checkpoint file on disk."""
    files = glob.glob(os.path.join(t.project_dir, "trial_*", "checkpoint*"))
    return {os.path.basename(os.path.dirname(f))[len("trial_"):] for f in files}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    kept, every = tuner(root / "k2", K), tuner(root / "all", None)
    search(kept)
    search(every)
    return kept, every


def test_keeps_only_best_k_checkpoints(searched):
    kept, _ = searched
    assert len(kept.oracle.trials) == TRIALS
    assert len(glob.glob(os.path.join(kept.project_dir, "trial_*", "checkpoint*"))) == K
    best = [t.trial_id for t in kept.oracle.get_best_trials(K)]
    assert checkpoint_ids(kept) == set(best)
    # the same two by the study's own values (trial ids differ from Optuna numbers)
    done = sorted((t for t in kept.study.trials if t.value is not None), key=lambda t: t.value)
    assert {t.user_attrs["kt_trial_id"] for t in done[:K]} == set(best)
    # the pruned trial is STOPPED and lost its file; every trial.json stays (resume)
    assert [t.status for t in kept.oracle.trials.values()].count(TrialStatus.STOPPED) == 1
    assert len(glob.glob(os.path.join(kept.project_dir, "trial_*", "trial.json"))) == TRIALS
    assert len(glob.glob(os.path.join(kept.project_dir, "trial_*"))) == TRIALS  # no strays


def test_keep_none_keeps_every_checkpoint(searched):
    _, every = searched
    assert checkpoint_ids(every) == set(every.oracle.trials)  # the pruned trial's too
    assert len(checkpoint_ids(every)) == TRIALS


def test_get_best_models_same_as_keeping_all(searched):
    kept, every = searched
    assert ([t.hyperparameters.values for t in kept.oracle.get_best_trials(K)]
            == [t.hyperparameters.values for t in every.oracle.get_best_trials(K)])
    for n in range(1, K + 1):
        got, want = kept.get_best_models(n), every.get_best_models(n)
        assert len(got) == len(want) == n
        for g, w in zip(got, want):
            for gw, ww in zip(g.get_weights(), w.get_weights()):
                np.testing.assert_allclose(gw, ww, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g.predict(XV, verbose=0), w.predict(XV, verbose=0),
                                       rtol=1e-5, atol=1e-6)


def test_more_models_than_kept_is_a_clear_error(searched):
    kept, _ = searched
    with pytest.raises(ValueError, match=r"best 2 .*keep_best_checkpoints=2"):
        kept.get_best_models(K + 1)
    dropped = next(t for t in kept.oracle.trials.values()
                   if t.trial_id not in checkpoint_ids(kept))
    with pytest.raises(FileNotFoundError, match="keep_best_checkpoints"):
        kept.load_model(dropped)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_keep_best_checkpoints_validated(tmp_path, bad):
    with pytest.raises(ValueError, match="keep_best_checkpoints"):
        tuner(tmp_path, bad)


def test_resume_with_smaller_k_prunes_at_next_trial_end(searched, tmp_path):
    _, every = searched
    shutil.copytree(every.project_dir, tmp_path / "proj")  # a project that kept all 6
    resumed = tuner(tmp_path, 1, max_trials=TRIALS + 1)
    assert len(checkpoint_ids(resumed)) == TRIALS  # nothing deleted before a trial ends
    search(resumed)
    assert len(resumed.oracle.trials) == TRIALS + 1
    best = resumed.oracle.get_best_trials(1)[0]
    assert checkpoint_ids(resumed) == {best.trial_id}
    assert len(resumed.get_best_models(1)) == 1


def test_stopped_trials_pad_best_k_like_kerastuner(searched, tmp_path):
    """While fewer than k trials completed, KerasTuner's ``get_best_trials(k)`` pads with
    the others (STOPPED first-come): their checkpoints stay, so ``get_best_models(k)``
    still loads what KerasTuner would."""
    _, every = searched
    shutil.copytree(every.project_dir, tmp_path / "proj")
    t = tuner(tmp_path, 3)
    completed = [x for x in t.oracle.trials.values() if x.status == TrialStatus.COMPLETED]
    for x in completed[1:]:
        x.status = TrialStatus.STOPPED  # one COMPLETED trial left, five STOPPED
    t._delete_checkpoints_outside_best(3)
    best = [x.trial_id for x in t.oracle.get_best_trials(3)]
    assert best[0] == completed[0].trial_id and len(best) == 3
    assert checkpoint_ids(t) == set(best)
    assert len(t.get_best_models(3)) == 3


# ------------------------------------------------ files never written
def _saved_trial_ids(monkeypatch) -> list[str]:
    """Trial ids whose checkpoint ``save_weights`` writes, in order."""
    saved: list[str] = []
    real = keras.Model.save_weights

    def save(model, filepath, *args, **kwargs):
        saved.append(os.path.basename(os.path.dirname(filepath))[len("trial_"):])
        return real(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save)
    return saved


def test_a_trial_worse_than_the_kth_best_writes_no_file(tmp_path, monkeypatch):
    saved = _saved_trial_ids(monkeypatch)
    t = OptunaSearch(build, objective="val_loss", max_trials=TRIALS, seed=5,
                     pruner=optuna.pruners.NopPruner(), keep_best_checkpoints=1,
                     directory=str(tmp_path), project_name="proj")
    search(t)
    trials = list(t.oracle.trials.values())
    assert all(x.status == TrialStatus.COMPLETED for x in trials)
    expected, best = [], None
    for x in trials:  # written unless strictly worse than the best trial before it
        if best is None or x.score <= best:
            expected.append(x.trial_id)
        best = x.score if best is None else min(best, x.score)
    assert saved == expected and len(saved) < TRIALS
    assert checkpoint_ids(t) == {t.oracle.get_best_trials(1)[0].trial_id}


class PruneAfterTrialZero(optuna.pruners.BasePruner):
    """Every trial after the first is pruned after its first epoch (ends STOPPED)."""

    def prune(self, study, trial):
        return trial.number >= 1 and trial.last_step is not None and trial.last_step >= 1


def test_a_pruned_trial_writes_only_while_it_pads_the_best_k(tmp_path, monkeypatch):
    """One trial completes: KerasTuner pads its best 2 with the first STOPPED trial, so
    that one writes its file and the later pruned trials, never among the best 2, write
    none."""
    saved = _saved_trial_ids(monkeypatch)
    t = OptunaSearch(build, objective="val_loss", max_trials=5, seed=5,
                     pruner=PruneAfterTrialZero(), keep_best_checkpoints=K,
                     directory=str(tmp_path), project_name="proj")
    search(t)
    statuses = [x.status for x in t.oracle.trials.values()]
    assert statuses == [TrialStatus.COMPLETED] + [TrialStatus.STOPPED] * 4
    best = [x.trial_id for x in t.oracle.get_best_trials(K)]
    assert saved == best == list(t.oracle.trials)[:2]
    assert checkpoint_ids(t) == set(best)
    assert len(t.get_best_models(K)) == K


# ------------------------------------------------ garbage collection before builds
def test_full_collection_every_nth_build_and_after_a_large_model(tmp_path, monkeypatch) -> None:
    """KerasTuner collects before every build; OptunaSearch every `collect_every`-th, and
    always after a model of LARGE_MODEL_PARAMS or more (its garbage is worth freeing)."""
    import keras
    import keras_tuner

    from searchers.optuna_tuner import LARGE_MODEL_PARAMS, OptunaSearch

    def build(hp):
        units = hp.Choice("units", [1, 2000])  # 2000 x 600 inputs: a model over 1M params
        model = keras.Sequential([keras.Input((600,)), keras.layers.Dense(units)])
        model.compile(loss="mse")
        return model

    collected: list[bool] = []
    real = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda free_memory=True: collected.append(free_memory) or real(False))
    tuner = OptunaSearch(build, objective="loss", max_trials=1, collect_every=3,
                         directory=str(tmp_path), project_name="gc")
    small, large = keras_tuner.HyperParameters(), keras_tuner.HyperParameters()
    small.Choice("units", [1, 2000])
    large.Choice("units", [1, 2000], default=2000)
    for hp in (small, small, small, small, large, small, small):
        tuner._try_build(hp)
    assert 2000 * 600 >= LARGE_MODEL_PARAMS
    assert collected == [True, False, False, True, False, True, True]  # 6th: after the large one
    for bad in (0, -1, 1.5, True):
        try:
            OptunaSearch(build, objective="loss", collect_every=bad, directory=str(tmp_path),
                         project_name="bad")
        except ValueError as exc:
            assert "collect_every" in str(exc)
        else:
            raise AssertionError(f"collect_every={bad!r} accepted")
