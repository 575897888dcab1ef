"""Shared test fixtures: every test works in its own folder with its own SQLite store."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from bench.run.runner import RunConfig


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a fresh folder: runs/ and studies.db land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def storage_url(workdir) -> str:
    return f"sqlite:///{workdir / 'studies.db'}"


@pytest.fixture
def quick_config(storage_url, workdir):
    """A tiny run: 48x16 toon images, 2-epoch trials, a few trials."""
    def make(searcher: str, **overrides) -> RunConfig:
        base = dict(searcher=searcher, preset="quick", storage=storage_url,
                    logdir=str(workdir / "runs"), budget_epochs=6)
        base.update(overrides)
        return RunConfig(**base)
    return make


def require_server(kind: str, url: str) -> None:
    """Skip when a database server is missing, but fail under CI or .ci/run (a skip would
    hide a broken setup)."""
    import sqlalchemy
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        engine.connect().close()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true" or os.environ.get("BENCH_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{kind} at {url} is required here (CI=true or BENCH_REQUIRE_SERVERS=1): {exc}")
        pytest.skip(f"{kind} not reachable at {url}: {exc}")
