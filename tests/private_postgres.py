"""A PostgreSQL server of a test's own, to stop and start under a running search.

The shared server on 127.0.0.1:5432 serves every test at once; an outage test needs one
that only it uses. ``initdb`` refuses to run as root: when the tests run as root, the
server runs as the ``postgres`` user (``runuser``), in a folder that user owns.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    def __init__(self) -> None:
        initdb = shutil.which("initdb")
        if initdb is None:
            message = "no initdb on PATH (Debian: postgresql's bin folder)"
            if os.environ.get("CI") == "true" or os.environ.get("BENCH_REQUIRE_SERVERS") == "1":
                pytest.fail(message)
            pytest.skip(message)
        self.bin = Path(os.path.realpath(initdb)).parent
        self.folder = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                  "start")

    def stop(self) -> None:
        """A fast shutdown: every session is ended, as a server restart ends them."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def is_up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.is_up():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        for _ in range(20):
            try:
                shutil.rmtree(self.folder)
                return
            except OSError:
                time.sleep(0.2)
