"""``--artifacts DIR|s3://bucket/prefix``: the Optuna artifact store that keeps the best
trials' checkpoints where every machine of a study can fetch them.

A folder is Optuna's ``FileSystemArtifactStore`` (it must exist: every machine mounts the
same one); ``s3://`` is ``Boto3ArtifactStore`` with the usual boto3 settings
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or a profile, ``AWS_ENDPOINT_URL`` for
an S3-compatible server such as MinIO), under an optional key prefix. Either is checked
with a probe write before any trial starts: a mistake is one line, not a failed upload
after the first trial.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from bench.core.errors import UserError

# An unreachable endpoint should fail in seconds, not after botocore's default minute.
_S3_CONNECT_SECONDS, _S3_ATTEMPTS = 5, 2


class PrefixedArtifactStore:
    """An artifact store whose objects live under ``prefix`` in another store (S3 keys
    under ``s3://bucket/prefix/``); ids stay Optuna's (the dashboard's routes need them)."""

    def __init__(self, inner: Any, prefix: str, description: str) -> None:
        self.inner, self.prefix, self.description = inner, prefix.strip("/"), description

    def _key(self, artifact_id: str) -> str:
        return f"{self.prefix}/{artifact_id}" if self.prefix else artifact_id

    def open_reader(self, artifact_id: str) -> IO[bytes]:
        return self.inner.open_reader(self._key(artifact_id))

    def write(self, artifact_id: str, content_body: IO[bytes]) -> None:
        self.inner.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self.inner.remove(self._key(artifact_id))


def open_artifact_store(spec: str) -> Any:
    """The store ``spec`` names, checked (UserError with one line otherwise)."""
    from searchers.checkpoint_artifacts import check_store
    store = _s3(spec) if spec.startswith("s3://") else _folder(spec)
    try:
        check_store(store)
    except ValueError as exc:
        raise UserError(f"--artifacts: {exc}") from None
    return store


def _folder(spec: str) -> Any:
    from optuna.artifacts import FileSystemArtifactStore
    if not spec.strip():
        raise UserError("--artifacts: give a folder or s3://bucket/prefix")
    path = Path(spec).expanduser().absolute()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise UserError(f"--artifacts: {path} {what} (create the folder; every machine of the "
                        "study must see the same one)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"--artifacts: {path} is not writable")
    store = FileSystemArtifactStore(path)
    store.description = f"folder {path}"  # type: ignore[attr-defined]  # for messages
    return store


def _s3(spec: str) -> Any:
    bucket, _, prefix = spec[len("s3://"):].partition("/")
    if not bucket:
        raise UserError(f"--artifacts {spec}: name a bucket, as in s3://bucket/prefix")
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    except ImportError:
        raise UserError("--artifacts s3://...: boto3 is not installed "
                        "(pip install -e '.[s3]', or pip install boto3)") from None
    from optuna.artifacts import Boto3ArtifactStore
    # a session of its own: boto3's default one keeps the credentials it first found
    client = boto3.session.Session().client("s3", config=Config(
        connect_timeout=_S3_CONNECT_SECONDS, retries={"max_attempts": _S3_ATTEMPTS}))
    endpoint = client.meta.endpoint_url
    try:
        client.head_bucket(Bucket=bucket)
    except NoCredentialsError:
        raise UserError(f"--artifacts {spec}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise UserError(f"--artifacts {spec}: bucket {bucket!r} does not exist at {endpoint}") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise UserError(f"--artifacts {spec}: access to bucket {bucket!r} denied at {endpoint} "
                            f"({code}): check the credentials") from None
        raise UserError(f"--artifacts {spec}: {code or exc}") from None
    except BotoCoreError as exc:  # endpoint unreachable, bad URL, ...
        raise UserError(f"--artifacts {spec}: cannot reach S3 at {endpoint}: "
                        f"{str(exc).splitlines()[0]}") from None
    return PrefixedArtifactStore(Boto3ArtifactStore(bucket, client=client), prefix,
                                 description=spec.rstrip("/"))
