"""Reading a KerasTuner project directory (keras-tuner 1.0-1.4) as Optuna trials.

Used by ``bench import-kt`` (which writes them into a study) and by
``OptunaSearch(warm_start=PATH)`` (which makes them the new study's history). It reads the
JSON files itself, tolerant of the older layouts, instead of going through KerasTuner's
classes, whose file format and constructors changed between versions; it imports neither
KerasTuner nor TensorFlow. The mapping decisions are in ``bench/run/import_kt.py``'s module
docstring. A directory that is not one project is a ``ConfigError`` (a ``ValueError``).
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from searchers import seam
from searchers.errors import ConfigError

# Trial user attr keys, as the benchmark's store names them (bench.core.schema: the same strings).
T_KT_ID = "kt_trial_id"
T_ERROR = "error"
T_EPOCHS = "epochs_trained"

# Trial user attr keys of an imported trial (besides T_KT_ID / T_ERROR / T_EPOCHS).
T_KT_STATUS = "kt_status"
T_KT_BEST_STEP = "kt_best_step"
T_KT_SCORE = "kt_score"
T_KT_NOTE = "kt_note"
T_KT_INACTIVE = "kt_inactive_params"
T_KT_UNMAPPED = "kt_unmapped_values"

_MULTI = "multi_objective"
_MAX_MULTI_METRICS = 10          # 3**10 signed subsets: still instant
_ERROR_TAIL_CHARS = 2000


# --------------------------------------------------------------------------- parsing


@dataclass
class _HP:
    """One hyperparameter definition of a KerasTuner space."""

    name: str
    class_name: str
    config: dict[str, Any]
    conditions: list[tuple[str, list[Any]]]   # (parent's full name, parent values)

    @property
    def key(self) -> str:
        """Identity of the definition: KerasTuner allows one name under several conditions."""
        return json.dumps([self.name, self.conditions], sort_keys=True, default=str)

    @property
    def dist_key(self) -> str:
        cfg = {k: v for k, v in self.config.items() if k not in ("name", "default", "conditions")}
        return json.dumps([self.name, self.class_name, cfg], sort_keys=True, default=str)


@dataclass
class _Metric:
    direction: str | None
    steps: dict[Any, float]   # step -> mean over executions


@dataclass
class _KTTrial:
    file: str                  # relative to the project directory
    trial_id: str
    status: str | None
    score: float | None
    best_step: Any
    values: dict[str, Any]
    space: list[_HP]
    metrics: dict[str, _Metric]
    message: str | None
    mtime: float


class Skip(Exception):
    """A file that cannot be imported; the message is the reason shown to the user."""


def one_line(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise Skip("unreadable (not UTF-8 text)") from None
    if not raw.strip():
        raise Skip("empty file (partly written?)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Skip(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; "
                    "partly written?)") from None


def _parse_conditions(name: str, config: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Conditions of a hyperparameter, from 1.0.1+ ``conditions`` or 1.0.0 names.

    KerasTuner 1.0.0 had no ``conditions``: a conditional hyperparameter was named
    ``parent=v1,v2/child`` (values compared as strings, parents named with their scopes).
    """
    if "conditions" in config:
        out = []
        for cond in config.get("conditions") or []:
            cfg = cond.get("config", cond) if isinstance(cond, dict) else None
            if not isinstance(cfg, dict) or "name" not in cfg or "values" not in cfg:
                raise ValueError(f"hyperparameter {name!r} has an unreadable condition {cond!r}")
            values = cfg["values"] if isinstance(cfg["values"], list) else [cfg["values"]]
            out.append((str(cfg["name"]), values))
        return out
    parts = name.split("/")
    out = []
    for i, part in enumerate(parts[:-1]):
        if "=" in part:
            parent, vals = part.split("=", 1)
            out.append(("/".join(parts[:i] + [parent]), vals.split(",")))
    return out


