"""A learning-curve surrogate fitted on a ``bench record`` study, for ``bench replay``.

Given a configuration, an epoch and a replay seed it returns that epoch's val_loss,
val_accuracy and fit seconds, deterministically for (configuration, seed):

* the mean curve comes from a scikit-learn regressor over (encoded configuration, epoch),
  chosen among a few well-kept models by its score on held-out configurations
  (``fidelity``: grouped cross-validation, so no configuration is scored by a model that
  saw it);
* the seed-to-seed noise is what the record's repeats measured: in log(val_loss), an
  offset per training run (one draw per (configuration, seed)) plus an AR(1) jitter per
  epoch, with the repeats' standard deviations and lag-1 correlation. val_accuracy gets
  the same structure with its own figures; epoch seconds are the regressor's (the
  simulated clock has no noise).

Everything is fitted with fixed random states, so a surrogate fitted twice on the same
record answers identically (``bench replay`` refits it in each process).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from bench.core import schema
from bench.core.errors import UserError

# Candidate regressors, by name: constructors with fixed random states.
CANDIDATES: dict[str, Callable[[], Any]] = {}


def _candidate(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(factory: Callable[[], Any]) -> Callable[[], Any]:
        CANDIDATES[name] = factory
        return factory
    return register


@_candidate("random_forest")
def _random_forest() -> Any:
    from sklearn.ensemble import RandomForestRegressor
    return RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=0)


@_candidate("extra_trees")
def _extra_trees() -> Any:
    from sklearn.ensemble import ExtraTreesRegressor
    return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2, random_state=0)


@_candidate("gradient_boosting")
def _gradient_boosting() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=0)


@_candidate("k_nearest")
def _k_nearest() -> Any:
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=5, weights="distance"))


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)``; for a fitted forest regressor the same average of its trees'
    predictions, computed with each tree's own ``tree_.predict`` in one loop instead of one
    joblib task per tree (~0.7 ms each): a replayed trial asks for one curve, and a forest's
    dispatch overhead would otherwise be most of a replay's time."""
    trees = getattr(model, "estimators_", None)
    if not trees or not hasattr(trees[0], "tree_") or getattr(model, "n_outputs_", 1) != 1:
        return np.asarray(model.predict(x), float)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    total = np.zeros(len(x32))
    for tree in trees:
        total += tree.tree_.predict(x32).reshape(len(x32))
    return total / len(trees)


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Curve:
    """One training run's curve over epochs 1..n (index 0 = epoch 1)."""

    params: dict[str, Any]
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    seconds: np.ndarray
    n_params: int | None = None
    overhead: float | None = None    # wall - fit seconds of the recorded trial
    number: int | None = None        # trial number in the record study
    repeat_of: int | None = None


def curves_from_trials(trials: Sequence[FrozenTrial]) -> list[Curve]:
    """The complete, from-scratch curves of a record study (finished trials with a
    ``schema.T_CURVE`` starting at epoch 1 and a finite val_loss at every epoch)."""
    found = []
    for t in trials:
        curve = t.user_attrs.get(schema.T_CURVE)
        if t.state != TrialState.COMPLETE or not isinstance(curve, dict):
            continue
        epochs, losses = curve.get("epochs") or [], curve.get("val_loss") or []
        if not epochs or epochs[0] != 1 or any(v is None or not math.isfinite(v) for v in losses):
            continue
        accs = [a if a is not None else math.nan
                for a in curve.get("val_accuracy") or [math.nan] * len(epochs)]
        wall, fit = t.user_attrs.get(schema.T_WALL), t.user_attrs.get(schema.T_FIT)
        overhead = float(wall) - float(fit) if isinstance(wall, (int, float)) and isinstance(
            fit, (int, float)) else None
        found.append(Curve(
            params=dict(t.params), val_loss=np.asarray(losses, float),
            val_accuracy=np.asarray(accs, float),
            seconds=np.asarray(curve.get("seconds") or [0.0] * len(epochs), float),
            n_params=t.user_attrs.get(schema.T_PARAMS),
            overhead=overhead,
            number=t.number, repeat_of=t.user_attrs.get(schema.T_REPEAT_OF)))
    return found


