"""``python -m bench dashboard``: optuna-dashboard on the study store.

optuna-dashboard has no authentication and exposes write endpoints (rename, delete a
study), so it binds to 127.0.0.1 unless the user asks for another address. It only shows
an existing store: a mistyped path is refused rather than served as a new empty store,
and a write-protected store is served read-only (with a warning: edits in the page fail).
"""
from __future__ import annotations

import errno
import logging
from wsgiref.simple_server import WSGIRequestHandler, make_server

from bench.core.artifact_store import open_artifact_store
from bench.core.errors import UserError
from bench.core.store import display_url, open_storage, write_problem

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # `format`: the stdlib's name
        pass


def serve(storage_url: str, host: str = "127.0.0.1", port: int = 8080,
          artifacts: str | None = None) -> int:
    """Serve until interrupted; a taken port is one clear line, not a traceback.
    ``artifacts``: the runs' artifact store (``--artifacts``), so that each trial's page
    lists and serves its checkpoint files."""
    import optuna_dashboard

    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0..65535 (got {port})")
    storage = open_storage(storage_url, must_exist=True, read_only=True)
    read_only_why = write_problem(storage_url)
    store = open_artifact_store(artifacts) if artifacts else None
    try:
        httpd = make_server(host, port, optuna_dashboard.wsgi(storage, artifact_store=store),
                            handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use; pick another with --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:  # Ctrl-C at any point from here on is the normal way to stop
        print(f"optuna-dashboard for {display_url(storage_url)} on "
              f"http://{shown}:{httpd.server_port}/ (Ctrl-C to stop)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("warning: the dashboard has no login and can delete studies; "
                        "it is reachable from other machines via %s", host)
        if read_only_why:
            log.warning("warning: %s: the dashboard shows it, but renaming, deleting "
                        "or noting in the page will fail", read_only_why)
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