def _parse_space(hp_config: Any) -> list[_HP]:
    if not isinstance(hp_config, dict) or not isinstance(hp_config.get("space"), list):
        raise ValueError("no hyperparameter space ('hyperparameters.space')")
    space = []
    for entry in hp_config["space"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ValueError(f"unreadable hyperparameter entry {one_line(entry, 80)}")
        cfg = entry["config"]
        if "name" not in cfg:
            raise ValueError(f"hyperparameter without a name: {one_line(entry, 80)}")
        name = str(cfg["name"])
        space.append(_HP(name, str(entry.get("class_name")), cfg, _parse_conditions(name, cfg)))
    return space


def _mean(value: Any) -> float:
    vals = value if isinstance(value, list) else [value]
    if not vals:
        raise ValueError("empty observation")
    nums = [float(v) for v in vals]
    return math.fsum(nums) / len(nums)


def _parse_metrics(raw: Any) -> dict[str, _Metric]:
    """Both ``{"metrics": {name: history}}`` (every released version) and a bare dict."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("'metrics' is not an object")
    table = raw.get("metrics", raw) if isinstance(raw.get("metrics"), dict) else raw
    out: dict[str, _Metric] = {}
    for name, hist in table.items():
        if not isinstance(hist, dict):
            raise ValueError(f"metric {name!r} is not an object")
        steps: dict[Any, float] = {}
        for obs in hist.get("observations") or []:
            if not isinstance(obs, dict) or "value" not in obs:
                raise ValueError(f"metric {name!r} has an unreadable observation")
            try:
                steps[obs.get("step", 0)] = _mean(obs["value"])
            except (TypeError, ValueError):
                raise ValueError(f"metric {name!r} has a non-numeric value") from None
        direction = hist.get("direction")
        out[str(name)] = _Metric(direction if direction in ("min", "max") else None, steps)
    return out


def _parse_trial(path: Path, rel: str) -> _KTTrial:
    state = _read_json(path)
    if not isinstance(state, dict):
        raise Skip("not a KerasTuner trial file (JSON is not an object)")
    missing = [k for k in ("hyperparameters", "status") if k not in state]
    if missing:
        raise Skip(f"not a complete KerasTuner trial file (missing {', '.join(missing)})")
    hps = state["hyperparameters"]
    try:
        space = _parse_space(hps)
        values = hps.get("values")
        if not isinstance(values, dict):
            raise ValueError("no hyperparameter values ('hyperparameters.values')")
        metrics = _parse_metrics(state.get("metrics"))
    except ValueError as exc:
        raise Skip(str(exc)) from None
    trial_id = state.get("trial_id")
    if trial_id is None:
        trial_id = path.parent.name[len("trial_"):]
    score = state.get("score")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise Skip(f"score {score!r} is not a number") from None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _KTTrial(rel, str(trial_id), state.get("status"), score, state.get("best_step"),
                    values, space, metrics, state.get("message"), mtime)


# ------------------------------------------------------------------------- objective


@dataclass
class Objective:
    name: str | None
    kt_direction: str                 # "min" / "max"
    components: list[dict[str, str]] | None = None   # multi-objective: [{name, direction}]
    candidates: list[str] = field(default_factory=list)

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.kt_direction == "max" else "minimize"


def _value_at(metric: _Metric, step: Any) -> float | None:
    if not metric.steps:
        return None
    if step in metric.steps:
        return metric.steps[step]
    return metric.steps[max(metric.steps, key=_step_sort_key)]


def _step_sort_key(step: Any) -> tuple[int, Any]:
    return (0, step) if isinstance(step, (int, float)) else (1, str(step))


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and (
        a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))


def infer_objective(trials: list[_KTTrial]) -> Objective:
    """Which metric KerasTuner scored; it is written nowhere, so it is read off the scores."""
    scored = [t for t in trials if t.status == "COMPLETED" and t.score is not None
              and not math.isnan(t.score) and t.metrics]
    if any(_MULTI in t.metrics for t in trials):
        return Objective(_MULTI, "min", _infer_components(scored))
    if not scored:
        return Objective(None, "min")
    names = set.intersection(*(set(t.metrics) for t in scored))
    matches = [n for n in names
               if all(_close(_value_at(t.metrics[n], t.best_step), t.score) for t in scored)]
    if not matches:   # score taken as the best over steps (old tuners without best_step)
        matches = [n for n in names if all(_close(_best(t.metrics[n]), t.score) for t in scored)]
    if not matches:
        return Objective(None, "min")
    matches.sort(key=lambda n: (not n.startswith("val_"), n == "loss", n))
    name = matches[0]
    dirs = [d for d in (t.metrics[name].direction for t in scored) if d]
    return Objective(name, dirs[0] if dirs else "min", candidates=matches)


def _best(metric: _Metric) -> float | None:
    vals = [v for v in metric.steps.values() if not math.isnan(v)]
    if not vals:
        return None
    return min(vals) if metric.direction != "max" else max(vals)


def _infer_components(scored: list[_KTTrial]) -> list[dict[str, str]] | None:
    """The objectives of a MultiObjective: the signed subset of metrics summing to its score.

    KerasTuner adds minimised and subtracts maximised objectives; the stored directions of
    the other metrics are KerasTuner's guesses, so sign combinations that disagree with them
    are tried last.
    """
    rows = []
    for t in scored:
        target = _value_at(t.metrics[_MULTI], t.best_step) if _MULTI in t.metrics else None
        if target is None:
            continue
        rows.append((t, target))
    if not rows:
        return None
    names = sorted(set.intersection(*(set(t.metrics) for t, _ in rows)) - {_MULTI})
    if not names or len(names) > _MAX_MULTI_METRICS:
        return None
    vals = [[_value_at(t.metrics[n], t.best_step) for n in names] for t, _ in rows]
    stored = {n: rows[0][0].metrics[n].direction for n in names}
    best: tuple | None = None
    for signs in itertools.product((0, 1, -1), repeat=len(names)):
        if not any(signs):
            continue
        # TODO: v is None for a metric without steps (s * None raises TypeError)
        if not all(_close(math.fsum(s * v for s, v in zip(signs, row) if s), target)  # type: ignore[operator]
                   for row, (_, target) in zip(vals, rows)):
            continue
        chosen = [(n, s) for n, s in zip(names, signs) if s]
        mismatches = sum((s == 1) != (stored[n] != "max") for n, s in chosen)
        key = (mismatches, len(chosen), -sum(n.startswith("val_") for n, _ in chosen),
               [n for n, _ in chosen])
        if best is None or key < best[0]:
            best = (key, chosen)
    if best is None:
        return None
    return [{"name": n, "direction": "min" if s == 1 else "max"} for n, s in best[1]]


# --------------------------------------------------------------------- distributions


def hp_distribution(class_name: str, config: dict[str, Any],
                    values: list[Any] | None = None) -> BaseDistribution:
    """Optuna distribution for one KerasTuner hyperparameter config: the searchers' own
    mapping (``searchers.seam``), so a run's own project imports with exactly the run's
    distributions.

    ``values`` are the values trials drew from it: a grid they do not sit on is dropped
    (the range kept) rather than rejecting those trials.
    """
    return seam.distribution_from_config(class_name, config, values)


def _param_value(hp: _HP, value: Any) -> Any:
    """Values as Optuna wants them: Int ints (KerasTuner's log+step Int yields floats).
    Stored as the searchers store them: snapped onto the distribution's grid where they
    sit on it (``seam.to_param``)."""
    if hp.class_name == "Int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if hp.class_name == "Float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _condition_met(cond: tuple[str, list[Any]], active: dict[str, Any]) -> bool:
    parent, allowed = cond
    if parent not in active:
        return False
    value = active[parent]
    return value in allowed or str(value) in {str(v) for v in allowed}


@dataclass
class _Active:
    params: dict[str, tuple[_HP, Any]]
    inactive: list[str]
    unmapped: dict[str, Any]
    tuner: dict[str, Any]


def _active_params(trial: _KTTrial, oracle_space: list[_HP]) -> _Active:
    """Params of one trial: values whose definition is active, walking the space in order.

    Definitions come from oracle.json first (the study-wide space KerasTuner keeps; it only
    ever adds entries) and the trial's own copy for anything missing there.
    """
    seen = {hp.key for hp in oracle_space}
    space = oracle_space + [hp for hp in trial.space if hp.key not in seen]
    params: dict[str, tuple[_HP, Any]] = {}
    active_values: dict[str, Any] = {}
    for hp in space:
        if hp.name in params or hp.name not in trial.values:
            continue
        if all(_condition_met(c, active_values) for c in hp.conditions):
            params[hp.name] = (hp, _param_value(hp, trial.values[hp.name]))
            active_values[hp.name] = trial.values[hp.name]
    defined = {hp.name for hp in space}
    tuner = {k: v for k, v in trial.values.items() if k.startswith("tuner/")}
    inactive = sorted(k for k in trial.values if k in defined and k not in params)
    unmapped = {k: v for k, v in trial.values.items()
                if k not in defined and k not in tuner}
    return _Active(params, inactive, unmapped, tuner)


# ---------------------------------------------------------------------------- project


@dataclass
class Project:
    path: Path
    name: str
    oracle: dict[str, Any] | None
    oracle_space: list[_HP]
    trials: list[_KTTrial]
    skipped: list[tuple[str, str]]


def _find_project(path: Path) -> None:
    """Refuse what is not a KerasTuner project with a hint where one is near."""
    if not path.exists():
        raise ConfigError(f"no such directory: {path}")
    if not path.is_dir():
        raise ConfigError(f"{path} is a file, not a KerasTuner project directory")
    if (path / "oracle.json").exists() or any(p.is_dir() for p in path.glob("trial_*")):
        return
    inner = sorted(p.name for p in path.iterdir() if (p / "oracle.json").is_file())
    if inner:
        shown = ", ".join(str(path / n) for n in inner[:3]) + (" ..." if len(inner) > 3 else "")
        raise ConfigError(f"{path} holds KerasTuner projects, not one: pass one of {shown}")
    raise ConfigError(f"{path} is not a KerasTuner project directory "
                    "(no oracle.json and no trial_*/trial.json)")


def read_project(path: Path) -> Project:
    _find_project(path)
    skipped: list[tuple[str, str]] = []
    oracle: dict[str, Any] | None = None
    oracle_space: list[_HP] = []
    if (path / "oracle.json").exists():
        try:
            data = _read_json(path / "oracle.json")
            if not isinstance(data, dict):
                raise Skip("not a KerasTuner oracle file (JSON is not an object)")
            try:
                oracle_space = _parse_space(data.get("hyperparameters"))
            except ValueError as exc:
                raise Skip(str(exc)) from None
            oracle = data
        except Skip as exc:
            skipped.append(("oracle.json", f"{exc}; using each trial's own hyperparameter space"))
    else:
        skipped.append(("oracle.json", "missing; using each trial's own hyperparameter space"))

    trials: list[_KTTrial] = []
    ids: dict[str, str] = {}
    for tdir in sorted(p for p in path.glob("trial_*") if p.is_dir()):
        rel = f"{tdir.name}/trial.json"
        tfile = tdir / "trial.json"
        if not tfile.exists():
            skipped.append((rel, "missing (trial directory without its trial file)"))
            continue
        try:
            trial = _parse_trial(tfile, rel)
        except Skip as exc:
            skipped.append((rel, str(exc)))
            continue
        if trial.trial_id in ids:
            skipped.append((rel, f"trial id {trial.trial_id!r} already read from "
                                 f"{ids[trial.trial_id]}"))
            continue
        ids[trial.trial_id] = rel
        trials.append(trial)
    return Project(path, path.name, oracle, oracle_space, _ordered(trials, oracle), skipped)


def _ordered(trials: list[_KTTrial], oracle: dict[str, Any] | None) -> list[_KTTrial]:
    """KerasTuner's end order where recorded (>= 1.1), else file times, so that Optuna's
    trial numbers follow the order in which the trials ended."""
    order: dict[str, int] = {}
    for key in ("end_order", "start_order"):
        for tid in (oracle or {}).get(key) or []:
            order.setdefault(str(tid), len(order))
    return sorted(trials, key=lambda t: (order.get(t.trial_id, len(order)), t.mtime, t.trial_id))


def layout(project: Project) -> dict[str, Any]:
    """Which KerasTuner file layout this is; recorded so odd imports can be traced."""
    oracle = project.oracle or {}
    features = {
        "trial_order": "end_order" in oracle,
        "trial_messages": any(t.message is not None for t in project.trials),
        "name_encoded_conditions": any(
            "conditions" not in hp.config and hp.conditions
            for hp in project.oracle_space + [h for t in project.trials for h in t.space]),
        "per_step_metrics": any(len(m.steps) > 1 for t in project.trials
                                for m in t.metrics.values()),
        "tuner_file": next((n for n in ("tuner0.json", "tuner_0.json")
                            if (project.path / n).exists()), None),
    }
    # Checked against the released wheels: 1.0.0 encodes conditions in names, 1.0.x and
    # 1.1 write no trial order and no messages, 1.2 added end_order and trial messages.
    if features["name_encoded_conditions"]:
        label = "1.0.0"
    elif features["trial_order"]:
        label = "1.2+"
    else:
        label = "1.0/1.1"
    return {"label": label, **features}


def space_record(project: Project) -> list[dict[str, Any]]:
    """The hp space as KerasTuner wrote it: oracle.json's, else the union of the trials'."""
    if project.oracle:
        return project.oracle["hyperparameters"]["space"]
    seen: dict[str, _HP] = {}
    for t in project.trials:
        for hp in t.space:
            seen.setdefault(hp.key, hp)
    return [{"class_name": hp.class_name, "config": hp.config} for hp in seen.values()]


def oracle_kind(oracle: dict[str, Any] | None) -> str:
    if not oracle:
        return "unknown"
    if "brackets" in oracle or "hyperband_iterations" in oracle:
        return "Hyperband"
    if "num_initial_points" in oracle or "alpha" in oracle:
        return "BayesianOptimization"
    return "RandomSearch or other"


# --------------------------------------------------------------------------- mapping


@dataclass
class _Planned:
    trial: _KTTrial
    state: TrialState
    value: float | None
    active: _Active
    user_attrs: dict[str, Any]
    intermediate: dict[int, float]


def _plain(v: Any) -> Any:
    """JSON-safe for user attrs (NaN/inf are not JSON a dashboard can read)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def plan_trial(t: _KTTrial, objective: Objective, retry_queue: set[str],
                oracle_space: list[_HP]) -> _Planned:
    status = t.status
    if status in ("RUNNING", "IDLE"):
        raise Skip(f"still {status} in KerasTuner: not imported (a finished Optuna trial "
                    "cannot change); re-import after it has finished")
    if status == "INVALID" and t.trial_id in retry_queue:
        raise Skip("INVALID and queued for a retry by KerasTuner: not imported; "
                    "re-import after the retry")
    attrs: dict[str, Any] = {T_KT_ID: t.trial_id, T_KT_STATUS: status}
    value = None
    if status == "COMPLETED":
        if t.score is None or math.isnan(t.score):
            state = TrialState.FAIL
            attrs[T_KT_NOTE] = "COMPLETED in KerasTuner but without a usable score"
        else:
            state, value = TrialState.COMPLETE, t.score
    elif status in ("FAILED", "INVALID"):
        state = TrialState.FAIL
    elif status == "STOPPED":
        state = TrialState.PRUNED
    else:
        raise Skip(f"unknown KerasTuner status {status!r}")
    if state != TrialState.COMPLETE and t.score is not None:
        attrs[T_KT_SCORE] = _plain(t.score)
    if t.best_step is not None:
        attrs[T_KT_BEST_STEP] = t.best_step
    for name, metric in t.metrics.items():
        v = _value_at(metric, t.best_step)
        if v is not None and name not in attrs:
            attrs[name] = _plain(v)
    if t.message and state == TrialState.FAIL:
        attrs[T_ERROR] = str(t.message)[-_ERROR_TAIL_CHARS:]

    active = _active_params(t, oracle_space)
    attrs.update(active.tuner)
    epochs, initial = active.tuner.get("tuner/epochs"), active.tuner.get("tuner/initial_epoch")
    if isinstance(epochs, int) and isinstance(initial, int):
        attrs[T_EPOCHS] = epochs - initial
    if active.inactive:
        attrs[T_KT_INACTIVE] = active.inactive
    if active.unmapped:
        attrs[T_KT_UNMAPPED] = active.unmapped

    intermediate: dict[int, float] = {}
    obj_metric = t.metrics.get(objective.name) if objective.name else None
    for step, v in (obj_metric.steps.items() if obj_metric else ()):
        if isinstance(step, (int, float)) and float(step).is_integer() and math.isfinite(v):
            intermediate[int(step)] = v
    return _Planned(t, state, value, active, attrs, intermediate)


def build_trials(plans: list[_Planned], known: dict[str, BaseDistribution],
                  skipped: list[tuple[str, str]]) -> list[tuple[_Planned, FrozenTrial]]:
    """FrozenTrials for every plan that Optuna accepts, checked before anything is written."""
    seen_values: dict[str, list[Any]] = {}
    hp_by_key: dict[str, _HP] = {}
    for p in plans:
        for hp, value in p.active.params.values():
            seen_values.setdefault(hp.dist_key, []).append(value)
            hp_by_key[hp.dist_key] = hp
    dists: dict[str, BaseDistribution | str] = {}
    for key, hp in hp_by_key.items():
        try:
            dists[key] = hp_distribution(hp.class_name, hp.config, seen_values[key])
        except (KeyError, TypeError, ValueError) as exc:
            dists[key] = f"hyperparameter {hp.name!r} cannot be mapped ({one_line(exc, 120)})"

    known = dict(known)
    out = []
    for p in plans:
        try:
            params, distributions = {}, {}
            for name, (hp, value) in p.active.params.items():
                dist = dists[hp.dist_key]
                if isinstance(dist, str):
                    raise Skip(dist)
                if name in known:
                    try:
                        check_distribution_compatibility(known[name], dist)
                    except ValueError:
                        raise Skip(f"hyperparameter {name!r} is {dist} here but "
                                    f"{known[name]} in other trials of the study") from None
                on_grid = seam.to_param(dist, value, strict=True)
                params[name] = value if on_grid is seam.OFF else on_grid
                distributions[name] = dist
            try:
                frozen = optuna.trial.create_trial(
                    state=p.state, value=p.value, params=params, distributions=distributions,
                    user_attrs=p.user_attrs, intermediate_values=p.intermediate)
            except (ValueError, TypeError) as exc:
                raise Skip(one_line(exc)) from None
        except Skip as exc:
            skipped.append((p.trial.file, str(exc)))
            continue
        for name, dist in distributions.items():
            known.setdefault(name, dist)
        out.append((p, frozen))
    return out
