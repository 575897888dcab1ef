"""RESULTS.md is what ``bench report`` makes of the committed store, byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.results import write_report

REPO = Path(__file__).resolve().parents[1]


def test_committed_store_regenerates_results_md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the command as RESULTS.md states it, from the project's root
    out = write_report("sqlite:///results/studies.db", out=tmp_path / "RESULTS.md",
                       plots_dir=tmp_path / "results")
    assert out.read_text(encoding="utf-8") == (REPO / "RESULTS.md").read_text(encoding="utf-8")
    assert {p.name for p in (tmp_path / "results").glob("*.png")} <= {
        p.name for p in (REPO / "results").glob("*.png")}  # every plot it links is committed


def _table_after(text: str, marker: str) -> list[str]:
    """The markdown table that follows ``marker`` (its first line is the header)."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if marker in ln)
    table = []
    for ln in lines[start:]:
        if ln.startswith("|"):
            table.append(ln)
        elif table:
            break
    return table


def test_readme_quotes_the_answer_table_of_results_md() -> None:
    """README's "Which searcher should I use?" box is RESULTS.md's answer table, as it is."""
    results = (REPO / "RESULTS.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    answer = _table_after(results, "## Answer")
    assert answer and answer[0].startswith("| data set | recommended searcher |")
    box = _table_after(readme, "## Which searcher should I use?")
    assert box == answer, "README's box differs from RESULTS.md's answer: copy the table again"
    assert readme.index("## Which searcher should I use?") < readme.index("## Layout")
