"""TensorBoard HParams logging shared by every searcher.

KerasTuner's own TensorBoard hook writes no experiment-level config, so TensorBoard
infers each hyperparameter's domain from the values it happens to see. This logger
writes the *declared* domains once, from the one search space
(:func:`models.space.space_hyperparameters`), and one session run per trial, so
``tensorboard --logdir runs/<study>`` shows the HPARAMS table, parallel coordinates
and scatter matrix identically for every searcher.

Layout of ``<logdir>`` (TensorBoard's own summary protobufs and record writer, no
TensorFlow: the same files on every Keras backend, and a JAX or PyTorch run never
imports TensorFlow for its logs)::

    <logdir>/                          experiment config (hparams_config), once
    <logdir>/trial_<id>/               session start (hparams), per-epoch scalars under
                                       the Keras log names (loss, val_loss, ...) at
                                       step = absolute epoch, final values as
                                       ``final/<metric>`` scalars, text ``status``,
                                       session end
    <logdir>/trial_<id>/attempt_<k>/   same, for the k-th start (k >= 2) of that trial

Why these choices (verified against tensorboard 2.21):

* The hparams plugin reads a session's metric as the *last* value of the metric's
  scalar tag in the session run. The objective of a trial is not necessarily its last
  epoch's value (KerasTuner keeps the best epoch), so the HParams table's metrics are
  separate ``final/<name>`` tags written by :meth:`HParamsLogger.end_trial`; the
  per-epoch curves keep their Keras names.
* TensorBoard keeps only the *first* summary metadata per (run, tag), and the session
  start/end records are carried in that metadata: a second session start or end in the
  same run is ignored. So every restart of a trial gets its own run
  (``attempt_<k>``), and an attempt left without an end (a crash) is closed as
  ``INTERRUPTED`` (TensorBoard status FAILURE) when the trial starts again.
* TensorBoard's status enum has no "pruned": PRUNED/STOPPED map to STATUS_UNKNOWN, so
  the legacy HParams dashboard's status filter can still separate them from COMPLETE
  (STATUS_SUCCESS) and FAIL (STATUS_FAILURE); the exact status string is kept as the
  text summary ``status`` and returned by :func:`read_hparams`.
* Trial values of numeric hyperparameters are snapped onto the declared grid
  (0.30000000000000004 -> 0.3): the dashboard's discrete filters compare exactly.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras_tuner
import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata

# summary_v2 is what hparams.api re-exports, without the api's TensorFlow import
from tensorboard.plugins.hparams import summary_v2 as hp_api
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.plugins.text.summary_v2 import text_pb
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from searchers.seam import MAX_DISCRETE, tensorboard_domain

__all__ = ["HParamsLogger", "read_hparams", "FINAL_PREFIX", "EPOCHS_TRAINED", "MAX_DISCRETE"]

FINAL_PREFIX = "final/"
EPOCHS_TRAINED = "epochs_trained"
STATUS_TAG = "status"

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_ATTEMPT = re.compile(r"^attempt_(\d+)$")

# Optuna and KerasTuner status names -> TensorBoard's (UNKNOWN, SUCCESS, FAILURE, RUNNING).
_TB_STATUS: dict[str, int] = {
    "COMPLETE": api_pb2.STATUS_SUCCESS,
    "COMPLETED": api_pb2.STATUS_SUCCESS,
    "PRUNED": api_pb2.STATUS_UNKNOWN,
    "STOPPED": api_pb2.STATUS_UNKNOWN,
    "FAIL": api_pb2.STATUS_FAILURE,
    "FAILED": api_pb2.STATUS_FAILURE,
    "INVALID": api_pb2.STATUS_FAILURE,
    "INTERRUPTED": api_pb2.STATUS_FAILURE,
    "RUNNING": api_pb2.STATUS_RUNNING,
}


# --------------------------------------------------------------------------- domains
# The declared domains come from the one KerasTuner <-> Optuna mapping (searchers.seam):
# TensorBoard's discrete grids are the grids the searchers decide in.
def _metric_dataset(name: str) -> int | None:
    if name == EPOCHS_TRAINED:
        return None
    return hp_api.Metric.VALIDATION if name.startswith("val_") else hp_api.Metric.TRAINING


def _as_float(v: Any) -> float | None:
    """A loggable float, or None for values a scalar cannot hold (None, str, arrays)."""
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- writing
_FILE_SEQUENCE = itertools.count()


class EventWriter:
    """One TensorBoard events file: TensorBoard's record format, written without TensorFlow.

    Named and framed as ``tf.summary``'s writer does (``events.out.tfevents.<time>.<host>.
    <pid>.<n>.v2``, a ``brain.Event:2`` header, CRC-checked records), so TensorBoard and
    its event readers take it as theirs. Not thread-safe: :class:`HParamsLogger` locks.
    """

    def __init__(self, logdir: str | os.PathLike) -> None:
        path = Path(logdir)
        path.mkdir(parents=True, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_FILE_SEQUENCE):06d}.v2")
        self.path = path / name
        self._file = open(self.path, "ab")
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def summary(self, summary: Any, step: int) -> None:
        """Append one ``Summary`` protobuf at ``step``."""
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.summary(scalar_pb(tag, np.float32(value)), step)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


def _session_end_pb(status: int, end_time_secs: float) -> Any:
    """The hparams plugin's session-end summary (``hparams.summary.session_end_pb``, whose
    module imports TensorFlow)."""
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time_secs))
    summary = summary_pb2.Summary()
    summary.value.add(tag=hp_metadata.SESSION_END_INFO_TAG,
                      metadata=hp_metadata.create_summary_metadata(data),
                      tensor=hp_metadata.NULL_TENSOR)
    return summary


# --------------------------------------------------------------------------- reading
def _hparams_content(run_dir: Path) -> dict[str, bytes]:
    """hparams-plugin records of one run directory (not its subdirectories), as TB reads them."""
    acc = pea.EventAccumulator(str(run_dir), size_guidance=pea.STORE_EVERYTHING_SIZE_GUIDANCE)
    acc.Reload()
    try:
        return acc.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    except KeyError:  # events, but none of this plugin's (e.g. a crash before session start)
        return {}


def _has_events(path: Path) -> bool:
    return path.is_dir() and any(p.name.startswith("events.out.tfevents") for p in path.iterdir())


def _experiment_key(exp: api_pb2.Experiment) -> tuple:
    """What makes two configs conflict: hp names/types/domains and metric tags."""
    hps = tuple(
        sorted((i.name, i.type, i.WhichOneof("domain") or "", str(i.domain_discrete), str(i.domain_interval))
               for i in exp.hparam_infos)
    )
    mets = tuple(sorted((m.name.group, m.name.tag) for m in exp.metric_infos))
    return hps, mets


# --------------------------------------------------------------------------- logger
@dataclass
class _Attempt:
    run: str
    writer: EventWriter
    epochs: set[int] = field(default_factory=set)
    last_epoch: int | None = None


class HParamsLogger:
    """Writes one study's HParams experiment to ``logdir`` for TensorBoard.

    Create one per study (or per worker process; the config is written only by the first).
    Call :meth:`start_trial`, :meth:`log_epoch` per epoch and :meth:`end_trial` for each
    trial; steps are absolute epoch numbers given by the caller (a Hyperband
    continuation starts past 0).
    """

    def __init__(
        self,
        logdir: str | os.PathLike,
        space: keras_tuner.HyperParameters,
        *,
        objective: str = "val_loss",
        metrics: Sequence[str] = ("loss", "accuracy", "val_loss", "val_accuracy"),
        objectives: Sequence[str] = (),
    ) -> None:
        """``objectives``: a multi-objective run's objectives (the first is ``objective``
        when given): each is an HParams metric marked "(objective)", in that order first."""
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        if objectives:
            objective = objectives[0]
        self.objective = objective
        self.objectives: list[str] = list(objectives) or [objective]
        self._lock = threading.Lock()
        self._open: dict[str, _Attempt] = {}
        self._domains: dict[str, hp_api.Domain | None] = {}
        hparams: list[hp_api.HParam] = []
        for hp in space.space:
            dom = tensorboard_domain(hp)
            self._domains[hp.name] = dom
            hparams.append(hp_api.HParam(hp.name, dom, description=repr(hp)))
        names: list[str] = self.objectives + [m for m in metrics if m not in self.objectives]
        self.metric_names: list[str] = [m for m in names if m != EPOCHS_TRAINED] + [EPOCHS_TRAINED]
        tb_metrics = []
        for m in self.metric_names:
            if m in self.objectives:
                display, desc = f"{m} (objective)", "objective value reported at the end of the trial"
            elif m == EPOCHS_TRAINED:
                display, desc = "epochs trained", "epochs this trial actually trained"
            else:
                display, desc = m, "value reported at the end of the trial"
            tb_metrics.append(
                hp_api.Metric(FINAL_PREFIX + m, display_name=display, description=desc,
                              dataset_type=_metric_dataset(m))
            )
        self._write_config_once(hparams, tb_metrics)

    # ------------------------------------------------------------------ config
    def _write_config_once(self, hparams: list[hp_api.HParam], metrics: list[hp_api.Metric]) -> None:
        """Write the experiment config unless the logdir has one (resume, other worker).

        TensorBoard uses the first config it finds, so a second one could only conflict.
        """
        pb = hp_api.hparams_config_pb(hparams=hparams, metrics=metrics)
        new = hp_metadata.parse_experiment_plugin_data(pb.value[0].metadata.plugin_data.content)
        if _has_events(self.logdir):
            content = _hparams_content(self.logdir)
            if hp_metadata.EXPERIMENT_TAG in content:
                old = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
                if _experiment_key(old) != _experiment_key(new):
                    warnings.warn(
                        f"{self.logdir} already holds a different HParams config; TensorBoard "
                        "shows the first one. Use a fresh logdir for a different space.",
                        stacklevel=3,
                    )
                return
        writer = EventWriter(self.logdir)
        writer.summary(pb, step=0)
        writer.close()

    # ------------------------------------------------------------------ trials
    def _trial_dir(self, trial_id: str) -> Path:
        if not isinstance(trial_id, str) or not _SAFE_ID.match(trial_id) or trial_id in (".", ".."):
            raise ValueError(f"trial_id {trial_id!r} is not usable as a directory name")
        return self.logdir / f"trial_{trial_id}"

    def _attempt_dirs(self, trial_id: str) -> list[tuple[int, Path]]:
        """Existing attempts of a trial on disk, oldest first."""
        base = self._trial_dir(trial_id)
        out: list[tuple[int, Path]] = []
        if _has_events(base):
            out.append((1, base))
        if base.is_dir():
            for p in base.iterdir():
                m = _ATTEMPT.match(p.name)
                if m and _has_events(p):
                    out.append((int(m.group(1)), p))
        return sorted(out)

    def _normalize(self, name: str, value: Any) -> bool | int | float | str:
        """A value TensorBoard can store, snapped onto the declared grid when numeric."""
        if isinstance(value, np.generic):
            value = value.item()
        dom = self._domains.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(dom, hp_api.Discrete) and dom.dtype in (int, float) and dom.values:
                nearest = min(dom.values, key=lambda d: abs(d - value))
                if math.isclose(nearest, value, rel_tol=1e-9, abs_tol=1e-12):
                    return nearest
            if isinstance(dom, hp_api.IntInterval) and float(value).is_integer():
                return int(value)
            return value
        if isinstance(value, (bool, str)):
            return value
        return str(value)

    def start_trial(self, trial_id: str, values: Mapping[str, object]) -> None:
        """Open the trial's run and record its hyperparameter values (session start).

        Keys not in the space (Hyperband's ``tuner/epochs`` ...) are ignored. A trial
        started again gets a new ``attempt_<k>`` run; an earlier attempt that never
        ended is closed as INTERRUPTED first.
        """
        trial_id = str(trial_id)
        with self._lock:
            stale = self._open.pop(trial_id, None)
            if stale is not None:
                self._finish(stale, "INTERRUPTED", {})
            attempts = self._attempt_dirs(trial_id)
            if attempts:
                _, last = attempts[-1]
                content = _hparams_content(last)
                if (hp_metadata.SESSION_START_INFO_TAG in content
                        and hp_metadata.SESSION_END_INFO_TAG not in content):
                    w = EventWriter(last)
                    self._finish(_Attempt(run=str(last), writer=w), "INTERRUPTED", {})
            k = attempts[-1][0] + 1 if attempts else 1
            path = self._trial_dir(trial_id) if k == 1 else self._trial_dir(trial_id) / f"attempt_{k}"
            group = trial_id if k == 1 else f"{trial_id}/attempt_{k}"
            hparams = {n: self._normalize(n, v) for n, v in values.items()
                       if n in self._domains and v is not None}  # None: inactive conditional hp
            writer = EventWriter(path)
            writer.summary(hp_api.hparams_pb(hparams, trial_id=group, start_time_secs=time.time()),
                           step=0)
            writer.flush()
            self._open[trial_id] = _Attempt(run=str(path), writer=writer)

    def _attempt(self, trial_id: str) -> _Attempt:
        try:
            return self._open[str(trial_id)]
        except KeyError:
            raise RuntimeError(f"trial {trial_id!r} was not started (call start_trial first)") from None

    def log_epoch(self, trial_id: str, epoch: int, logs: Mapping[str, float]) -> None:
        """Per-epoch scalars under their Keras names at step = absolute epoch; NaN/inf kept."""
        with self._lock:
            att = self._attempt(trial_id)
            step = int(epoch)
            for tag, v in logs.items():
                f = _as_float(v)
                if f is not None:
                    att.writer.scalar(str(tag), f, step)
            att.epochs.add(step)
            att.last_epoch = step if att.last_epoch is None else max(att.last_epoch, step)
            att.writer.flush()

    def end_trial(self, trial_id: str, status: str, metrics: Mapping[str, float]) -> None:
        """Final values for the HParams table, status and session end; closes the run.

        ``epochs_trained`` defaults to the number of distinct epochs logged in this attempt.
        """
        with self._lock:
            att = self._attempt(trial_id)
            del self._open[str(trial_id)]
            self._finish(att, status, metrics)

    @staticmethod
    def _finish(att: _Attempt, status: str, metrics: Mapping[str, float]) -> None:
        status = str(status).upper()
        step = att.last_epoch if att.last_epoch is not None else 0
        finals = dict(metrics)
        if EPOCHS_TRAINED not in finals and (att.epochs or status != "INTERRUPTED"):
            finals[EPOCHS_TRAINED] = len(att.epochs)
        for name, v in finals.items():
            f = _as_float(v)
            if f is not None:
                att.writer.scalar(FINAL_PREFIX + str(name), f, step)
        att.writer.summary(text_pb(STATUS_TAG, status), step)
        att.writer.summary(_session_end_pb(_TB_STATUS.get(status, api_pb2.STATUS_UNKNOWN),
                                           time.time()), step)
        att.writer.close()

    def close(self) -> None:
        """Flush and close runs still open; they stay without session end (seen as interrupted)."""
        with self._lock:
            for att in self._open.values():
                att.writer.close()
            self._open.clear()


# --------------------------------------------------------------------------- read back
def _py(value: Any) -> Any:
    """google.protobuf.Value -> Python scalar."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_value":
        return value.string_value
    return None


def _f32(v: Any) -> float:
    """A stored float32 scalar as the shortest decimal that round-trips (0.3, not 0.30000001)."""
    return float(str(np.float32(np.asarray(v).reshape(-1)[0])))


def _intish(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, float) and v.is_integer() for v in values)


