"""RESULTS.md's warm-start section: ``bench replay --warm-start-random N`` records, per seed,
a cold run and a run warm-started from N random configurations (the same budget for the
new trials). The user keeps the history either way, so the tested figure is the best
val_loss of history and new trials together; the new trials' own best is shown beside it."""
from __future__ import annotations

import statistics
from typing import Any

from bench.core import schema
from bench.report import render
from bench.report.stats import pairwise


def render_warm_start(records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One table and one plain verdict per record and searcher."""
    lines: list[str] = []
    for name, b in records:
        n = b.get("history")
        lines += [f"### Warm start from {n} random trials (replay, preset `{b.get('preset')}`, "
                  f"study `{name}`)", "",
                  f"Each seed: a history of {n} uniformly drawn configurations trained a full trial "
                  f"each on the surrogate, then the searcher with the same budget of "
                  f"{b.get('budget_epochs')} epochs for its new trials, once cold and once "
                  "warm-started from that history (`OptunaSearch(warm_start=...)`). Tested: the "
                  "best val_loss the user ends with (history included), warm against cold on the "
                  "same seeds (Wilcoxon signed-rank, one-sided both ways, Holm).", ""]
        rows = [r for r in b.get("rows") or [] if isinstance(r, dict)]
        header = ["searcher", "seeds", "history alone", "cold: new trials", "warm: new trials",
                  "cold, with history", "warm, with history", "verdict"]
        table = []
        for searcher in sorted({str(r.get("searcher")) for r in rows}):
            both = [r for r in rows if r.get("searcher") == searcher
                    and all(isinstance(r.get(k), (int, float))
                            for k in ("cold_best", "warm_best", "history_best"))]
            if not both:
                continue
            cold = {r["seed"]: min(r["cold_best"], r["history_best"]) for r in both}
            warm = {r["seed"]: min(r["warm_best"], r["history_best"]) for r in both}
            (verdict,) = pairwise({"warm": warm, "cold": cold}, ["warm"], ["cold"], paired=True,
                                  label="the full budget")

            table.append([f"`{searcher}`", len(both), _median(both, "history_best"),
                          _median(both, "cold_best"), _median(both, "warm_best"),
                          render.number(statistics.median(cold.values()), 4),
                          render.number(statistics.median(warm.values()), 4), _plain(verdict)])
        lines += render.table(header, table) if table else ["No complete seeds recorded.", ""]
        spearman = (b.get("surrogate") or {}).get("spearman_best")
        if isinstance(spearman, (int, float)) and spearman < schema.SURROGATE_MIN_SPEARMAN:
            lines += [f"- the surrogate's held-out Spearman is {spearman:.2f} "
                      f"(< {schema.SURROGATE_MIN_SPEARMAN}): this replay ranks configurations "
                      "loosely, so read its verdict as weak evidence either way"]
        lines += [f"- median best val_loss over {len(rows) // max(len(table), 1)} seeds per searcher; "
                  f"surrogate {render.json_text((b.get('surrogate') or {}).get('model'))}, "
                  f"held-out Spearman {render.number((b.get('surrogate') or {}).get('spearman_best'), 3)}",
                  f"- machine: {render.json_text(b.get('machine'))}", "",
                  "```", render.machine_free(str(b.get("command", "(not recorded)"))), "```", ""]
    return lines


def _median(rows: list[dict[str, Any]], key: str) -> str:
    return render.number(statistics.median(r[key] for r in rows), 4)


def _plain(verdict: Any) -> str:
    """The verdict in words a user acts on."""
    if verdict.winner == "warm":
        return f"warm start helps (p = {verdict.p_adjusted[0]:.2g})"
    if verdict.winner == "cold":
        return f"warm start hurts (p = {verdict.p_adjusted[1]:.2g})"
    return (f"warm start does not help measurably: no significant difference "
            f"(p = {min(verdict.p_adjusted):.2g})")


def records(extra: dict[str, list[tuple[str, dict[str, Any]]]]) -> list[tuple[str, dict[str, Any]]]:
    """The warm-start records of one data set's studies."""
    return sorted(extra.get(schema.KIND_WARM_START, []))
