"""The one interface every searcher implements.

A searcher names a KerasTuner ``Tuner`` class and the keyword arguments that configure
its oracle for a run. Everything else (the model, the data, the epoch budget, logging
to TensorBoard and to the study store) is the same for all searchers and lives in
``bench``, so that searchers are compared on identical terms.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # searcher names and summaries must not cost a TensorFlow import
    import keras_tuner
    import optuna


@dataclass(frozen=True)
class SearchSettings:
    """What a run asks of a searcher."""

    seed: int
    epochs_per_trial: int            # epochs of one full trial (Hyperband's max_epochs)
    max_trials: int | None = None    # None: only the epoch budget / timeout ends the run
    sampler: str | None = None       # Optuna-backed searchers: override the default
    pruner: str | None = None
    study: optuna.Study | None = None  # the run's study (Optuna-backed searchers decide in it)
    # Optuna-backed searchers with max_trials: issue the study's trial tickets (False: a
    # worker of several, whose launcher issued them once; see searchers.tickets).
    issue_tickets: bool = True
    # Several objectives: a multi-objective run (Optuna-backed searchers search the front
    # of a study with one direction each; KerasTuner's own sum them, as they do).
    objectives: tuple[str, ...] = ("val_loss",)
    max_params: int | None = None    # size cap (an Optuna constraint); None: no cap
    budget_epochs: int | None = None  # the run's epoch budget, for searchers that plan by it

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


class Searcher(ABC):
    """A named search algorithm behind KerasTuner's ``Tuner`` API."""

    name: ClassVar[str]
    backend: ClassVar[str]            # "keras_tuner" or "optuna"
    summary: ClassVar[str]
    parallel_workers: ClassVar[bool] = False  # can several processes share one study?
    proposer: ClassVar[str | None] = None     # whose algorithm proposes, when not the backend's
    # How a run's study gets this searcher's trials. True: its oracle decides in the study
    # and records each trial there live (an ``OptunaOracle``: the run attaches its attrs
    # through the oracle's ``before_tell`` hook). False: its oracle decides outside the
    # study (KerasTuner's own searchers) and the run mirrors each trial into it.
    records_live: ClassVar[bool] = False

    @property
    def proposed_by(self) -> str:
        """The library whose algorithm proposes configurations: what reports compare
        ("optuna" vs "keras_tuner"), while ``backend`` says how a run is driven."""
        return self.proposer or self.backend

    @abstractmethod
    def tuner_class(self) -> type[keras_tuner.Tuner]:
        """The KerasTuner tuner class to run."""

    @abstractmethod
    def tuner_kwargs(self, settings: SearchSettings) -> dict[str, Any]:
        """Oracle arguments for one run (seed, trial limits, sampler...)."""

    def configure_oracle(self, oracle: keras_tuner.Oracle, settings: SearchSettings) -> None:
        """Settings an oracle of this searcher takes only once built (none by default)."""
        return None

    def study_components(self, settings: SearchSettings) -> tuple[
            optuna.samplers.BaseSampler | None, optuna.pruners.BasePruner | None]:
        """Sampler and pruner the run's study is created with (None: the study only records)."""
        return None, None

    def label(self, settings: SearchSettings) -> str:
        """Name used in study names and reports (differs when options change the algorithm)."""
        return self.name


# KerasTuner needs a trial limit for some oracles; the epoch budget is what really ends
# a benchmark run, so "no limit" is a number no run reaches.
NO_TRIAL_LIMIT = 9999

# KerasTuner's oracles draw the i-th random value of a run from ``seed + i`` (one draw per
# active hyperparameter, ``Oracle._seed_state``), and treat seed 0 as "pick one at random".
# So with 11 hyperparameters, runs with seeds s and s + 11 propose the same configurations
# shifted by one trial, and seed 0 is not reproducible. A benchmark's seeds must be
# independent runs: each run seed gets a KerasTuner seed ~10^6 draws away from the next.
KT_SEED_STRIDE = 1_000_003
KT_SEED_MODULUS = 4_294_967_291  # the largest prime < 2**32: distinct run seeds stay distinct


def keras_tuner_seed(seed: int) -> int:
    """The KerasTuner oracle seed for a run seed: non-zero, < 2**32 (NumPy's RandomState
    takes it in BayesianOptimization), far apart for different run seeds."""
    return (seed * KT_SEED_STRIDE) % KT_SEED_MODULUS + 1
