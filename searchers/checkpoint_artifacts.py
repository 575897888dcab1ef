"""Best-k checkpoints in Optuna's artifact store, so that any machine of a study loads them.

Each process of a shared study keeps its trials' weights in its own project folder; a
machine that did not train the study's best trial has nothing to load. With an Optuna
``ArtifactStore`` (``FileSystemArtifactStore`` on a folder every machine mounts,
``Boto3ArtifactStore`` for S3-compatible object stores) the weights of the trials that
best-k retention keeps are uploaded too, and ``get_best_models`` fetches what is not local.

The links:

* ``checkpoint_artifacts``, a user attr of the trial, written in the commit that tells its
  result: ``{file name: artifact id}``. Optuna refuses writes to a finished trial, so the
  ids are chosen before the tell and the files written after it (the next trial does not
  wait for a slow store before its result is safe).
* optuna-dashboard's per-trial artifact key, a study system attr (see
  ``seam.dashboard_trial_artifact_key``): the dashboard lists the files on the trial's
  page; set to ``null`` when the trial leaves the best k and its files are removed.

An upload that fails (the store went away) leaves the trial's result in the study; it is
retried at the next trial end and reported once.
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound

from searchers import ranking, seam

CHECKPOINT_ATTR = "checkpoint_artifacts"
log = logging.getLogger(__name__)


class CheckpointNotFound(FileNotFoundError):
    """A best trial's weights are neither in this project nor in the artifact store."""


def check_store(store: Any) -> None:
    """Write and remove a tiny probe object: a store that cannot take the checkpoints is
    refused before any trial trains, with one line that says why (ValueError)."""
    for method in ("write", "open_reader", "remove"):
        if not callable(getattr(store, method, None)):
            raise ValueError(f"artifact_store must be an Optuna ArtifactStore (write, open_reader, "
                             f"remove); got {type(store).__name__}")
    probe = f"probe-{uuid.uuid4()}"
    try:
        store.write(probe, io.BytesIO(b"probe"))
        store.remove(probe)
    except Exception as exc:  # noqa: BLE001  # any store, any failure: said in one line
        raise ValueError(f"artifact store {describe(store)} cannot take checkpoints: "
                         f"{_reason(exc)}") from None


def describe(store: Any) -> str:
    """Where a store keeps its files, for messages."""
    described = getattr(store, "description", None)
    if isinstance(described, str):
        return described
    base = seam.artifact_folder(store)  # FileSystemArtifactStore
    if base is not None:
        return f"folder {base}"
    bucket = getattr(store, "bucket", None)    # Boto3ArtifactStore
    if bucket is not None:
        return f"s3://{bucket}"
    return type(store).__name__


def checkpoint_files(fname: str) -> list[str]:
    """The file(s) of one KerasTuner checkpoint: ``fname`` itself (Keras 3's
    ``.weights.h5``) or the TF-format ``fname.index`` / ``fname.data-*`` of Keras 2."""
    return [p for p in seam.kt_io().glob(fname + "*")
            if p == fname or p.startswith(fname + ".")]


def checkpoint_paths(fname: str) -> list[str]:
    """What a trial's checkpoint ``fname`` needs to be loaded elsewhere: its file(s) and
    KerasTuner's ``build_config.json`` beside them (empty when it was not written)."""
    files = checkpoint_files(fname)
    config = os.path.join(os.path.dirname(fname), "build_config.json")
    return files + [config] if files and seam.kt_io().exists(config) else files


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class _Upload:
    storage_trial_id: int
    number: int
    files: dict[str, tuple[str, str]]  # file name -> (artifact id, local path)
    written: set[str] = field(default_factory=set)


