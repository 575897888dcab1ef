"""How RESULTS.md writes numbers, tables, links and figures; shared by report.py and pareto.py."""
from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DASH = "—"


def number(x: float | None, digits: int = 4) -> str:
    """``digits`` decimals; a dash for no value, "not reached" for inf."""
    if x is None:
        return DASH
    if math.isinf(x):
        return "not reached"
    return f"{x:.{digits}f}"


def count(x: float | None) -> str:
    """Epoch counts: whole numbers stay whole, a median between two gets one decimal."""
    if x is None or math.isinf(x):
        return number(x)
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def cell(x: Any) -> str:
    """A value as one markdown table cell: pipes escaped, newlines flattened."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table's lines, a blank line after it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def json_text(x: Any) -> str:
    """A value as sorted-key JSON (anything JSON cannot hold as its str)."""
    return json.dumps(x, sort_keys=True, default=str)


def slug(name: str) -> str:
    """``name`` as a file name: runs of other characters become one underscore."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"


def link(path: Path, md_dir: Path) -> str:
    """``path`` relative to the markdown file's folder, with forward slashes."""
    return Path(os.path.relpath(path, md_dir)).as_posix()


def seeds_text(seeds: Sequence[Any], unit: bool = True) -> str:
    """"3 seeds", or "1 seed (8 runs)" when several studies ran the same seed."""
    distinct = len({json_text(seed) for seed in seeds})
    text = f"{distinct} seed{'s' if distinct != 1 else ''}" if unit else str(distinct)
    return text if distinct == len(seeds) else f"{text} ({len(seeds)} runs)"


def seed_list(seeds: Any) -> str:
    """A replay's seeds: "0..99 (100)" for a run of consecutive integers, else the list."""
    if (isinstance(seeds, list) and len(seeds) > 3 and all(isinstance(s, int) for s in seeds)
            and seeds == list(range(seeds[0], seeds[0] + len(seeds)))):
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
    return json_text(seeds)


def figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend switch."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


# While a report renders (``staged``): the plots' bytes by path, written once it is whole.
_STAGED: dict[Path, bytes] | None = None


@contextlib.contextmanager
def staged() -> Iterator[dict[Path, bytes]]:
    """Within: ``save`` keeps each figure in memory instead of writing it; the caller writes
    them (``write_whole``) only once the whole report has rendered."""
    global _STAGED
    previous, _STAGED = _STAGED, {}
    try:
        yield _STAGED
    finally:
        _STAGED = previous


def save(fig: Figure, path: Path) -> None:
    """The figure as a PNG at ``path`` (folders made), without a Software stamp."""
    if _STAGED is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        _STAGED[path] = buffer.getvalue()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


def write_whole(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary file beside it: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_SQLITE_ABS = re.compile(r"sqlite:///(/[^\s'\",]+)")
_ABS_PATH = re.compile(r"(?<=[\s=@,])(/[^\s'\",]+)")
# Files of the project a report knows by their relative path (its own store): an absolute
# path recorded on some machine that ends in one is shown as that (``write_report`` sets it).
project_files: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "project_files", default=())


def machine_free(text: str) -> str:
    """A recorded command line without the recording machine's absolute paths: one that
    ends in a file the report knows (its store) is shown relative, as the report names it;
    any other as ``<dir>/<its last part>`` (a temporary folder, another checkout). The same
    store gives the same text on every machine and in every checkout."""
    known = project_files.get()

    def shown(path: str) -> str:
        for relative in known:
            if path.endswith("/" + relative.lstrip("./")):
                return relative
        return f"<dir>/{Path(path).name}"
    text = _SQLITE_ABS.sub(lambda m: "sqlite:///" + shown(m.group(1)), text)
    return _ABS_PATH.sub(lambda m: shown(m.group(1)), text)
