"""One library scenario, run in a fresh process on the backend ``KERAS_BACKEND`` names.

Keras fixes its backend at import, so ``tests/test_backends.py`` starts this module once
per backend (``python -m tests.backend_scenario OUT``) and reads the JSON it writes to
``OUT/result.json``. It exercises what a JAX or PyTorch user relies on, each beside
KerasTuner's own RandomSearch on the same space and data:

* pruning (Optuna's pruner stops a trial; KerasTuner marks it STOPPED);
* the best-k checkpoints (only k files kept; ``get_best_models`` gives the trial's
  weights: evaluating the model reproduces the trial's objective);
* the input pipeline: tf.data once per search on TensorFlow, the plain arrays elsewhere;
* multi-objective (val_loss and params: the front, and the best model loads);
* resume (a second ``search`` on the same directory adds trials without re-running any);
* TensorBoard scalars and HParams from the benchmark's logger, written without importing
  TensorFlow on the other backends.

The assertions are in the test; this module only measures and records.
"""
from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path
from typing import Any


def _scenario(out: Path) -> dict[str, Any]:
    import keras
    import keras_tuner
    import numpy as np
    import optuna

    from searchers import OptunaSearch
    from tests.tiny import build, data

    result: dict[str, Any] = {"backend": keras.backend.backend()}
    x, y, xv, yv = data(0)
    fit = dict(validation_data=(xv, yv), batch_size=16, verbose=0)

    class PruneSecond(optuna.pruners.BasePruner):
        """Prunes trial 1 after its first epoch: one STOPPED trial with a checkpoint."""

        def prune(self, study: Any, trial: Any) -> bool:
            return trial.number == 1

    def single(max_trials: int) -> Any:
        return OptunaSearch(build, objective="val_loss", max_trials=max_trials, seed=3,
                            pruner=PruneSecond(), keep_best_checkpoints=2,
                            directory=str(out), project_name="single")

    # ---- pruning, best-k checkpoints, the input pipeline, resume
    tuner = single(4)
    pipelines: list[bool] = []  # per fit: does it train from the search's one tf.data pipeline?
    sees_pipeline = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: pipelines.append(tuner._pipeline is not None))
    tuner.search(x, y, epochs=3, callbacks=[sees_pipeline], **fit)
    study = tuner.study
    result["states"] = [t.state.name for t in study.get_trials(deepcopy=False)]
    result["pruned_steps"] = sorted(study.trials[1].intermediate_values)
    result["kt_statuses"] = sorted(t.status for t in tuner.oracle.trials.values())
    result["pipeline"] = pipelines
    result["checkpoints"] = len(glob.glob(os.path.join(tuner.project_dir, "trial_*", "checkpoint*")))
    best_trials = tuner.oracle.get_best_trials(2)
    models = tuner.get_best_models(2)
    result["best_scores"] = [t.score for t in best_trials]
    result["reloaded_val_loss"] = [float(m.evaluate(xv, yv, verbose=0)[0]) for m in models]
    result["best_params"] = tuner.get_best_hyperparameters(1)[0].values

    again = single(6)
    runs: list[int] = []
    count = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: runs.append(1))
    again.search(x, y, epochs=3, callbacks=[count], **fit)
    result["resumed_trials"] = len(again.study.trials)
    result["resumed_fits"] = len(runs)

    # ---- multi-objective: val_loss and the model's size
    multi = OptunaSearch(build, objective=["val_loss", "params"], multi_objective=True,
                         max_trials=4, seed=5, directory=str(out), project_name="multi")
    multi.search(x, y, epochs=2, **fit)
    result["front"] = len(multi.study.best_trials)
    result["multi_best_model_layers"] = len(multi.get_best_models(1)[0].layers)

    # ---- KerasTuner's own RandomSearch, the same space and data
    kt = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=4, seed=3,
                                  directory=str(out), project_name="kt")
    kt.search(x, y, epochs=3, **fit)
    kt_best = kt.oracle.get_best_trials(1)[0]
    result["kt_trials"] = len(kt.oracle.trials)
    result["kt_best_score"] = kt_best.score
    result["kt_reloaded_val_loss"] = float(kt.get_best_models(1)[0].evaluate(xv, yv, verbose=0)[0])
    result["same_space"] = (sorted(p.name for p in kt.oracle.hyperparameters.space)
                            == sorted(p.name for p in tuner.oracle.hyperparameters.space))

    # ---- TensorBoard: the benchmark's logger, per-epoch scalars and HParams
    from bench.run.tblog import HParamsLogger
    logger = HParamsLogger(out / "tb", tuner.oracle.hyperparameters,
                           metrics=("loss", "val_loss"))
    for t in study.get_trials(deepcopy=False):
        tid = t.user_attrs["kt_trial_id"]
        logger.start_trial(tid, t.params)
        for step, v in sorted(t.intermediate_values.items()):
            logger.log_epoch(tid, step, {"val_loss": v})
        logger.end_trial(tid, t.state.name, {"val_loss": t.value} if t.value is not None else {})
    logger.close()
    result["study_best"] = study.best_value
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    np.asarray(0)  # numpy stays importable on every backend
    return result


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    result = _scenario(out)
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