class CheckpointArtifacts:
    """The checkpoints of one study's best k trials in one artifact store."""

    def __init__(self, store: Any, study: optuna.Study) -> None:
        self.store, self.study = store, study
        self._storage = seam.storage_of(study)
        self._study_id = seam.study_id(study)
        self._pending: list[_Upload] = []
        self._reported: set[int] = set()   # trial numbers whose failed upload was said

    # ---- a trial ends -------------------------------------------------------------
    @staticmethod
    def plan(paths: list[str]) -> dict[str, str]:
        """Artifact ids for a trial's files (the ``CHECKPOINT_ATTR`` value), chosen before
        the trial's result is told."""
        return {os.path.basename(p): str(uuid.uuid4()) for p in paths}

    def trial_ended(self, storage_trial_id: int | None, planned: dict[str, str] | None,
                    paths: list[str], keep: int | None) -> None:
        """After a trial's result is told: upload its files (``planned`` ids, if it was told
        COMPLETE), retry earlier failed uploads, then, with ``keep``, remove the files of the
        trials outside the study's best ``keep``."""
        frozen = (self._storage.get_trial(storage_trial_id)
                  if planned and storage_trial_id is not None else None)
        if planned and frozen is not None and frozen.state == optuna.trial.TrialState.COMPLETE:
            by_name = {os.path.basename(p): p for p in paths}
            self._pending.append(_Upload(storage_trial_id, frozen.number,  # type: ignore[arg-type]
                                         {n: (planned[n], by_name[n]) for n in planned if n in by_name}))
        self.flush()
        if keep is not None:
            self.keep_only(ranking.best_first(self.study)[:keep])

    def flush(self) -> None:
        """Write the queued uploads; one that fails stays queued for the next call and is
        reported once (its trial's result is in the study already)."""
        still: list[_Upload] = []
        for up in self._pending:
            if not all(os.path.exists(path) for _id, path in up.files.values()):
                continue  # its local file left with the best k meanwhile: nothing to keep
            try:
                self._write(up)
            except Exception as exc:  # noqa: BLE001  # the store went away: try again later
                still.append(up)
                if up.number not in self._reported:
                    self._reported.add(up.number)
                    log.warning("warning: the checkpoint of trial #%d could not be uploaded to %s "
                                "(%s); retrying after the next trial", up.number,
                                describe(self.store), _reason(exc))
        self._pending = still

    def _write(self, up: _Upload) -> None:
        for name, (artifact_id, path) in up.files.items():
            if name in up.written:
                continue
            with open(path, "rb") as f:
                self.store.write(artifact_id, f)
            up.written.add(name)
        for name, (artifact_id, _path) in up.files.items():
            mimetype, encoding = mimetypes.guess_type(name)
            meta = {"artifact_id": artifact_id, "filename": name,
                    "mimetype": mimetype or "application/octet-stream", "encoding": encoding}
            self._storage.set_study_system_attr(
                self._study_id, seam.dashboard_trial_artifact_key(up.storage_trial_id, artifact_id),
                json.dumps(meta))
        if up.number in self._reported:
            log.warning("warning: the checkpoint of trial #%d is uploaded now", up.number)

    def keep_only(self, kept: list[optuna.trial.FrozenTrial]) -> None:
        """Remove the files of every uploaded trial not in ``kept`` (the study's best k):
        a trial leaves the best k for good, so nothing removed is needed again."""
        keep = {seam.storage_trial_id(t) for t in kept}
        pending = {up.storage_trial_id for up in self._pending}
        prefix = seam.dashboard_trial_artifact_prefix()
        for key, value in self._storage.get_study_system_attrs(self._study_id).items():
            if not key.startswith(prefix) or value in (None, "null"):
                continue
            trial_part, _, artifact_id = key[len(prefix):].partition(":")
            if not trial_part.isdigit() or int(trial_part) in keep or int(trial_part) in pending:
                continue
            try:
                self.store.remove(artifact_id)
            except ArtifactNotFound:
                pass  # another process removed it first
            except Exception as exc:  # noqa: BLE001  # left for the next trial end
                log.debug("could not remove artifact %s: %s", artifact_id, _reason(exc))
                continue
            self._storage.set_study_system_attr(self._study_id, key, json.dumps(None))

    # ---- loading -------------------------------------------------------------------
    def fetch(self, frozen: optuna.trial.FrozenTrial, dest_dir: str) -> dict[str, str]:
        """Download a trial's checkpoint files into ``dest_dir``: ``{file name: path}``."""
        planned = frozen.user_attrs.get(CHECKPOINT_ATTR)
        where = describe(self.store)
        if not isinstance(planned, dict) or not planned:
            raise CheckpointNotFound(
                f"trial #{frozen.number} (KerasTuner trial {frozen.user_attrs.get('kt_trial_id')}) "
                f"has no checkpoint in the artifact store {where}: the process that trained it "
                "kept its weights only in its own project folder (it ran without an "
                "artifact store, or the trial was never among the best)")
        os.makedirs(dest_dir, exist_ok=True)
        paths: dict[str, str] = {}
        for name, artifact_id in planned.items():
            path = os.path.join(dest_dir, os.path.basename(name))
            if os.path.exists(path + ".part"):
                os.remove(path + ".part")  # an earlier download cut short
            try:
                optuna.artifacts.download_artifact(artifact_store=self.store,
                                                   artifact_id=artifact_id, file_path=path + ".part")
            except ArtifactNotFound:
                raise CheckpointNotFound(
                    f"trial #{frozen.number}: its {name} (artifact {artifact_id}) is not in the "
                    f"artifact store {where}: not uploaded yet (the store was unreachable when "
                    "it ended) or removed when the trial left the best k") from None
            os.replace(path + ".part", path)
            paths[name] = path
        return paths
