"""The report's Keras-backends table: ``bench throughput --backend tensorflow,jax,torch``.

One row per backend, measured side by side in one invocation (the same model, data and
batch size), and what the figures change for a user: which backend trains this CNN
fastest on this machine.
"""
from __future__ import annotations

from bench.core import schema
from bench.report import render
from bench.report.runs import DatasetStudies

CLEARLY_FASTER = 1.1  # below this ratio two backends' speeds are called the same


def render_backends(group: DatasetStudies) -> list[str]:
    lines: list[str] = []
    for name, b in group.extra.get(schema.KIND_BACKEND_THROUGHPUT, []):
        rows = b.get("backends")
        if not isinstance(rows, dict) or not rows:
            continue
        size = "x".join(map(str, b.get("image_size") or [])) or render.DASH
        lines += [f"### Keras backends: training speed (study `{name}`)", "",
                  f"The space's default model, {render.json_text(b.get('train_images'))} "
                  f"training images of {size}, batch size {render.json_text(b.get('batch_size'))}, "
                  f"{render.json_text(b.get('epochs'))} epochs per fit (the first left out), "
                  f"rounds: {render.json_text(b.get('repeats'))}, the backends in turn, each "
                  "in its own process:", ""]
        reference = next(iter(rows))
        lines += render.table(
            ("backend", "bare model.fit images/s", "inside a trial images/s",
             "trial / bare", f"trial images/s vs {reference}"),
            [(f"`{k}`", render.number(r.get("bare_images_per_s"), 1),
              render.number(r.get("trial_images_per_s"), 1), render.number(r.get("ratio"), 3),
              f"{render.number(r.get('vs_reference'), 2)}x") for k, r in rows.items()])
        fastest = max(rows, key=lambda k: rows[k].get("trial_images_per_s") or 0.0)
        speedup = rows[fastest].get("vs_reference")
        if fastest == reference:
            slower = ", ".join(
                f"`{k}` {render.number(r.get('vs_reference'), 2)}x its images/s (the same "
                f"training takes {render.number(1 / r['vs_reference'], 1)}x as long)"
                for k, r in rows.items() if k != reference and r.get("vs_reference"))
            verdict = (f"`{reference}` trains this CNN fastest here: keep the default "
                       f"backend" + (f"; {slower}" if slower else "") + ". The searchers' "
                       "verdicts do not move with the backend: they compare at equal epochs.")
        elif (speedup or 0.0) < CLEARLY_FASTER:
            verdict = (f"`{fastest}` is {render.number(speedup, 2)}x `{reference}`'s images/s, "
                       f"within {CLEARLY_FASTER - 1:.0%}: no backend is clearly faster here; "
                       "keep the one you use.")
        else:
            verdict = (f"`{fastest}` trains this CNN fastest here ({render.number(speedup, 2)}x "
                       f"`{reference}`'s images/s inside a trial): on a CPU like this one, "
                       f"`--backend {fastest}` (or `KERAS_BACKEND={fastest}`) spends the same "
                       "epoch budget in less wall time. The searchers' verdicts do not move: "
                       "they compare at equal epochs, not seconds.")
        lines += [verdict, "", "Command:", ""]
        lines += ["```", render.machine_free(str(b.get("command", "(not recorded)"))), "```",
                  "", f"Machine: {render.json_text(b.get('machine'))}.", ""]
    return lines