# ----------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class Encoder:
    """Configuration -> numeric features, from the study's recorded space (``bench`` attr
    ``space``): ranges as numbers, a numeric Choice spanning two decades or more on a log
    scale, other choices by index, an absent (inactive) value as -1."""

    space: tuple[dict[str, Any], ...]

    def row(self, params: Mapping[str, Any]) -> list[float]:
        return [self._value(hp, params.get(hp["name"])) for hp in self.space]

    @staticmethod
    def _value(hp: Mapping[str, Any], value: Any) -> float:
        if value is None:
            return -1.0
        if hp["kind"] == "Choice":
            values = hp.get("values") or []
            if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                if min(values) > 0 and max(values) / min(values) >= 100:
                    return math.log10(float(value))
                return float(value)
            return float(values.index(value)) if value in values else -1.0
        if hp.get("sampling") == "log" and float(value) > 0:
            return math.log10(float(value))
        return float(value)


def config_key(params: Mapping[str, Any]) -> str:
    """A stable text key of a configuration (KerasTuner's ``tuner/*`` entries left out)."""
    clean = {k: round(v, 9) if isinstance(v, float) else v
             for k, v in params.items() if not k.startswith("tuner/")}  # 0.30000000000000004
    return json.dumps(clean, sort_keys=True, default=str)


def _stable_seed(*parts: Any) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


# ----------------------------------------------------------------------------- noise
@dataclass(frozen=True)
class Noise:
    """Seed-to-seed variation of a curve, measured on the record's repeats."""

    offset_sd: float = 0.0   # per run, added to the whole curve
    jitter_sd: float = 0.0   # per epoch, AR(1)
    lag1: float = 0.0        # correlation of the jitter between consecutive epochs
    pairs: int = 0           # repeat pairs it was measured on

    def draw(self, rng: np.random.Generator, epochs: int) -> np.ndarray:
        offset = rng.normal(0.0, self.offset_sd)
        z = rng.normal(0.0, 1.0, epochs)
        jitter = np.empty(epochs)
        previous = 0.0
        scale = math.sqrt(max(1.0 - self.lag1 ** 2, 0.0))
        for i in range(epochs):
            previous = self.lag1 * previous + scale * z[i] if i else z[i]
            jitter[i] = previous
        return offset + self.jitter_sd * jitter


