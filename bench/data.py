"""Data sets every searcher trains on: ``toon`` (procedural), ``digits`` (bundled) or a
folder of images.

Why one loader for all: a comparison between searchers is only fair when each sees the
same pixels and the same train/val/test split, so the split is a pure function of the
spec and seed (``toon``, ``digits``) or is saved beside the images and reused (folders).
All three go through :func:`stratified_split`, so each split holds every class in the
data set's proportions.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.errors import UserError
from bench.toon import DEFAULT_SIZE as TOON_SIZE
from bench.toon import check_size, generate_toon

DataError = UserError  # bad data input is the user's to fix: one clear line, exit code 2

FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / val / test, as the seed
MIN_PER_CLASS = 3  # one image per split at least
TOON_IMAGES = 1000
DIGITS_SIZE: tuple[int, int] = (32, 32)  # 8x8 scaled 4x: two 2x2 pools still leave 2x2
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
SPLIT_FILE = ".bench_split.json"
SPLIT_CACHE = Path("~/.cache/toon-bench/splits")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Uint8 NHWC images (0..255) and int32 labels for the three splits."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def fingerprint(self) -> str:
        """Short sha256 over all arrays and class names: tells two runs' data apart."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        h.update("\0".join(self.class_names).encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """JSON-able summary stored with every study (``dataset_info``)."""
        h, w, c = self.input_shape
        return {
            "name": self.name,
            "n_train": int(len(self.y_train)),
            "n_val": int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "image_size": [h, w],
            "channels": c,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "class_counts": {split: np.bincount(y, minlength=self.num_classes).tolist()
                             for split, y in (("train", self.y_train), ("val", self.y_val),
                                              ("test", self.y_test))},
            "fingerprint": self.fingerprint,
        }


# ------------------------------------------------------------------------ splitting

def stratified_split(labels: np.ndarray, seed: int = 0,
                     fractions: tuple[float, float, float] = FRACTIONS,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test), each class split in ``fractions`` (val/test >= 1 each).

    Deterministic for the seed; indices within a split are shuffled so batches mix
    classes. Raises ``UserError`` if a class has fewer than ``MIN_PER_CLASS`` items.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0x5B1]) # own stream: independent of generators
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < MIN_PER_CLASS:
            raise UserError(f"class {cls!r} has {len(idx)} item(s); at least "
                            f"{MIN_PER_CLASS} are needed to split train/val/test")
        idx = rng.permutation(idx)
        n_val = max(1, int(round(len(idx) * fractions[1])))
        n_test = max(1, int(round(len(idx) * fractions[2])))
        n_train = len(idx) - n_val - n_test
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...],
                 seed: int) -> Dataset:
    tr, va, te = stratified_split(y, seed)
    y = y.astype(np.int32)
    return Dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], tuple(class_names))


# -------------------------------------------------------------------------- loaders

def _load_toon(image_size: tuple[int, int] | None, seed: int) -> Dataset:
    size = check_size(image_size or TOON_SIZE, "toon")
    x, y, names = generate_toon(TOON_IMAGES, size, seed)
    return _from_arrays("toon", x, y, names, seed)


def _load_digits(image_size: tuple[int, int] | None, seed: int) -> Dataset:
    from PIL import Image
    from sklearn.datasets import load_digits

    h, w = check_size(image_size or DIGITS_SIZE, "digits")
    d = load_digits()
    gray = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    if (h, w) != gray.shape[1:]:
        gray = np.stack([np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR))
                         for g in gray])
    x = np.repeat(gray[..., None], 3, axis=-1)
    names = tuple(str(n) for n in d.target_names)
    return _from_arrays("digits", x, d.target.astype(np.int32), names, seed)


_REGISTRY: dict[str, Callable[[tuple[int, int] | None, int], Dataset]] = {
    "toon": _load_toon,
    "digits": _load_digits,
}


def dataset_names() -> tuple[str, ...]:
    """Built-in data set names (anything else is read as a folder path)."""
    return tuple(_REGISTRY)


def load_dataset(spec: str, *, image_size: tuple[int, int] | None = None,
                 seed: int = 0) -> Dataset:
    """``toon``, ``digits`` or a folder with one subfolder of PNG/JPEG images per class.

    ``image_size`` is (height, width); None picks the data set's default (the toon
    default for folders). Bad input raises ``UserError`` naming the path.
    """
    loader = _REGISTRY.get(spec)
    if loader is not None:
        return loader(image_size, int(seed))
    return _load_folder(Path(spec), image_size, int(seed))


