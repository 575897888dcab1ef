"""``python -m bench overhead``: per-trial overhead of searchers, side by side, broken down.

Overhead is what the report calls it: per trial, ``wall_seconds - fit_seconds`` (user
attrs of the study store), median over COMPLETE and PRUNED trials. Each searcher runs an
ordinary in-process search (``bench.run.runner.run_search``) in a fresh Python process of its
own, one after the other, against a throwaway SQLite store, so that neither inherits the
other's heap; ``install_profiler`` in that process times where the trial's time goes:

    build      the hypermodel's build (+ compile)  KerasTuner ``Tuner._build_hypermodel``
    clear      ``keras.backend.clear_session`` (its garbage collection counts as gc)
    gc         every garbage collection (``gc.callbacks``: automatic ones too)
    ckpt       ``Model.save_weights`` / ``get_weights`` / ``set_weights``, ``Tuner.save_model``
    kt_files   KerasTuner's JSON state (oracle.json, trial.json, tuner0.json, build config)
    store_w    Optuna storage calls that write (``RDBStorage`` and its cache)
    store_r    Optuna storage calls that read
    tb         ``bench.run.tblog.HParamsLogger`` (TensorBoard event files)
    sampler    Optuna samplers and pruners, KerasTuner's ``Oracle.populate_space``
    fit_edges  ``model.fit`` outside its epochs (data adapter, callbacks, teardown)
    artifacts  the artifact store (``--artifacts``: best-k checkpoints uploaded, removed)
    other      the overhead none of these explain

Time is charged to the innermost running component only (a store read inside the sampler
counts as a store read, a collection inside ``clear_session`` as gc), so components never
overlap. Timers wrap library functions for the measurement only; nothing behaves
differently. The trial's phases come from ``bench.run.tracking.TrialTracker``'s hooks: "in
overhead" (wall clock running, outside epochs), "fit" (inside epochs) and "after wall"
(the wall clock of the trial stopped, the next trial not begun: work the overhead figure
does not see).

``install_profiler()`` patches whatever of the above is importable, so the same function
can profile an older checkout: ``--searchers random,tpe@/tmp/old,tpe`` runs the middle
search with the code of the checkout in /tmp/old (this file's profiler, that checkout's
``bench``, ``searchers`` and ``models``), for a before/after table in one invocation.
"""
from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

TARGET_RATIO = 0.5          # the Optuna-backed tuner's median overhead vs RandomSearch's
TARGET_STANDARD_S = 0.5     # absolute, at the standard preset

# components (indices into a phase row); OTHER: no component running
OTHER, GC, CLEAR, BUILD, CKPT, KT_FILES, STORE_W, STORE_R, TB, SAMPLER, FIT_EDGES, ARTIFACTS = range(12)
COMPONENTS = ("other", "gc", "clear", "build", "ckpt", "kt_files", "store_w", "store_r", "tb",
              "sampler", "fit_edges", "artifacts")
LABELS = {
    "build": "build+compile", "clear": "clear_session (w/o gc)", "gc": "gc (all collections)",
    "ckpt": "checkpointing", "kt_files": "KerasTuner JSON files", "store_w": "store writes",
    "store_r": "store reads", "tb": "TensorBoard writes", "sampler": "sampler/oracle",
    "fit_edges": "model.fit outside epochs", "artifacts": "artifact store", "other": "other",
}
_GROUP = {c: c for c in range(len(COMPONENTS))}
_GROUP[STORE_R] = STORE_W  # a store call nested in another counts once, as the outermost
PHASES = ("overhead", "fit", "after_wall")
OVER, FIT, AFTER = range(3)

_STORE_READ = re.compile(r"_?(get|read|is|check|_get)")  # names of methods that only read


class _Window:
    """One trial's accounting: from the tracker's ``before_create`` to the next one."""

    __slots__ = ("kt_id", "seconds", "store_calls", "commits")

    def __init__(self) -> None:
        self.kt_id: str | None = None
        self.seconds = [[0.0] * len(COMPONENTS) for _ in PHASES]
        self.store_calls = [0] * len(PHASES)
        self.commits = [0] * len(PHASES)

    def as_dict(self) -> dict[str, Any]:
        return {"kt_id": self.kt_id,
                "seconds": {p: {c: round(self.seconds[i][j], 6) for j, c in enumerate(COMPONENTS)}
                            for i, p in enumerate(PHASES)},
                "store_calls": dict(zip(PHASES, self.store_calls)),
                "commits": dict(zip(PHASES, self.commits))}


