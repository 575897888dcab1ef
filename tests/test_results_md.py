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
