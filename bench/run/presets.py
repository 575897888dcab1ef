"""Scale presets: one name picks image size, epochs per trial and the epoch budget.

quick    - tests and smoke runs: tiny images, a few epochs.
standard - the committed report and a newcomer's first run on a 2-core CPU: 120x40 toon
           images, trials of up to 15 epochs (early stopping, patience 3), 180 epochs in all
           (about 3-4 minutes per run on 2 cores).
full     - the seed's own setting (600x200 images, 75-epoch trials): for a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    image_size: tuple[int, int] | None  # toon's size; None: the data set's own default
    epochs_per_trial: int
    budget_epochs: int
    batch_size: int = 64
    patience: int = 3                    # EarlyStopping on val_loss, as in the seed
    max_pixels: int = 120 * 40           # cap on h*w for an image folder's own size


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("quick", image_size=(48, 16), epochs_per_trial=2, budget_epochs=8, max_pixels=48 * 16),
    Preset("standard", image_size=None, epochs_per_trial=15, budget_epochs=180),
    Preset("full", image_size=(600, 200), epochs_per_trial=75, budget_epochs=2000,
           max_pixels=600 * 200),
)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
