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

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from bench.core import schema
from bench.core.errors import RunError, UserError
from bench.core.store import create_study, display_url, open_storage
from searchers.errors import ConfigError
from searchers.kt_project_reader import (
    Objective,
    Project,
    Skip,
    build_trials,
    hp_distribution,  # noqa: F401  # the name tests and users import from here
    infer_objective,
    layout,
    one_line,
    oracle_kind,
    plan_trial,
    read_project,
    space_record,
)

# Study user attrs written by this import (``bench`` follows docs/design.md's convention
# that extra studies are told apart by ``bench["kind"]``).
KIND_KT_IMPORT = "kt-import"
STUDY_KT_IMPORT = "kt_import"
DEFAULT_STORAGE = schema.DEFAULT_STORAGE


@dataclass
class ImportResult:
    """What one import did: the CLI prints it, tests check it."""

    study_name: str
    added: int
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    already_present: int = 0


# ---------------------------------------------------------------------------- import


def _summarise_skips(skipped: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{f}: {why}" for f, why in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return one_line(shown + more, 600)


def import_project(path: str | Path, *, storage: str,
                   study_name: str | None = None) -> ImportResult:
    """Import one KerasTuner project directory into an Optuna study (see module docstring).

    Raises ``UserError`` for a directory that is not a project, a project with nothing
    importable, or a study of that name that holds something else; ``RunError`` when the
    storage fails (a study this call created is removed again).
    """
    if study_name is not None:
        schema.check_study_name(study_name)  # as run checks --study, before anything is read
    try:
        project = read_project(Path(path).expanduser().resolve())
    except ConfigError as exc:  # not one project: the CLI's one line
        raise UserError(str(exc)) from None
    name = study_name or f"kt-{project.name}"
    skipped = list(project.skipped)
    objective = infer_objective(project.trials)
    retry_queue = {str(i) for i in (project.oracle or {}).get("retry_queue") or []}

    plans, plan_skips = [], []
    for t in project.trials:
        try:
            plans.append(plan_trial(t, objective, retry_queue, project.oracle_space))
        except Skip as exc:
            plan_skips.append((t.trial_id, t.file, str(exc)))

    store = open_storage(storage)
    try:
        exists = name in optuna.get_all_study_names(store)
    except Exception as exc:  # noqa: BLE001 - any storage failure is one line naming the store
        raise RunError(f"cannot read storage {display_url(storage)}: {one_line(exc)}") from None
    known: dict[str, BaseDistribution] = {}
    present: set[str] = set()
    if exists:
        study = optuna.load_study(study_name=name, storage=store)
        _check_same_project(study, name, project, objective)
        stored = {}
        for ft in study.get_trials(deepcopy=False):
            if schema.T_KT_ID in ft.user_attrs:
                present.add(str(ft.user_attrs[schema.T_KT_ID]))
                stored[str(ft.user_attrs[schema.T_KT_ID])] = ft.params
            for pname, dist in ft.distributions.items():
                known.setdefault(pname, dist)
        _check_same_trials(name, project, plans, stored)
    # A trial already imported counts as present whatever its file says now (e.g. KerasTuner
    # retrying it): finished Optuna trials are never rewritten.
    already = sum(t.trial_id in present for t in project.trials)
    skipped += [(file, why) for tid, file, why in plan_skips if tid not in present]
    new_plans = [p for p in plans if p.trial.trial_id not in present]
    ready = build_trials(new_plans, known, skipped)

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
        "layout": layout(project),
        "oracle": oracle_kind(project.oracle),
        "space": space_record(project),
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
        raise RunError(f"writing to storage {display_url(storage)} failed: {one_line(exc)}; "
                       f"{undo}") from exc
    return ImportResult(name, added, skipped, already)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _check_same_trials(name: str, project: Project, plans: list[Any],
                       stored: dict[str, dict[str, Any]]) -> None:
    """Another project whose folder has the same name (every bench run's is ``main``) is
    refused: a trial id the study holds with other values is another project's trial, not
    this one's already imported (a project that moved keeps its values: imported as one)."""
    for plan in plans:
        have = stored.get(plan.trial.trial_id)
        if have is None:
            continue
        mine = {n: v for n, (_hp, v) in plan.active.params.items()}
        if mine.keys() != have.keys() or not all(_same_value(mine[n], have[n]) for n in mine):
            raise UserError(f"study {name!r} holds another KerasTuner project named "
                            f"{project.name!r} (its trial {plan.trial.trial_id} has other values "
                            f"than {project.path}'s): import this one with --study NAME")


def _check_same_project(study: optuna.Study, name: str, project: Project,
                        objective: Objective) -> None:
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
