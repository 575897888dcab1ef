"""One "machine" of a shared study, run as its own process by tests/test_many_machines.py.

    python -m tests.machine search|best DIRECTORY STORAGE STUDY MAX_TRIALS ARTIFACTS|- OUT

``search``: an ``OptunaSearch`` in its own project DIRECTORY on the shared study (no
pruning, 1-epoch trials of tests/tiny.py) until the study holds MAX_TRIALS trials; every
trained model's weights are saved to OUT/trained-<study trial number>.npz (1 epoch: the
checkpoint's weights). ``best``: the same project reopened, ``get_best_models(2)``, whose
weights go to OUT/with/best-<rank>.npz and the study numbers of its best trials to
OUT/with/best.json; then the same project without the artifact store, to OUT/without/ (or
the error's first line to OUT/without/error.txt). TensorBoard logs of every trial go to
the folder ``tb`` two levels above DIRECTORY, shared by every machine.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import optuna

from searchers import OptunaSearch
from tests import tiny


class Recording(OptunaSearch):
    """Keeps the model each trial trained, to save its weights when the trial ends."""

    out = "."

    def _try_build(self, hp):
        self._model = super()._try_build(hp)
        return self._model

    def run_trial(self, trial, *args, **kwargs):
        histories = super().run_trial(trial, *args, **kwargs)
        number = self.oracle.study_trial_of(trial).number
        np.savez(os.path.join(self.out, f"trained-{number}.npz"), *self._model.get_weights())
        return histories


def _tuner(directory: str, storage: str, study: str, max_trials: int, store) -> Recording:
    return Recording(tiny.build, objective="val_loss", max_trials=max_trials,
                     pruner=optuna.pruners.NopPruner(), storage=storage, study_name=study,
                     directory=directory, project_name="p", artifact_store=store,
                     keep_best_checkpoints=2)


def _best(tuner: Recording, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    try:
        models = tuner.get_best_models(2)
    except FileNotFoundError as exc:
        with open(os.path.join(out, "error.txt"), "w") as f:
            f.write(str(exc).splitlines()[0])
        return
    for rank, model in enumerate(models):
        np.savez(os.path.join(out, f"best-{rank}.npz"), *model.get_weights())
    best = [tuner.oracle.study_trial_of(t).number for t in tuner.oracle.get_best_trials(2)]
    with open(os.path.join(out, "best.json"), "w") as f:
        json.dump(best, f)


def main(argv: list[str]) -> int:
    mode, directory, storage, study, max_trials, artifacts, out = argv
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = None if artifacts == "-" else optuna.artifacts.FileSystemArtifactStore(artifacts)
    Recording.out = out
    os.makedirs(out, exist_ok=True)
    tuner = _tuner(directory, storage, study, int(max_trials), store)
    if mode == "search":
        import keras
        x, y, xv, yv = tiny.data(0)
        shared_logs = os.path.join(os.path.dirname(os.path.dirname(directory)), "tb")
        tb = keras.callbacks.TensorBoard(shared_logs)
        tuner.search(x, y, epochs=1, validation_data=(xv, yv), verbose=0, callbacks=[tb])
        return 0
    _best(tuner, os.path.join(out, "with"))
    _best(_tuner(directory, storage, study, int(max_trials), None), os.path.join(out, "without"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
