"""The flags' types and the flags every search command shares (argparse only)."""
from __future__ import annotations

import argparse
import math
from typing import Callable, NoReturn

from bench.core import schema
from bench.core.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse's mistakes end like every other user mistake: one ``error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 120x40, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return h, w


def whole_number_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


non_negative = whole_number_at_least(0)
positive = whole_number_at_least(1)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def objectives(text: str) -> tuple[str, ...]:
    """--objectives val_loss,params: known names, checked as a run checks them."""
    from bench.run.runner import check_objectives
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    try:
        check_objectives(names)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--objectives").strip(" :")) from None
    return names


def trial_process(text: str) -> tuple[int, int]:
    cap, index = (int(v) for v in text.split(":"))
    return cap, index


def add_common(p: argparse.ArgumentParser) -> None:
    from bench.run.presets import PRESETS
    p.add_argument("--seed", type=non_negative, default=0, help="searcher seed (default 0)")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS),
                   help="scale: quick (tests), standard (2-core CPU), full (seed's 600x200, GPU)")
    p.add_argument("--budget-epochs", type=int, help="total training epochs across all trials")
    p.add_argument("--epochs-per-trial", type=int, help="epochs of one full trial")
    p.add_argument("--max-trials", type=int, help="stop after this many trials")
    p.add_argument("--timeout", type=positive_seconds,
                   help="wall-clock limit: the running trial stops and no new one starts after SEC seconds")
    p.add_argument("--dataset", default="toon", help="toon | digits | PATH to class folders")
    p.add_argument("--image-size", type=image_size, help="HxW (default: the preset's / data set's)")
    p.add_argument("--data-seed", type=non_negative, default=0, help="seed of the data set and its split")
    p.add_argument("--storage", default=schema.DEFAULT_STORAGE, help="SQLAlchemy URL of the study store")
    p.add_argument("--logdir", default="runs", help="TensorBoard logs: <logdir>/<study>/")
    p.add_argument("--sampler", help="Optuna-backed searchers: tpe|random|cmaes|gp|qmc")
    p.add_argument("--pruner", help="Optuna-backed searchers: none|median|sha|hyperband")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patience", type=non_negative, metavar="N",
                   help="EarlyStopping patience on val_loss (default: the preset's, 3; 0: none)")
    p.add_argument("--trials-per-process", type=non_negative, metavar="N",
                   help="run trials in a child process replaced every N trials: flat memory, "
                        "and a trial whose process dies costs only that trial (default "
                        "20; 0: run trials in this process)")
    p.add_argument("--objectives", type=objectives, metavar="A,B",
                   help="comma list of val_loss, val_accuracy, loss, accuracy, params (the "
                        "model's parameter count); two or more: a multi-objective run "
                        "(default val_loss)")
    p.add_argument("--max-params", type=positive, metavar="N",
                   help="size cap: trials of larger models are infeasible (an Optuna constraint)")
    p.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                   help="keep the best trials' checkpoints in this Optuna artifact store too "
                        "(a folder every machine mounts, or S3): get_best_models and the "
                        "dashboard find them from any machine")
    add_backend(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show Keras epoch output")


def add_backend(p: argparse.ArgumentParser, several: bool = False) -> None:
    from bench.core.backends import BACKENDS
    names = "|".join(BACKENDS)
    p.add_argument("--backend", metavar=f"{names}{'[,...]' if several else ''}",
                   help="the Keras backend to train on (default: KERAS_BACKEND, else "
                        "tensorflow; jax and torch need the [jax] / [torch] extras)"
                   + ("; several, comma-separated: measured side by side" if several else ""))
