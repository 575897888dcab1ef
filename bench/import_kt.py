"""Import a KerasTuner project directory into an Optuna study (``python -m bench import-kt``).

Users already hold KerasTuner results on disk (``<directory>/<project_name>/`` with
``oracle.json``, ``tuner0.json`` and ``trial_*/trial.json``), written by KerasTuner 1.0 to
1.4. This module reads those JSON files itself - tolerant of the older layouts - instead of
going through KerasTuner's classes, whose file format and constructors changed between
versions (and importing TensorFlow just to read JSON would be slow).

Mapping decisions (why):

* The objective: no KerasTuner version stores it in ``oracle.json``. It is inferred from the
  trial files: the metric whose value at ``best_step`` equals the trial's ``score`` in every
  scored trial (ties prefer ``val_*``); its direction is the one KerasTuner stored with that
  metric. A multi-objective search stores a ``multi_objective`` metric (KerasTuner's sum of
  the objectives, maximised ones negated, always minimised): the study stays
  single-objective with that sum as value, each metric goes to a user attr, and the
  component objectives (found as the signed subset of metrics that reproduces the sum) are
  recorded in the study attrs.
* Hyperparameters -> distributions: the searchers' own mapping (``searchers.seam``,
  also what the Optuna-backed oracle suggests from and the mirror of KerasTuner's searchers
  records with), so importing a run's own project gives exactly the run's distributions
  and values: ``Int`` -> ``IntDistribution(step)`` (high lowered onto the step grid, which
  holds every value KerasTuner can draw); linear stepped ``Float`` ->
  ``FloatDistribution(step)`` likewise; ``sampling="log"`` or ``"reverse_log"`` with a
  step -> a ``CategoricalDistribution`` of KerasTuner's own grid (Optuna rejects ``log``
  with ``step``; KerasTuner's log step is multiplicative); without a step, log -> a log
  distribution, ``reverse_log`` -> a linear one (Optuna has no reverse-log, the range is
  kept); ``Choice`` -> ``CategoricalDistribution`` of its values (numbers too);
  ``Boolean`` -> ``CategoricalDistribution([False, True])``; ``Fixed`` ->
  ``CategoricalDistribution([value])``. Tolerance for foreign projects: where a stored
  value is not on that grid (another KerasTuner version, a space edited between runs),
  the grid is dropped and the range kept instead of rejecting the trial. Values on a grid
  are stored snapped onto it (0.30000000000000004 -> 0.3), as the searchers store them.
  Only hyperparameters active in a trial
  (all their conditions met, the 1.0.0 ``parent=value/name`` naming included) become
  params; params keep KerasTuner's full names.
* States: ``COMPLETED`` -> COMPLETE (value = KerasTuner's score; a completed trial without
  a usable score -> FAIL); ``FAILED`` and ``INVALID`` -> FAIL, except an ``INVALID`` trial
  still in the oracle's retry queue, which is skipped (KerasTuner will run it again);
  ``STOPPED`` -> PRUNED (ended early, not a result); ``RUNNING`` / ``IDLE`` -> skipped and
  listed: a finished Optuna trial cannot be changed, so importing it now would freeze an
  unfinished trial - a later re-import adds it once KerasTuner has finished it.
* Intermediate values: the objective's observations, keyed by KerasTuner's own ``step``
  (for Keras models the 0-based epoch index of that ``fit`` call; KerasTuner >= 1.1 keeps
  only the best epoch, 1.0 tuners reporting per epoch keep every epoch). Steps are kept
  as stored rather than shifted to the bench's 1-based epochs because their meaning
  differs between KerasTuner versions and tuners.
* User attrs per trial: ``kt_trial_id`` (the identity used on re-import), every metric's
  value at the score's step (else its last), ``kt_status``, ``kt_best_step``, ``kt_score``
  (non-COMPLETE trials), ``error`` (tail of KerasTuner's message), Hyperband's ``tuner/*``
  bookkeeping (not params) and ``epochs_trained`` where Hyperband's values give it.
* The study's metric name is the objective's (``val_accuracy``; ``score`` when unknown), so
  optuna-dashboard labels the values by name.
* Re-importing never duplicates: trials already in the study (by ``kt_trial_id``) are
  counted, not written. Everything is parsed and validated before the first write; if a
  write fails, a study created by this import is deleted again.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from bench import schema
from bench.errors import RunError, UserError
from bench.store import create_study, display_url, open_storage
from searchers import seam

# Study user attrs written by this import (``bench`` follows docs/design.md's convention
# that extra studies are told apart by ``bench["kind"]``).
KIND_KT_IMPORT = "kt-import"
STUDY_KT_IMPORT = "kt_import"
DEFAULT_STORAGE = schema.DEFAULT_STORAGE

# Trial user attr keys (besides schema.T_KT_ID / T_ERROR / T_EPOCHS).
T_KT_STATUS = "kt_status"
T_KT_BEST_STEP = "kt_best_step"
T_KT_SCORE = "kt_score"
T_KT_NOTE = "kt_note"
T_KT_INACTIVE = "kt_inactive_params"
T_KT_UNMAPPED = "kt_unmapped_values"

_MULTI = "multi_objective"
_MAX_MULTI_METRICS = 10          # 3**10 signed subsets: still instant
_ERROR_TAIL_CHARS = 2000


@dataclass
class ImportResult:
    """What one import did: the CLI prints it, tests check it."""

    study_name: str
    added: int
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    already_present: int = 0


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


class _Skip(Exception):
    """A file that cannot be imported; the message is the reason shown to the user."""


def _one_line(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise _Skip("unreadable (not UTF-8 text)") from None
    if not raw.strip():
        raise _Skip("empty file (partly written?)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Skip(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; "
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
            raise ValueError(f"unreadable hyperparameter entry {_one_line(entry, 80)}")
        cfg = entry["config"]
        if "name" not in cfg:
            raise ValueError(f"hyperparameter without a name: {_one_line(entry, 80)}")
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
        raise _Skip("not a KerasTuner trial file (JSON is not an object)")
    missing = [k for k in ("hyperparameters", "status") if k not in state]
    if missing:
        raise _Skip(f"not a complete KerasTuner trial file (missing {', '.join(missing)})")
    hps = state["hyperparameters"]
    try:
        space = _parse_space(hps)
        values = hps.get("values")
        if not isinstance(values, dict):
            raise ValueError("no hyperparameter values ('hyperparameters.values')")
        metrics = _parse_metrics(state.get("metrics"))
    except ValueError as exc:
        raise _Skip(str(exc)) from None
    trial_id = state.get("trial_id")
    if trial_id is None:
        trial_id = path.parent.name[len("trial_"):]
    score = state.get("score")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise _Skip(f"score {score!r} is not a number") from None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _KTTrial(rel, str(trial_id), state.get("status"), score, state.get("best_step"),
                    values, space, metrics, state.get("message"), mtime)


# ------------------------------------------------------------------------- objective


@dataclass
class _Objective:
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


def _infer_objective(trials: list[_KTTrial]) -> _Objective:
    """Which metric KerasTuner scored; it is written nowhere, so it is read off the scores."""
    scored = [t for t in trials if t.status == "COMPLETED" and t.score is not None
              and not math.isnan(t.score) and t.metrics]
    if any(_MULTI in t.metrics for t in trials):
        return _Objective(_MULTI, "min", _infer_components(scored))
    if not scored:
        return _Objective(None, "min")
    names = set.intersection(*(set(t.metrics) for t in scored))
    matches = [n for n in names
               if all(_close(_value_at(t.metrics[n], t.best_step), t.score) for t in scored)]
    if not matches:   # score taken as the best over steps (old tuners without best_step)
        matches = [n for n in names if all(_close(_best(t.metrics[n]), t.score) for t in scored)]
    if not matches:
        return _Objective(None, "min")
    matches.sort(key=lambda n: (not n.startswith("val_"), n == "loss", n))
    name = matches[0]
    dirs = [d for d in (t.metrics[name].direction for t in scored) if d]
    return _Objective(name, dirs[0] if dirs else "min", candidates=matches)


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
class _Project:
    path: Path
    name: str
    oracle: dict[str, Any] | None
    oracle_space: list[_HP]
    trials: list[_KTTrial]
    skipped: list[tuple[str, str]]


def _find_project(path: Path) -> None:
    """Refuse what is not a KerasTuner project with a hint where one is near."""
    if not path.exists():
        raise UserError(f"no such directory: {path}")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not a KerasTuner project directory")
    if (path / "oracle.json").exists() or any(p.is_dir() for p in path.glob("trial_*")):
        return
    inner = sorted(p.name for p in path.iterdir() if (p / "oracle.json").is_file())
    if inner:
        shown = ", ".join(str(path / n) for n in inner[:3]) + (" ..." if len(inner) > 3 else "")
        raise UserError(f"{path} holds KerasTuner projects, not one: pass one of {shown}")
    raise UserError(f"{path} is not a KerasTuner project directory "
                    "(no oracle.json and no trial_*/trial.json)")


def _read_project(path: Path) -> _Project:
    _find_project(path)
    skipped: list[tuple[str, str]] = []
    oracle: dict[str, Any] | None = None
    oracle_space: list[_HP] = []
    if (path / "oracle.json").exists():
        try:
            data = _read_json(path / "oracle.json")
            if not isinstance(data, dict):
                raise _Skip("not a KerasTuner oracle file (JSON is not an object)")
            try:
                oracle_space = _parse_space(data.get("hyperparameters"))
            except ValueError as exc:
                raise _Skip(str(exc)) from None
            oracle = data
        except _Skip as exc:
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
        except _Skip as exc:
            skipped.append((rel, str(exc)))
            continue
        if trial.trial_id in ids:
            skipped.append((rel, f"trial id {trial.trial_id!r} already read from "
                                 f"{ids[trial.trial_id]}"))
            continue
        ids[trial.trial_id] = rel
        trials.append(trial)
    return _Project(path, path.name, oracle, oracle_space, _ordered(trials, oracle), skipped)


def _ordered(trials: list[_KTTrial], oracle: dict[str, Any] | None) -> list[_KTTrial]:
    """KerasTuner's end order where recorded (>= 1.1), else file times, so that Optuna's
    trial numbers follow the order in which the trials ended."""
    order: dict[str, int] = {}
    for key in ("end_order", "start_order"):
        for tid in (oracle or {}).get(key) or []:
            order.setdefault(str(tid), len(order))
    return sorted(trials, key=lambda t: (order.get(t.trial_id, len(order)), t.mtime, t.trial_id))


def _layout(project: _Project) -> dict[str, Any]:
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


def _space_record(project: _Project) -> list[dict[str, Any]]:
    """The hp space as KerasTuner wrote it: oracle.json's, else the union of the trials'."""
    if project.oracle:
        return project.oracle["hyperparameters"]["space"]
    seen: dict[str, _HP] = {}
    for t in project.trials:
        for hp in t.space:
            seen.setdefault(hp.key, hp)
    return [{"class_name": hp.class_name, "config": hp.config} for hp in seen.values()]


def _oracle_kind(oracle: dict[str, Any] | None) -> str:
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


def _plan_trial(t: _KTTrial, objective: _Objective, retry_queue: set[str],
                oracle_space: list[_HP]) -> _Planned:
    status = t.status
    if status in ("RUNNING", "IDLE"):
        raise _Skip(f"still {status} in KerasTuner: not imported (a finished Optuna trial "
                    "cannot change); re-import after it has finished")
    if status == "INVALID" and t.trial_id in retry_queue:
        raise _Skip("INVALID and queued for a retry by KerasTuner: not imported; "
                    "re-import after the retry")
    attrs: dict[str, Any] = {schema.T_KT_ID: t.trial_id, T_KT_STATUS: status}
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
        raise _Skip(f"unknown KerasTuner status {status!r}")
    if state != TrialState.COMPLETE and t.score is not None:
        attrs[T_KT_SCORE] = _plain(t.score)
    if t.best_step is not None:
        attrs[T_KT_BEST_STEP] = t.best_step
    for name, metric in t.metrics.items():
        v = _value_at(metric, t.best_step)
        if v is not None and name not in attrs:
            attrs[name] = _plain(v)
    if t.message and state == TrialState.FAIL:
        attrs[schema.T_ERROR] = str(t.message)[-_ERROR_TAIL_CHARS:]

    active = _active_params(t, oracle_space)
    attrs.update(active.tuner)
    epochs, initial = active.tuner.get("tuner/epochs"), active.tuner.get("tuner/initial_epoch")
    if isinstance(epochs, int) and isinstance(initial, int):
        attrs[schema.T_EPOCHS] = epochs - initial
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


def _build_trials(plans: list[_Planned], known: dict[str, BaseDistribution],
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
            dists[key] = f"hyperparameter {hp.name!r} cannot be mapped ({_one_line(exc, 120)})"

    known = dict(known)
    out = []
    for p in plans:
        try:
            params, distributions = {}, {}
            for name, (hp, value) in p.active.params.items():
                dist = dists[hp.dist_key]
                if isinstance(dist, str):
                    raise _Skip(dist)
                if name in known:
                    try:
                        check_distribution_compatibility(known[name], dist)
                    except ValueError:
                        raise _Skip(f"hyperparameter {name!r} is {dist} here but "
                                    f"{known[name]} in other trials of the study") from None
                on_grid = seam.to_param(dist, value, strict=True)
                params[name] = value if on_grid is seam.OFF else on_grid
                distributions[name] = dist
            try:
                frozen = optuna.trial.create_trial(
                    state=p.state, value=p.value, params=params, distributions=distributions,
                    user_attrs=p.user_attrs, intermediate_values=p.intermediate)
            except (ValueError, TypeError) as exc:
                raise _Skip(_one_line(exc)) from None
        except _Skip as exc:
            skipped.append((p.trial.file, str(exc)))
            continue
        for name, dist in distributions.items():
            known.setdefault(name, dist)
        out.append((p, frozen))
    return out


# ---------------------------------------------------------------------------- import


def _summarise_skips(skipped: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{f}: {why}" for f, why in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return _one_line(shown + more, 600)


def import_project(path: str | Path, *, storage: str,
                   study_name: str | None = None) -> ImportResult:
    """Import one KerasTuner project directory into an Optuna study (see module docstring).

    Raises ``UserError`` for a directory that is not a project, a project with nothing
    importable, or a study of that name that holds something else; ``RunError`` when the
    storage fails (a study this call created is removed again).
    """
    project = _read_project(Path(path).expanduser().resolve())
    name = study_name or f"kt-{project.name}"
    skipped = list(project.skipped)
    objective = _infer_objective(project.trials)
    retry_queue = {str(i) for i in (project.oracle or {}).get("retry_queue") or []}

    plans, plan_skips = [], []
    for t in project.trials:
        try:
            plans.append(_plan_trial(t, objective, retry_queue, project.oracle_space))
        except _Skip as exc:
            plan_skips.append((t.trial_id, t.file, str(exc)))

    store = open_storage(storage)
    try:
        exists = name in optuna.get_all_study_names(store)
    except Exception as exc:  # noqa: BLE001 - any storage failure is one line naming the store
        raise RunError(f"cannot read storage {display_url(storage)}: {_one_line(exc)}") from None
    known: dict[str, BaseDistribution] = {}
    present: set[str] = set()
    if exists:
        study = optuna.load_study(study_name=name, storage=store)
        _check_same_project(study, name, project, objective)
        for ft in study.get_trials(deepcopy=False):
            if schema.T_KT_ID in ft.user_attrs:
                present.add(str(ft.user_attrs[schema.T_KT_ID]))
            for pname, dist in ft.distributions.items():
                known.setdefault(pname, dist)
    # A trial already imported counts as present whatever its file says now (e.g. KerasTuner
    # retrying it): finished Optuna trials are never rewritten.
    already = sum(t.trial_id in present for t in project.trials)
    skipped += [(file, why) for tid, file, why in plan_skips if tid not in present]
    new_plans = [p for p in plans if p.trial.trial_id not in present]
    ready = _build_trials(new_plans, known, skipped)

    if not ready:
        if exists:
            return ImportResult(name, 0, skipped, already)
        if skipped:
            raise UserError(f"nothing importable in {project.path}: {_summarise_skips(skipped)}")
        raise UserError(f"nothing to import: {project.path} holds no trials yet")

    source = {
        "source_path": str(project.path),
        "project_name": project.name,
        "objective": objective.name,
        "direction": objective.direction,
        "objectives": objective.components,
        "objective_candidates": objective.candidates,
        "objective_note": ("inferred from the trial files (KerasTuner does not store it)"
                           if objective.name else
                           "unknown: no scored trial; direction defaulted to minimize"),
        "layout": _layout(project),
        "oracle": _oracle_kind(project.oracle),
        "space": _space_record(project),
        "step_meaning": "intermediate value steps are KerasTuner's own steps as stored "
                        "(for Keras models the 0-based epoch of that fit)",
    }
    added = 0
    created = False
    try:
        # KerasTuner's own name for its objective (its "score" when it cannot be inferred),
        # so optuna-dashboard shows e.g. "val_accuracy" instead of "Objective 0".
        study = create_study(store, name, direction=objective.direction,
                             metric_names=[objective.name or "score"])
        created = not exists
        if created:
            study.set_user_attr(schema.STUDY_BENCH, {
                "kind": KIND_KT_IMPORT, "objective": objective.name,
                "direction": objective.direction, "source": str(project.path)})
            study.set_user_attr(STUDY_KT_IMPORT, source)
        for _, frozen in ready:
            study.add_trial(frozen)
            added += 1
        record = dict(study.user_attrs.get(STUDY_KT_IMPORT) or source)
        record["last_import"] = {
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "added": added, "already_present": already, "skipped": len(skipped)}
        study.set_user_attr(STUDY_KT_IMPORT, record)
    except Exception as exc:
        if created:
            try:
                optuna.delete_study(study_name=name, storage=store)
                undo = f"study {name!r} was removed again"
            except Exception:  # noqa: BLE001 - the write error is the one raised; the undo is reported
                undo = f"study {name!r} may be incomplete: delete it before importing again"
        else:
            undo = (f"{added} trial(s) were added to {name!r}; importing again adds the rest "
                    "(trials are matched by kt_trial_id)")
        raise RunError(f"writing to storage {display_url(storage)} failed: {_one_line(exc)}; "
                       f"{undo}") from exc
    return ImportResult(name, added, skipped, already)


def _check_same_project(study: optuna.Study, name: str, project: _Project,
                        objective: _Objective) -> None:
    """Refuse to mix trials into a study that holds something else (ids would collide)."""
    record = study.user_attrs.get(STUDY_KT_IMPORT)
    if not isinstance(record, dict):
        raise UserError(f"study {name!r} exists and was not imported from KerasTuner; "
                        "choose another name with --study")
    if record.get("project_name") != project.name:
        raise UserError(f"study {name!r} holds KerasTuner project "
                        f"{record.get('project_name')!r} from {record.get('source_path')}, "
                        f"not {project.name!r}; choose another name with --study")
    direction = study.direction.name.lower()
    if objective.name and direction != objective.direction:
        raise UserError(f"study {name!r} is set to {direction} but this project's objective "
                        f"{objective.name!r} is to {objective.direction}; choose another "
                        "name with --study")


# ------------------------------------------------------------------------------- CLI


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``import-kt`` on the bench CLI's subparsers (wired by bench/__main__.py)."""
    p = subparsers.add_parser(
        "import-kt", help="import a KerasTuner project directory into an Optuna study",
        description="Turn <directory>/<project_name>/ written by KerasTuner 1.0-1.4 "
                    "(oracle.json, trial_*/trial.json) into an Optuna study. Re-importing "
                    "adds only trials that are new since the last import.")
    p.add_argument("path", help="the KerasTuner project directory (<directory>/<project_name>)")
    p.add_argument("--study", default=None,
                   help="study name (default: kt-<project_name>)")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.set_defaults(func=run_cli)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """One summary line, then one line per skipped file (Optuna's own INFO lines muted)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        result = import_project(args.path, storage=args.storage, study_name=args.study)
    finally:
        optuna.logging.set_verbosity(verbosity)
    skipped = f", {len(result.skipped)} file(s) skipped" if result.skipped else ""
    if result.added:
        print(f"imported {result.added} trial(s) from {args.path} into study "
              f"{result.study_name!r} ({display_url(args.storage)}); "
              f"{result.already_present} already there{skipped}")
    else:
        print(f"nothing new: study {result.study_name!r} ({display_url(args.storage)}) "
              f"already holds the {result.already_present} importable trial(s) of "
              f"{args.path}{skipped}")
    for file, why in result.skipped:
        print(f"skipped {os.path.join(str(args.path), file)}: {why}")
    return 0