# --------------------------------------------------------------------------- folders

def _scan_folder(root: Path) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """Class names and, per class, sorted relative image paths (``class/file``)."""
    if not root.exists():
        raise UserError(f"data folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"data path is not a directory: {root}")
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise UserError(f"cannot list data folder {root}: {e.strerror or e}")
    files: dict[str, list[str]] = {}
    for d in subdirs:
        imgs = sorted(f"{d.name}/{f.name}" for f in d.iterdir()
                      if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                      and not f.name.startswith("."))
        if imgs:
            files[d.name] = imgs
    if not files:
        raise UserError(f"no images found in {root}: expected one subfolder per class "
                        f"holding PNG/JPEG files")
    if len(files) < 2:
        only = next(iter(files))
        raise UserError(f"only one class ({only!r}) in {root}: need at least 2 class "
                        f"subfolders")
    for cls, imgs in files.items():
        if len(imgs) < MIN_PER_CLASS:
            raise UserError(f"class {cls!r} in {root} has {len(imgs)} image(s); at least "
                            f"{MIN_PER_CLASS} are needed to split train/val/test")
    return tuple(files), files


def _split_paths(root: Path) -> list[Path]:
    """Where the split may live: in the folder, else in the user cache (read-only data)."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / SPLIT_FILE, SPLIT_CACHE.expanduser() / f"{key}.json"]


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` atomically unless it exists (parallel searchers: first one wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bench_split.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, path)  # fails if another process already wrote it
        except FileExistsError:
            pass
        except OSError:  # file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _folder_split(root: Path, classes: tuple[str, ...], files: dict[str, list[str]],
                  seed: int) -> tuple[Path, dict[str, list[str]]]:
    """Load the saved split for ``root`` or make, save and return a new one."""
    listed = sorted(f for imgs in files.values() for f in imgs)
    for path in _split_paths(root):
        if path.is_file():
            return path, _check_saved(path, root, classes, listed)
    paths = np.array(listed)
    labels = np.array([classes.index(f.split("/", 1)[0]) for f in listed])
    tr, va, te = stratified_split(labels, seed)
    split = {"train": paths[tr].tolist(), "val": paths[va].tolist(), "test": paths[te].tolist()}
    text = json.dumps({"version": 1, "seed": seed, "classes": list(classes), **split}, indent=1)
    errors = []
    for path in _split_paths(root):
        try:
            _write_once(path, text)
        except OSError as e:
            errors.append(f"{path}: {e.strerror or e}")
            continue
        return path, _check_saved(path, root, classes, listed)  # the winner's split
    raise UserError(f"cannot save the data split for {root} ({'; '.join(errors)})")


def _check_saved(path: Path, root: Path, classes: tuple[str, ...],
                 listed: list[str]) -> dict[str, list[str]]:
    try:
        saved = json.loads(path.read_text())
        split = {k: [str(f) for f in saved[k]] for k in ("train", "val", "test")}
        saved_classes = tuple(saved["classes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"unreadable split file {path} ({e}); delete it to re-split {root}")
    if saved_classes != classes or sorted(sum(split.values(), [])) != listed:
        raise UserError(f"images in {root} changed since its split was saved; delete "
                        f"{path} to re-split (other runs on the old split stop being "
                        f"comparable)")
    return split


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), Image.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {e}")


def _load_folder(root: Path, image_size: tuple[int, int] | None, seed: int) -> Dataset:
    root = root.expanduser()
    size = check_size(image_size or TOON_SIZE, str(root))
    classes, files = _scan_folder(root)
    # read every image before saving a split: a corrupt file must not leave a split behind
    listed = sorted(f for imgs in files.values() for f in imgs)
    pixels = {f: _read_image(root / f, size) for f in listed}
    _, split = _folder_split(root, classes, files, seed)
    arrays: list[np.ndarray] = []
    for part in ("train", "val", "test"):
        rel = split[part]
        arrays.append(np.stack([pixels[f] for f in rel]))
        arrays.append(np.array([classes.index(f.split("/", 1)[0]) for f in rel],
                               dtype=np.int32))
    name = root.resolve().name or "folder"
    return Dataset(name, *arrays, class_names=classes)