def _describe(info: api_pb2.HParamInfo) -> dict[str, Any]:
    dtype = api_pb2.DataType.Name(info.type).replace("DATA_TYPE_", "").lower()
    if info.HasField("domain_discrete"):
        values = [_py(v) for v in info.domain_discrete.values]
        if _intish(values):
            values = [int(v) for v in values]
        return {"type": "discrete", "dtype": dtype, "values": values}
    if info.HasField("domain_interval"):
        return {"type": "interval", "dtype": dtype,
                "min": info.domain_interval.min_value, "max": info.domain_interval.max_value}
    return {"type": "unset", "dtype": dtype}


def _run_trial(run: str) -> tuple[str, int] | None:
    """('<id>', attempt) for runs named trial_<id> or trial_<id>/attempt_<k>."""
    parts = Path(run).parts
    if not parts or not parts[0].startswith("trial_"):
        return None
    tid = parts[0][len("trial_"):]
    if len(parts) == 1:
        return tid, 1
    m = _ATTEMPT.match(parts[1]) if len(parts) == 2 else None
    return (tid, int(m.group(1))) if m else None


def read_hparams(logdir: str | os.PathLike) -> dict[str, Any]:
    """Read an experiment back the way TensorBoard does (its event multiplexer).

    The benchmark never reads its logs back: this is how the tests (test_tblog.py,
    test_logging_e2e.py) check that TensorBoard sees what was written.

    Returns ``{"config": {hp: domain, "metrics": [names], "metric_infos": [...]},
    "trials": {id: {"hparams", "metrics", "status", "tb_status", "scalars", "run",
    "attempts"}}}``; a trial started several times is reported by its latest attempt.
    Per-epoch scalars are ``{tag: [(step, value), ...]}`` sorted by step (last write wins).
    """
    mux = pem.EventMultiplexer(size_guidance=pea.STORE_EVERYTHING_SIZE_GUIDANCE)
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    hp_content = mux.PluginRunToTagToContent(hp_metadata.PLUGIN_NAME)
    scalar_tags = mux.PluginRunToTagToContent(scalar_metadata.PLUGIN_NAME)
    text_tags = mux.PluginRunToTagToContent(text_metadata.PLUGIN_NAME)

    config: dict[str, Any] = {"metrics": [], "metric_infos": []}
    domains: dict[str, dict[str, Any]] = {}
    for run in sorted(hp_content):
        tags = hp_content[run]
        if hp_metadata.EXPERIMENT_TAG in tags:
            exp = hp_metadata.parse_experiment_plugin_data(tags[hp_metadata.EXPERIMENT_TAG])
            for info in exp.hparam_infos:
                domains[info.name] = _describe(info)
            for m in exp.metric_infos:
                name = m.name.tag[len(FINAL_PREFIX):] if m.name.tag.startswith(FINAL_PREFIX) else m.name.tag
                config["metrics"].append(name)
                config["metric_infos"].append({
                    "name": name, "tag": m.name.tag, "group": m.name.group,
                    "display_name": m.display_name,
                    "dataset_type": api_pb2.DatasetType.Name(m.dataset_type),
                })
            break
    config.update(domains)

    latest: dict[str, tuple[int, str]] = {}
    counts: dict[str, int] = {}
    for run, tags in hp_content.items():
        key = _run_trial(run)
        if key is None or hp_metadata.SESSION_START_INFO_TAG not in tags:
            continue
        tid, k = key
        counts[tid] = counts.get(tid, 0) + 1
        if tid not in latest or k > latest[tid][0]:
            latest[tid] = (k, run)

    def values(run: str, tag: str) -> list[tuple[int, Any]]:
        by_step: dict[int, Any] = {}
        for ev in mux.Tensors(run, tag):
            by_step[int(ev.step)] = tensor_util.make_ndarray(ev.tensor_proto)
        return sorted(by_step.items())

    trials: dict[str, Any] = {}
    for tid, (_k, run) in sorted(latest.items()):
        tags = hp_content[run]
        start = hp_metadata.parse_session_start_info_plugin_data(tags[hp_metadata.SESSION_START_INFO_TAG])
        hparams = {}
        for name, v in start.hparams.items():
            py = _py(v)
            dom = domains.get(name, {})
            if isinstance(py, float) and py.is_integer() and dom.get("type") == "discrete" \
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in dom.get("values", [])):
                py = int(py)
            hparams[name] = py
        tb_status = "STATUS_UNKNOWN"
        if hp_metadata.SESSION_END_INFO_TAG in tags:
            end = hp_metadata.parse_session_end_info_plugin_data(tags[hp_metadata.SESSION_END_INFO_TAG])
            tb_status = api_pb2.Status.Name(end.status)
        status = "RUNNING"
        if STATUS_TAG in text_tags.get(run, {}):
            texts = values(run, STATUS_TAG)
            if texts:
                raw = np.asarray(texts[-1][1]).reshape(-1)[0]
                status = raw.decode() if isinstance(raw, bytes) else str(raw)
        finals: dict[str, float] = {}
        scalars: dict[str, list[tuple[int, float]]] = {}
        for tag in sorted(scalar_tags.get(run, {})):
            series = [(s, _f32(v)) for s, v in values(run, tag)]
            if tag.startswith(FINAL_PREFIX):
                if series:
                    finals[tag[len(FINAL_PREFIX):]] = series[-1][1]
            else:
                scalars[tag] = series
        trials[tid] = {"hparams": hparams, "metrics": finals, "status": status,
                       "tb_status": tb_status, "scalars": scalars, "run": run,
                       "attempts": counts[tid]}
    return {"config": config, "trials": trials}