class Profile:
    """Exclusive time per (trial window, phase, component); see ``install_profiler``.

    Only the main thread is measured (the heartbeat thread's store writes run beside the
    trial, not in it). The accounting code allocates no garbage-collected objects between
    reading the clock and storing it, so a collection cannot start in the middle of it.
    """

    def __init__(self) -> None:
        self._main = threading.main_thread().ident
        self.setup = _Window()                    # before the first trial
        self.windows: list[_Window] = []
        self._window = self.setup
        self._phase = AFTER
        self._row = self.setup.seconds[AFTER]
        self._stack = [OTHER]
        self._last = time.perf_counter()
        self.calls: dict[str, int] = {}           # every patched function, main thread
        self.patched: list[str] = []
        self.missing: list[str] = []
        self._undo: list[Callable[[], None]] = []

    # ---- the clock ---------------------------------------------------------------------
    def _charge(self) -> None:
        now = time.perf_counter()
        self._row[self._stack[-1]] += now - self._last
        self._last = now

    def _push(self, comp: int) -> None:
        self._charge()
        self._stack.append(comp)
        if _GROUP[comp] == STORE_W:
            self._window.store_calls[self._phase] += 1

    def _pop(self, comp: int) -> None:
        self._charge()
        stack = self._stack
        if len(stack) > 1 and stack[-1] == comp:
            stack.pop()
        else:  # robust to an unbalanced pair (should not happen)
            for i in range(len(stack) - 1, 0, -1):
                if stack[i] == comp:
                    del stack[i]
                    break

    def _set_phase(self, phase: int) -> None:
        if phase != self._phase:
            self._charge()
            self._phase = phase
            self._row = self._window.seconds[phase]

    def _new_window(self) -> None:
        window = _Window()  # allocated before the switch (it may start a collection)
        self.windows.append(window)
        self._charge()
        self._window, self._phase, self._row = window, OVER, window.seconds[OVER]

    def _on_gc(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self._main:
            return
        if phase == "start":
            self._push(GC)
        else:
            self._pop(GC)

    def _on_commit(self, *args: Any) -> None:
        if threading.get_ident() == self._main:
            self._window.commits[self._phase] += 1

    def finish(self) -> None:
        """Close the accounting (call when the search returned)."""
        self._charge()

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    # ---- patching ------------------------------------------------------------------------
    def _timed(self, comp: int, fn: Callable, key: str) -> Callable:
        group, calls = _GROUP[comp], self.calls
        calls.setdefault(key, 0)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._main:
                return fn(*args, **kwargs)
            calls[key] += 1
            if _GROUP[self._stack[-1]] == group:  # nested in its own kind: the outer one counts
                return fn(*args, **kwargs)
            self._push(comp)
            try:
                return fn(*args, **kwargs)
            finally:
                self._pop(comp)
        return timed

    def _hooked(self, fn: Callable, before: Callable | None, after: Callable | None) -> Callable:
        @functools.wraps(fn)
        def hooked(*args: Any, **kwargs: Any) -> Any:
            main = threading.get_ident() == self._main
            if main and before:
                before(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                if main and after:
                    after(*args, **kwargs)
        return hooked

    def _replace(self, owner: Any, name: str, make: Callable[[Callable], Callable],
                 label: str) -> bool:
        """Replace ``owner.name`` by ``make(original)``; undone by ``uninstall``."""
        had = name in vars(owner)
        original = vars(owner)[name] if had else getattr(owner, name, None)
        if not callable(original) or isinstance(original, (staticmethod, classmethod)):
            return False
        setattr(owner, name, make(original))
        restore = had or not isinstance(owner, type)  # else the attribute was inherited
        self._undo.append((lambda: setattr(owner, name, original)) if restore
                          else (lambda: delattr(owner, name)))
        self.patched.append(label)
        return True

    def time_function(self, owner: Any, name: str, comp: int, label: str | None = None) -> bool:
        label = label or f"{getattr(owner, '__name__', owner)}.{name}"
        return self._replace(owner, name, lambda fn: self._timed(comp, fn, label), label)

    def time_methods(self, cls: type, names: tuple[str, ...] | None,
                     comp: int | Callable[[str], int]) -> None:
        """Time methods defined in ``cls`` itself (``names`` None: all non-dunder functions)."""
        for name, raw in list(vars(cls).items()):
            if name.startswith("__") if names is None else name not in names:
                continue
            if not callable(raw) or isinstance(raw, (staticmethod, classmethod, type)):
                continue
            c = comp(name) if callable(comp) else comp
            self.time_function(cls, name, c, f"{cls.__name__}.{name}")

    def hook(self, owner: Any, name: str, before: Callable | None = None,
             after: Callable | None = None) -> bool:
        label = f"{getattr(owner, '__name__', owner)}.{name}"
        return self._replace(owner, name, lambda fn: self._hooked(fn, before, after), label)


def _import(name: str, *older: str) -> Any:
    """The module ``name``, else the first of the names an older checkout gave it."""
    for candidate in (name, *older):
        try:
            return importlib.import_module(candidate)
        except Exception:  # noqa: BLE001 - an older checkout may lack it
            continue
    return None


def _own_seam() -> Any:
    """``searchers/seam.py`` of the checkout this file belongs to, loaded by its path (the
    search may run an older checkout's code, whose seam may lack an accessor)."""
    import importlib.util
    path = Path(__file__).resolve().parents[2] / "searchers" / "seam.py"
    spec = importlib.util.spec_from_file_location("bench_overhead_seam", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - profile what can be profiled
        return None
    return module


def _kt_module(seam: Any, name: str) -> Any:
    try:
        return seam.kt_module(name) if seam is not None else None
    except Exception:  # noqa: BLE001 - an older KerasTuner may lack it
        return None


def _subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        klass = todo.pop()
        if klass not in found:
            found.append(klass)
            todo.extend(klass.__subclasses__())
    return found


def _store_comp(name: str) -> int:
    return STORE_R if _STORE_READ.match(name) else STORE_W


def install_profiler() -> Profile:
    """Start timing the components listed in this module's docstring, in this process.

    Patches what is importable and records what it could not in ``Profile.missing``.
    Install it after importing the code to profile and before the search starts; classes
    defined later (new sampler subclasses) are not timed.
    """
    p = Profile()

    def need(ok: bool, what: str) -> None:
        if not ok:
            p.missing.append(what)

    keras = _import("keras")
    if keras is not None:
        need(p.time_function(keras.backend, "clear_session", CLEAR, "keras.backend.clear_session"),
             "keras.backend.clear_session")
        if getattr(keras, "utils", None) is not None and hasattr(keras.utils, "clear_session"):
            p.time_function(keras.utils, "clear_session", CLEAR, "keras.utils.clear_session")
        for name in ("save_weights", "get_weights", "set_weights"):
            need(p.time_function(keras.Model, name, CKPT, f"Model.{name}"), f"keras.Model.{name}")
        need(p.time_function(keras.Model, "fit", FIT_EDGES, "Model.fit"), "keras.Model.fit")
    else:
        p.missing.append("keras")

    seam = _own_seam()  # this checkout's accessors, whichever checkout runs the search
    kt_tuner = _kt_module(seam, "engine.tuner")
    kt_base = _kt_module(seam, "engine.base_tuner")
    kt_oracle = _kt_module(seam, "engine.oracle")
    kt_stateful = _kt_module(seam, "engine.stateful")
    kt_utils = _kt_module(seam, "utils")
    # make sure every Oracle / sampler subclass a search may use exists before walking them
    for module in ("searchers.registry", "searchers.optuna_oracle", "searchers.optuna_tuner",
                   "searchers.optuna_components", "keras_tuner", "optuna.samplers",
                   "optuna.pruners"):
        _import(module)
    if kt_tuner is not None:
        if not p.time_function(kt_tuner.Tuner, "_build_hypermodel", BUILD,
                               "Tuner._build_hypermodel"):
            need(p.time_function(_kt_module(seam, "engine.hypermodel").DefaultHyperModel,
                                 "build", BUILD), "KerasTuner build")
    if kt_base is not None:
        p.time_function(kt_base.BaseTuner, "save_model", CKPT, "BaseTuner.save_model")
        for cls in _subclasses(kt_base.BaseTuner):
            if "save_model" in vars(cls) and cls is not kt_base.BaseTuner:
                p.time_function(cls, "save_model", CKPT)
    if kt_stateful is not None:
        for cls in _subclasses(kt_stateful.Stateful):
            p.time_methods(cls, ("save", "_save_trial"), KT_FILES)
    if kt_utils is not None:
        p.time_function(kt_utils, "save_json", KT_FILES, "keras_tuner utils.save_json")
    artifacts = _import("searchers.checkpoint_artifacts")
    if artifacts is not None:  # --artifacts: uploads and removals (store calls inside count here)
        p.time_methods(artifacts.CheckpointArtifacts, ("trial_ended", "flush", "keep_only"), ARTIFACTS)
    kt_project = _import("bench.core.kt_project", "bench.kt_project")
    if kt_project is not None and hasattr(kt_project, "_atomic_save_json"):
        # installed over utils.save_json when a run starts
        p.time_function(kt_project, "_atomic_save_json", KT_FILES, "kt_project._atomic_save_json")
    if kt_oracle is not None:
        for cls in _subclasses(kt_oracle.Oracle):
            # an OptunaOracle takes and fills a new trial in _create_new_trial (its id
            # follows the study trial), not in populate_space
            p.time_methods(cls, ("populate_space", "_create_new_trial"), SAMPLER)
    else:
        p.missing.append("keras_tuner Oracle")

    optuna = _import("optuna")
    if optuna is not None:
        from optuna.storages import RDBStorage
        cached = seam.cached_storage_class() if seam is not None else None
        for storage_cls in (RDBStorage, cached):
            if storage_cls is not None:
                p.time_methods(storage_cls, None, _store_comp)
        for cls in _subclasses(optuna.samplers.BaseSampler):
            p.time_methods(cls, ("sample_relative", "sample_independent",
                                 "infer_relative_search_space", "before_trial", "after_trial"),
                           SAMPLER)
        for cls in _subclasses(optuna.pruners.BasePruner):
            p.time_methods(cls, ("prune",), SAMPLER)
    else:
        p.missing.append("optuna")
    optuna_oracle = _import("searchers.optuna_oracle")
    seam = _import("searchers.seam")
    if hasattr(optuna_oracle, "_write_in_one_transaction"):  # older checkouts: imported there
        p.time_function(optuna_oracle, "_write_in_one_transaction", STORE_W,
                        "optuna_oracle._write_in_one_transaction")
    elif hasattr(seam, "write_in_one_transaction"):  # a trial's params in one commit
        p.time_function(seam, "write_in_one_transaction", STORE_W, "seam.write_in_one_transaction")
    sqlalchemy = _import("sqlalchemy")
    if sqlalchemy is not None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        event.listen(Engine, "commit", p._on_commit)
        p._undo.append(lambda: event.remove(Engine, "commit", p._on_commit))

    tblog = _import("bench.run.tblog", "bench.tblog")
    if tblog is not None and hasattr(tblog, "HParamsLogger"):
        p.time_methods(tblog.HParamsLogger, None, TB)
    else:
        p.missing.append("bench.run.tblog.HParamsLogger")

    tracking = _import("bench.run.tracking", "bench.tracking")
    tracker = getattr(tracking, "TrialTracker", None)
    if tracker is not None:
        def begin(_self: Any, trial: Any, *a: Any, **k: Any) -> None:
            p._window.kt_id = str(trial.trial_id)

        need(p.hook(tracker, "before_create", after=lambda *a, **k: p._new_window()),
             "TrialTracker.before_create (trial windows)")
        need(p.hook(tracker, "begin", after=begin), "TrialTracker.begin")
        need(p.hook(tracker, "epoch_begin", after=lambda *a, **k: p._set_phase(FIT)),
             "TrialTracker.epoch_begin (fit phase)")
        # the epoch's clock stops in epoch_stop (epoch_end in older checkouts)
        stop = "epoch_stop" if hasattr(tracker, "epoch_stop") else "epoch_end"
        need(p.hook(tracker, stop, before=lambda *a, **k: p._set_phase(OVER)),
             f"TrialTracker.{stop} (fit phase)")
        # the trial's wall clock stops: Optuna-backed (wall) / mirrored (_close_record, end)
        p.hook(tracker, "wall", after=lambda *a, **k: p._set_phase(AFTER))
        p.hook(tracker, "_close_record", before=lambda *a, **k: p._set_phase(AFTER))
        p.hook(tracker, "end", after=lambda *a, **k: p._set_phase(AFTER))
    else:
        p.missing.append("bench.run.tracking.TrialTracker (no trial windows)")
    mixin = getattr(tracking, "TrackingMixin", None)
    if mixin is not None:
        p.hook(mixin, "search", after=lambda *a, **k: p._set_phase(AFTER))

    gc.callbacks.append(p._on_gc)
    p._undo.append(lambda: gc.callbacks.remove(p._on_gc))
    return p


def profile_data(p: Profile) -> dict[str, Any]:
    """The profile as JSON-ready data (what the child process hands back)."""
    p.finish()
    return {"windows": [w.as_dict() for w in p.windows], "setup": p.setup.as_dict(),
            "calls": {k: v for k, v in sorted(p.calls.items()) if v},
            "patched": p.patched, "missing": p.missing}


# ---- the child process: one searcher, one search -----------------------------------------
def _child(spec_path: str, out_path: str) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = json.loads(Path(spec_path).read_text())
    errors = _import("bench.core.errors", "bench.errors")
    UserError, RunError = errors.UserError, errors.RunError
    # the errors a user sees as one line (an older checkout has no searchers.errors)
    shown = (UserError, RunError, getattr(_import("searchers.errors"), "ConfigError", UserError))
    quiet = _import("bench.core.quiet", "bench.quiet")
    if quiet is not None and not spec.get("verbose"):
        quiet.install()
    logs = _import("bench.core.logs", "bench.cli")  # older checkouts: in the CLI, or none
    if logs is not None and hasattr(logs, "configure_logging"):
        logs.configure_logging(bool(spec.get("verbose")))
    quiet_libraries = getattr(logs, "quiet_libraries", None) or getattr(logs, "_quiet_libraries", None)
    if quiet_libraries is not None:
        quiet_libraries()
    from dataclasses import fields

    runner = _import("bench.run.runner", "bench.runner")
    RunConfig, run_search = runner.RunConfig, runner.run_search
    known = {f.name for f in fields(RunConfig)}  # an older checkout may know fewer
    cfg = RunConfig(**{k: v for k, v in spec.items() if k in known and v is not None})
    profile = install_profiler()
    try:
        run_search(cfg)
    except shown as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    Path(out_path).write_text(json.dumps(profile_data(profile)))
    return 0


# ---- the command ----------------------------------------------------------------------------
def _store_trials(url: str) -> dict[str, dict[str, Any]]:
    """kt trial id -> wall, fit, state of the measured trials (COMPLETE and PRUNED)."""
    import optuna
    from optuna.trial import TrialState

    from bench.core import schema, store
    storage = store.open_storage(url, must_exist=True, read_only=True, heartbeat=False)
    try:
        found = {}
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            for t in study.get_trials(deepcopy=False,
                                      states=(TrialState.COMPLETE, TrialState.PRUNED)):
                a = t.user_attrs
                overhead = store.trial_overhead(t)  # the report's definition
                if overhead is not None:
                    found[str(a.get(schema.T_KT_ID, f"#{t.number}"))] = {
                        "number": t.number, "state": t.state.name, "overhead": overhead,
                        "wall": float(a[schema.T_WALL]), "fit": float(a[schema.T_FIT])}
        return found
    finally:
        storage.engine.dispose()


def pooled(parts: list[tuple[dict[str, Any], dict[str, dict[str, Any]], float]]
           ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One searcher's profiles and store trials of several rounds as if from one search:
    trial ids get their round as a prefix (``"1:03"``; one round's ids stay as they are),
    call counts add up."""
    if len(parts) == 1:
        return parts[0][0], parts[0][1]
    windows: list[dict[str, Any]] = []
    trials: dict[str, dict[str, Any]] = {}
    calls: dict[str, int] = {}
    missing: list[str] = []
    for rnd, (profile, store_trials, _) in enumerate(parts):
        windows += [{**w, "kt_id": None if w["kt_id"] is None else f"{rnd}:{w['kt_id']}"}
                    for w in profile["windows"]]
        trials.update({f"{rnd}:{k}": v for k, v in store_trials.items()})
        for k, v in profile["calls"].items():
            calls[k] = calls.get(k, 0) + v
        missing += [m for m in profile["missing"] if m not in missing]
    return {"windows": windows, "calls": calls, "missing": missing}, trials


def median_overhead(trials: dict[str, dict[str, Any]]) -> float | None:
    """The report's figure: median of wall - fit over the trials (None without any)."""
    if not trials:
        return None
    return round(statistics.median(t["overhead"] for t in trials.values()), 4)


def summarize(name: str, profile: dict[str, Any],
              trials: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-trial figures of one searcher: store's overhead joined with the profile's windows."""
    windows = {w["kt_id"]: w for w in profile["windows"] if w["kt_id"] is not None}
    ids = [k for k in trials if k in windows]
    n = len(ids)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    def per_trial(phase: str) -> dict[str, float]:
        return {c: round(mean([windows[k]["seconds"][phase][c] for k in ids]), 4)
                for c in COMPONENTS}

    over = per_trial("overhead")
    named = {c: v for c, v in over.items() if c != "other"}
    mean_overhead = mean([trials[k]["overhead"] for k in ids])
    return {
        "searcher": name, "trials": len(trials), "trials_profiled": n,
        "median_overhead_s": median_overhead(trials),
        "mean_overhead_s": round(mean_overhead, 4),
        "mean_fit_s": round(mean([trials[k]["fit"] for k in ids]), 4),
        "components_s": {**named, "other": round(mean_overhead - sum(named.values()), 4)},
        "profiled_overhead_s": round(sum(over.values()), 4),
        "after_wall_s": per_trial("after_wall"),
        "in_fit_s": per_trial("fit"),
        "store_calls": {ph: round(mean([windows[k]["store_calls"][ph] for k in ids]), 2)
                        for ph in PHASES},
        "sql_commits": {ph: round(mean([windows[k]["commits"][ph] for k in ids]), 2)
                        for ph in PHASES},
        "calls_per_trial": {k: round(v / max(n, 1), 2) for k, v in profile["calls"].items()},
        "missing_hooks": profile["missing"],
    }


def format_table(results: list[dict[str, Any]]) -> str:
    names = [r["searcher"] for r in results]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, values: list[Any], fmt: str = "{:.3f}") -> None:
        rows.append((label, [fmt.format(v) if isinstance(v, (int, float)) else str(v)
                             for v in values]))

    row("trials measured", [r["trials"] for r in results], "{}")
    row("median overhead (wall-fit) s", [r["median_overhead_s"] for r in results])
    row("mean overhead s", [r["mean_overhead_s"] for r in results])
    if any(r.get("round_medians_s") for r in results):
        row("  median, round by round", [_rounds_text(r) for r in results])
    for c in COMPONENTS[1:] + ("other",):
        row(f"  {LABELS[c]}", [r["components_s"].get(c, 0.0) for r in results])
    row("mean fit s", [r["mean_fit_s"] for r in results])
    row("after the wall clock s", [sum(r["after_wall_s"].values()) for r in results])
    for c in ("store_w", "store_r", "kt_files", "gc", "artifacts", "other"):
        row(f"  {LABELS[c]}", [r["after_wall_s"].get(c, 0.0) for r in results])
    row("store calls in overhead", [r["store_calls"]["overhead"] for r in results], "{:.1f}")
    row("store calls in fit", [r["store_calls"]["fit"] for r in results], "{:.1f}")
    row("store calls after wall", [r["store_calls"]["after_wall"] for r in results], "{:.1f}")
    row("SQL commits (all phases)", [sum(r["sql_commits"].values()) for r in results], "{:.1f}")
    row("median overhead / baseline's",
        [_ratio_text(r, _baseline(results, r)) for r in results])
    row("  baseline", [_baseline(results, r)["searcher"] for r in results])
    label_w = max(len(label) for label, _ in rows) + 2
    width = max(10, *(len(n) + 2 for n in names), *(len(v) + 2 for _, vs in rows for v in vs))
    head = "per trial (means unless said)".ljust(label_w)
    lines = [head + "".join(n.rjust(width) for n in names)]
    lines += [label.ljust(label_w) + "".join(v.rjust(width) for v in values)
              for label, values in rows]
    return "\n".join(lines)


def _rounds_text(r: dict[str, Any]) -> str:
    return "/".join("-" if v is None else f"{v:.3f}" for v in r.get("round_medians_s") or [])


def _baseline(results: list[dict[str, Any]], r: dict[str, Any]) -> dict[str, Any]:
    """What ``r`` is compared with: the first searcher run with the same code."""
    return next(b for b in results if b.get("code") == r.get("code"))


def _ratio_text(r: dict[str, Any], base: dict[str, Any]) -> str:
    if base["median_overhead_s"] and r["median_overhead_s"] is not None:
        return f"{r['median_overhead_s'] / base['median_overhead_s']:.2f}x"
    return "-"


def _round_ratios(r: dict[str, Any], base: dict[str, Any]) -> list[float]:
    """Round by round, ``r``'s median overhead over ``base``'s (side by side in a round)."""
    pairs = zip(r.get("round_medians_s") or [], base.get("round_medians_s") or [])
    return [a / b for a, b in pairs if a is not None and b]


def verdicts(results: list[dict[str, Any]], preset: str) -> list[tuple[str, bool]]:
    """One line per searcher that is not a baseline (the first of its code), against the
    targets: the Optuna-backed tuner vs KerasTuner's RandomSearch run first."""
    out = []
    for r in results:
        base = _baseline(results, r)
        if base is r:
            continue
        if not (base["median_overhead_s"] and r["median_overhead_s"] is not None):
            out.append((f"{r['searcher']}: not enough trials to compare", False))
            continue
        ratio = r["median_overhead_s"] / base["median_overhead_s"]
        ok = ratio <= TARGET_RATIO
        text = (f"{r['searcher']}: median overhead {r['median_overhead_s']:.3f} s = {ratio:.2f}x "
                f"{base['searcher']}'s {base['median_overhead_s']:.3f} s (target <= "
                f"{TARGET_RATIO}x): {'met' if ok else 'NOT met'}")
        per_round = _round_ratios(r, base)
        if per_round:
            text += (f" (over {len(per_round)} rounds' trials pooled; each round's ratio: "
                     + ", ".join(f"{x:.2f}x" for x in per_round) + ")")
        if preset == "standard":
            absolute = r["median_overhead_s"] <= TARGET_STANDARD_S
            text += (f"; absolute {r['median_overhead_s']:.3f} s (target <= {TARGET_STANDARD_S} s "
                     f"at standard): {'met' if absolute else 'NOT met'}")
            ok = ok and absolute
        out.append((text, ok))
    return out


CHECKOUT = Path(__file__).resolve().parent.parent  # the checkout this module belongs to


def _parse_entry(entry: str) -> tuple[str, str, Path | None]:
    """``name`` or ``name@CHECKOUT`` -> (label, searcher name, checkout or None)."""
    from bench.core.errors import UserError
    name, _, path = entry.strip().partition("@")
    if not path:
        return name, name, None
    checkout = Path(path).expanduser().resolve()
    if not any((checkout / "bench" / p).is_file() for p in ("run/runner.py", "runner.py")):
        raise UserError(f"--searchers {entry.strip()!r}: {checkout} is not a checkout of this "
                        "benchmark (no bench/run/runner.py there)")
    return f"{name}@{checkout.name}", name, checkout


def _child_command(spec: Path, out: Path) -> list[str]:
    """Python running ``_child`` of this very file, whichever checkout is on the path."""
    loader = ("import importlib.util as u, sys; sys.path[:] = [p for p in sys.path if p]; "
              "s = u.spec_from_file_location("
              "'bench_overhead_profiler', sys.argv[1]); m = u.module_from_spec(s); "
              "sys.modules[s.name] = m; "  # as an import would (dataclasses look it up)
              "s.loader.exec_module(m); sys.exit(m._child(sys.argv[2], sys.argv[3]))")
    return [sys.executable, "-c", loader, str(Path(__file__).resolve()), str(spec), str(out)]


def _child_env(checkout: Path) -> dict[str, str]:
    """The environment of a search process: ``checkout``'s code ahead of everything."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _study_name(dataset: str, preset: str) -> str:
    safe = re.sub(r"[^\w.-]+", "_", dataset).strip("._-")[:60] or "data"
    return f"{safe}-overhead-{preset}"


@dataclass(frozen=True)
class OverheadSettings:
    """``bench overhead``'s flags."""

    searchers: str             # NAME or NAME@CHECKOUT, comma-separated (as given)
    preset: str
    budget_epochs: int | None  # None: the preset's
    seed: int
    dataset: str
    storage: str               # where the measurement is recorded
    verbose: bool = False
    argv: tuple[str, ...] = ()  # the command line, as recorded
    rounds: int = 1            # every searcher this many times, interleaved, trials pooled
    artifacts: bool = False    # each search keeps its best checkpoints in a folder store too

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "OverheadSettings":
        return cls(searchers=args.searchers, preset=args.preset,
                   budget_epochs=args.budget_epochs, seed=args.seed, dataset=args.dataset,
                   storage=args.storage, verbose=bool(args.verbose), argv=tuple(args.argv),
                   rounds=args.rounds, artifacts=bool(args.artifacts))


def run_overhead(settings: OverheadSettings) -> int:
    from bench.core import schema, store
    from bench.core.errors import RunError, UserError
    from bench.core.measurement import command_line, record_measurement
    from bench.run.presets import get_preset
    from searchers.registry import get_searcher

    runs = [_parse_entry(e) for e in settings.searchers.split(",") if e.strip()]
    if not runs:
        raise UserError("--searchers: give at least one searcher name")
    labels = [label for label, _, _ in runs]
    if len(set(labels)) != len(labels):
        raise UserError(f"--searchers: each searcher once, please (got {settings.searchers!r})")
    for _, name, checkout in runs:
        if checkout is None:
            get_searcher(name)  # another checkout's names are checked by its own run
    get_preset(settings.preset)
    if settings.budget_epochs is not None and settings.budget_epochs <= 0:
        raise UserError(f"--budget-epochs must be > 0 (got {settings.budget_epochs})")
    if settings.rounds < 1:
        raise UserError(f"--rounds must be >= 1 (got {settings.rounds})")
    main_storage = store.open_storage(settings.storage)  # a bad --storage fails before any run

    measured: dict[str, list[tuple[dict[str, Any], dict[str, dict[str, Any]], float]]] = {
        label: [] for label in labels}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for rnd, i, (label, name, checkout) in ((rnd, i, run) for rnd in range(settings.rounds)
                                                for i, run in enumerate(runs)):
            folder = Path(tmp) / f"{rnd}-{i}"
            folder.mkdir()
            url = f"sqlite:///{folder / 'store.db'}"
            spec = {"searcher": name, "seed": settings.seed, "preset": settings.preset,
                    "budget_epochs": settings.budget_epochs, "dataset": settings.dataset,
                    "storage": url, "logdir": str(folder / "runs"), "study": "overhead",
                    "verbose": settings.verbose}
            if settings.artifacts:  # a FileSystemArtifactStore folder of its own
                (folder / "artifacts").mkdir()
                spec["artifacts"] = str(folder / "artifacts")
            (folder / "spec.json").write_text(json.dumps(spec))
            out = folder / "profile.json"
            code = checkout or CHECKOUT
            print(f"== {label}: a {settings.preset} search in its own process"
                  f"{f' (code: {code})' if checkout else ''}"
                  f"{f', round {rnd + 1} of {settings.rounds}' if settings.rounds > 1 else ''} ==",
                  flush=True)
            started = time.monotonic()
            rc = subprocess.run(_child_command(folder / "spec.json", out),
                                env=_child_env(code)).returncode
            if rc == 130:
                raise KeyboardInterrupt
            if rc != 0 or not out.exists():
                raise RunError(f"the {label} search failed (exit {rc}); see its output above")
            measured[label].append((json.loads(out.read_text()), _store_trials(url),
                                    time.monotonic() - started))
    results = []
    for label, _, checkout in runs:
        result = summarize(label, *pooled(measured[label]))
        if settings.rounds > 1:
            result["round_medians_s"] = [median_overhead(trials) for _, trials, _ in measured[label]]
        result["process_seconds"] = round(sum(sec for _, _, sec in measured[label]), 1)
        result["code"] = str(checkout or CHECKOUT)
        results.append(result)

    print()
    print(f"per-trial overhead, preset {settings.preset}, dataset {settings.dataset}, "
          f"seed {settings.seed} (components: innermost-running time while the trial's wall "
          "clock runs outside its epochs)")
    print(format_table(results))
    lines = verdicts(results, settings.preset)
    for text, _ in lines:
        print("verdict: " + text)
    for r in results:
        if r["missing_hooks"]:
            log.warning("note: %s: not timed: %s", r["searcher"], ", ".join(r["missing_hooks"]))

    study_name = _study_name(settings.dataset, settings.preset) + ("-artifacts" if settings.artifacts else "")
    record_measurement(main_storage, study_name, schema.KIND_OVERHEAD, {
        "dataset": settings.dataset, "preset": settings.preset,
        "budget_epochs": settings.budget_epochs or get_preset(settings.preset).budget_epochs,
        "seed": settings.seed, "searchers": labels, "results": results,
        "rounds": settings.rounds, "artifacts": settings.artifacts,
        "target_ratio": TARGET_RATIO,
        "target_standard_s": TARGET_STANDARD_S if settings.preset == "standard" else None,
        "verdicts": [{"text": t, "met": ok} for t, ok in lines],
        "met": all(ok for _, ok in lines) if lines else None,
    }, command=command_line(settings.argv))
    print(f"recorded in {store.display_url(settings.storage)} (study {study_name!r})")
    return 0