def measure_noise(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> Noise:
    """Offset and AR(1) jitter of y = f + a + e from pairs of runs of one configuration:
    d = y1 - y2 holds (a1 - a2) + (e1 - e2), so each variance is half of d's."""
    if not pairs:
        return Noise()
    offsets, residuals, lag_products, lag_squares = [], [], 0.0, 0.0
    n_epochs = 0
    for y1, y2 in pairs:
        n = min(len(y1), len(y2))
        d = np.asarray(y1[:n], float) - np.asarray(y2[:n], float)
        offsets.append(d.mean())
        r = d - d.mean()
        residuals.append(r)
        lag_products += float(np.sum(r[1:] * r[:-1]))
        lag_squares += float(np.sum(r * r))
        n_epochs = max(n_epochs, n)
    jitter_var = (sum(float(np.sum(r * r)) for r in residuals)
                  / max(sum(len(r) - 1 for r in residuals), 1)) / 2
    offset_var = max(float(np.mean(np.square(offsets))) / 2 - jitter_var / max(n_epochs, 1), 0.0)
    lag1 = float(np.clip(lag_products / lag_squares, 0.0, 0.95)) if lag_squares > 0 else 0.0
    return Noise(offset_sd=math.sqrt(offset_var), jitter_sd=math.sqrt(jitter_var), lag1=lag1,
                 pairs=len(pairs))


def repeat_pairs(curves: Sequence[Curve]) -> list[tuple[Curve, Curve]]:
    """(original, repeat) pairs of the record."""
    by_number = {c.number: c for c in curves}
    return [(by_number[c.repeat_of], c) for c in curves
            if c.repeat_of is not None and c.repeat_of in by_number]


# ----------------------------------------------------------------------------- surrogate
@dataclass
class Surrogate:
    """Mean-curve regressors + measured noise; ``curve(params, seed)`` is the replay's
    training run."""

    encoder: Encoder
    epochs: int
    model_name: str
    loss_model: Any
    acc_model: Any
    seconds_model: Any
    params_model: Any
    loss_noise: Noise
    acc_noise: Noise
    overhead: float                       # seconds per trial besides fit (record's median)
    fidelity: dict[str, Any] = field(default_factory=dict)
    _means: dict[str, tuple[np.ndarray, np.ndarray, float, int]] = field(default_factory=dict)

    def mean_curve(self, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, float, int]:
        """(log val_loss per epoch, val_accuracy per epoch, seconds per epoch, n_params)."""
        key = config_key(params)
        cached = self._means.get(key)
        if cached is None:
            row = self.encoder.row(params)
            grid = np.array([[*row, e] for e in range(1, self.epochs + 1)], float)
            log_loss = predict(self.loss_model, grid)
            acc = predict(self.acc_model, grid)
            one = np.array([row], float)
            seconds = float(math.exp(predict(self.seconds_model, one)[0]))
            n_params = int(round(math.exp(predict(self.params_model, one)[0])))
            cached = self._means[key] = (log_loss, acc, seconds, n_params)
        return cached

    def curve(self, params: Mapping[str, Any], seed: int) -> Curve:
        """The curve a training of ``params`` with replay seed ``seed`` follows."""
        log_loss, acc, seconds, n_params = self.mean_curve(params)
        rng = np.random.default_rng(_stable_seed(config_key(params), seed))
        loss = np.exp(log_loss + self.loss_noise.draw(rng, self.epochs))
        accuracy = np.clip(acc + self.acc_noise.draw(rng, self.epochs), 0.0, 1.0)
        clean = {k: v for k, v in params.items() if not k.startswith("tuner/")}
        return Curve(params=clean, val_loss=loss, val_accuracy=accuracy,
                     seconds=np.full(self.epochs, seconds), n_params=n_params,
                     overhead=self.overhead)


def _design(curves: Sequence[Curve], encoder: Encoder, epochs: int) -> tuple[np.ndarray, ...]:
    rows, log_loss, acc, groups = [], [], [], []
    for c in curves:
        base = encoder.row(c.params)
        for e in range(epochs):
            rows.append([*base, e + 1])
            log_loss.append(math.log(c.val_loss[e]))
            acc.append(c.val_accuracy[e])
            groups.append(config_key(c.params))
    return np.array(rows, float), np.array(log_loss), np.array(acc), np.array(groups)


def fidelity(curves: Sequence[Curve], encoder: Encoder, epochs: int,
             names: Sequence[str] = tuple(CANDIDATES), folds: int = 5) -> dict[str, dict[str, float]]:
    """Each candidate's held-out score: Spearman correlation of predicted vs recorded best
    val_loss over configurations it never saw (GroupKFold by configuration), and the
    per-epoch error of log(val_loss) (RMSE) and of val_loss itself (MAE)."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import GroupKFold

    x, y, _acc, groups = _design(curves, encoder, epochs)
    scores: dict[str, dict[str, float]] = {}
    keys = [config_key(c.params) for c in curves]
    for name in names:
        predicted = np.empty_like(y)
        for train, test in GroupKFold(n_splits=min(folds, len(set(keys)))).split(x, y, groups):
            model = CANDIDATES[name]()
            model.fit(x[train], y[train])
            predicted[test] = model.predict(x[test])
        per_config: dict[str, list[tuple[float, float]]] = {}
        for key, p, t in zip(groups, predicted, y):
            per_config.setdefault(str(key), []).append((p, t))
        pred_best = [min(p for p, _ in per_config[k]) for k in per_config]
        true_best = [min(t for _, t in per_config[k]) for k in per_config]
        rho = float(spearmanr(pred_best, true_best).statistic)
        scores[name] = {
            "spearman": round(rho, 4),
            "rmse_log": round(float(np.sqrt(np.mean((predicted - y) ** 2))), 4),
            "mae": round(float(np.mean(np.abs(np.exp(predicted) - np.exp(y)))), 4),
        }
    return scores


def fit(trials: Sequence[FrozenTrial], space: Sequence[Mapping[str, Any]], *,
        model: str | None = None, evaluate: bool = True) -> Surrogate:
    """Fit the surrogate on a record study's trials; ``model`` None: the candidate with
    the best held-out Spearman correlation (``evaluate`` False: random_forest, no scores)."""
    curves = curves_from_trials(trials)
    originals = [c for c in curves if c.repeat_of is None]
    if len(originals) < schema.SURROGATE_MIN_CONFIGS:
        need = schema.SURROGATE_MIN_CONFIGS
        raise UserError(f"the record holds {len(originals)} complete curves; the surrogate needs "
                        f"at least {need} (python -m bench record --configs N, N >= {need})")
    epochs = min(len(c.val_loss) for c in curves)
    encoder = Encoder(tuple(dict(hp) for hp in space))
    scores = fidelity(originals, encoder, epochs) if evaluate else {}
    chosen = model or (max(scores, key=lambda n: scores[n]["spearman"]) if scores else "random_forest")
    if chosen not in CANDIDATES:
        raise UserError(f"unknown surrogate model {chosen!r}; choose from {', '.join(CANDIDATES)}")
    x, y, acc, _ = _design(curves, encoder, epochs)
    loss_model = CANDIDATES[chosen]().fit(x, y)
    acc_rows = ~np.isnan(acc)
    acc_model = CANDIDATES[chosen]().fit(x[acc_rows], acc[acc_rows])
    configs = np.array([encoder.row(c.params) for c in curves], float)
    seconds = np.log(np.maximum([float(np.median(c.seconds[:epochs])) for c in curves], 1e-4))
    seconds_model = CANDIDATES["random_forest"]().fit(configs, seconds)
    sized = [c for c in curves if c.n_params]
    params_model = CANDIDATES["random_forest"]().fit(
        np.array([encoder.row(c.params) for c in sized], float),
        np.log([float(c.n_params) for c in sized]))  # type: ignore[arg-type]
    pairs = repeat_pairs(curves)
    loss_noise = measure_noise([(np.log(a.val_loss), np.log(b.val_loss)) for a, b in pairs])
    acc_noise = measure_noise([(a.val_accuracy, b.val_accuracy) for a, b in pairs
                               if not (np.isnan(a.val_accuracy).any() or np.isnan(b.val_accuracy).any())])
    overheads = [c.overhead for c in curves if c.overhead is not None]
    info: dict[str, Any] = {
        "model": chosen, "candidates": scores, "configs": len(originals), "repeats": len(pairs),
        "epochs": epochs, "held_out": "GroupKFold(5) by configuration",
    }
    if scores:
        info["spearman_best"] = scores[chosen]["spearman"]
        info["per_epoch_rmse_log"] = scores[chosen]["rmse_log"]
        info["per_epoch_mae"] = scores[chosen]["mae"]
    info["noise"] = {"log_val_loss_offset_sd": round(loss_noise.offset_sd, 4),
                     "log_val_loss_jitter_sd": round(loss_noise.jitter_sd, 4),
                     "lag1": round(loss_noise.lag1, 3), "pairs": loss_noise.pairs,
                     "val_accuracy_offset_sd": round(acc_noise.offset_sd, 4),
                     "val_accuracy_jitter_sd": round(acc_noise.jitter_sd, 4)}
    surrogate = Surrogate(encoder=encoder, epochs=epochs, model_name=chosen, loss_model=loss_model,
                          acc_model=acc_model, seconds_model=seconds_model, params_model=params_model,
                          loss_noise=loss_noise, acc_noise=acc_noise,
                          overhead=float(np.median(overheads)) if overheads else 0.0, fidelity=info)
    info["noise"].update(noise_check(surrogate, pairs))
    return surrogate


def noise_check(surrogate: Surrogate, pairs: Sequence[tuple[Curve, Curve]],
                seeds: int = 20) -> dict[str, Any]:
    """How far apart two trainings of one configuration end, in the record and in the
    surrogate: standard deviation of log(best val_loss) between trainings."""
    if not pairs:
        return {}
    real = [math.log(a.val_loss.min()) - math.log(b.val_loss.min()) for a, b in pairs]
    real_sd = float(np.sqrt(np.mean(np.square(real)) / 2))
    replay = []
    for a, _b in pairs:
        bests = [math.log(surrogate.curve(a.params, s).val_loss.min()) for s in range(seeds)]
        replay.append(float(np.std(bests, ddof=1)))
    from scipy.stats import spearmanr
    # The ceiling of any surrogate's rank fidelity: how well one training ranks the
    # configurations another training of them gets.
    ceiling = spearmanr([a.val_loss.min() for a, _ in pairs],
                        [b.val_loss.min() for _, b in pairs]).statistic if len(pairs) > 2 else None
    return {"repeat_spearman_best": round(float(ceiling), 4) if ceiling is not None else None,
            "repeat_sd_log_best": round(real_sd, 4),
            "replay_sd_log_best": round(float(np.sqrt(np.mean(np.square(replay)))), 4)}
