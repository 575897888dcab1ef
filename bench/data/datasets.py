"""Data sets every searcher trains on: ``toon`` (procedural), ``digits`` (bundled) or a
folder of images.

Why one loader for all: a comparison between searchers is only fair when each sees the
same pixels and the same train/val/test split, so the split is a pure function of the
spec and seed (``toon``, ``digits``) or is saved once per folder and reused (folders; kept
beside the store or in the user cache, never written into the user's data). All three go
through :func:`stratified_split`, so each split holds every class in the data set's
proportions. The memory a data set needs is checked before any pixel is made, so a too
large ``--image-size`` is one clear line instead of a failed 11 GiB allocation.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.core.errors import UserError
from bench.data.toon import DEFAULT_SIZE as TOON_SIZE
from bench.data.toon import check_size, generate_toon

FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / val / test, as the seed
MIN_PER_CLASS = 3  # one image per split at least
TOON_IMAGES = 1000
DIGITS_IMAGES = 1797  # sklearn's bundled digits
DIGITS_SIZE: tuple[int, int] = (32, 32)  # 8x8 scaled 4x: two 2x2 pools still leave 2x2
# A folder's default size is capped at the toon default's pixel count, so a folder
# trial costs about what a toon trial costs.
DEFAULT_MAX_PIXELS = TOON_SIZE[0] * TOON_SIZE[1]
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
SPLIT_FILE = ".bench_split.json"  # older runs saved the split in the folder: still read
SPLIT_CACHE = Path("~/.cache/toon-bench/splits")
CGROUP_DIR = Path("/sys/fs/cgroup")  # cgroup v2: memory.max / memory.current
# Bytes per uint8 pixel value a training run holds: the arrays, a second uint8 copy while
# the splits are cut (or stacked from files), and Keras's float32 copy of train+val.
_BYTES_PER_VALUE = 2 + 4 * (FRACTIONS[0] + FRACTIONS[1])


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
    size_note: str = ""  # how the image size was chosen; not part of the fingerprint

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
            "size_rule": self.size_note,
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
                 seed: int, size_note: str) -> Dataset:
    tr, va, te = stratified_split(y, seed)
    y = y.astype(np.int32)
    return Dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], tuple(class_names),
                   size_note)


# --------------------------------------------------------------------------- memory

def available_memory() -> int:
    """Bytes this process may still allocate: free RAM, lowered by a cgroup v2 limit
    (a container's cap is what kills the process, not the host's free RAM)."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    try:
        limit = (CGROUP_DIR / "memory.max").read_text().strip()
    except OSError:
        return avail
    if not limit.isdigit():  # "max": no limit
        return avail
    try:
        used = int((CGROUP_DIR / "memory.current").read_text().strip())
    except (OSError, ValueError):
        used = 0
    return max(0, min(avail, int(limit) - used))


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(n_images: int, size: tuple[int, int], spec: str) -> None:
    """Refuse, before anything is allocated, a data set that cannot fit in memory."""
    h, w = size
    need = int(n_images * h * w * 3 * _BYTES_PER_VALUE)
    avail = available_memory()
    if need > avail:
        raise UserError(f"{spec}: {n_images} images of {h}x{w} need about {_gib(need)} of "
                        f"memory to train on, {_gib(avail)} is available: pass a smaller "
                        f"--image-size")


# -------------------------------------------------------------------------- loaders

def _size(image_size: tuple[int, int] | None, default: tuple[int, int],
          spec: str) -> tuple[tuple[int, int], str]:
    if image_size is None:
        return default, f"{spec} default"
    return check_size(image_size, spec), "--image-size"


def _load_toon(image_size: tuple[int, int] | None, seed: int) -> Dataset:
    size, note = _size(image_size, TOON_SIZE, "toon")
    check_memory(TOON_IMAGES, size, "toon")
    x, y, names = generate_toon(TOON_IMAGES, size, seed)
    return _from_arrays("toon", x, y, names, seed, note)


def _load_digits(image_size: tuple[int, int] | None, seed: int) -> Dataset:
    from PIL import Image
    from sklearn.datasets import load_digits

    (h, w), note = _size(image_size, DIGITS_SIZE, "digits")
    check_memory(DIGITS_IMAGES, (h, w), "digits")
    d = load_digits()
    gray = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    if (h, w) != gray.shape[1:]:
        gray = np.stack([np.asarray(Image.fromarray(g).resize((w, h), Image.Resampling.BILINEAR))
                         for g in gray])
    x = np.repeat(gray[..., None], 3, axis=-1)
    names = tuple(str(n) for n in d.target_names)
    return _from_arrays("digits", x, d.target.astype(np.int32), names, seed, note)


_REGISTRY: dict[str, Callable[[tuple[int, int] | None, int], Dataset]] = {
    "toon": _load_toon,
    "digits": _load_digits,
}


def load_dataset(spec: str, *, image_size: tuple[int, int] | None = None, seed: int = 0,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 split_dir: Path | None = None) -> Dataset:
    """``toon``, ``digits`` or a folder with one subfolder of PNG/JPEG images per class.

    ``image_size`` is (height, width); None picks the data set's default: for a folder,
    its median image size scaled down (aspect kept) to at most ``max_pixels`` pixels
    (None: no cap); ``max_pixels`` does not apply to the built-in sets. A folder's split
    is saved in ``split_dir`` (default: the user cache). Bad input raises ``UserError``
    naming the path.
    """
    loader = _REGISTRY.get(spec)
    if loader is not None:
        return loader(image_size, int(seed))
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    return _load_folder(Path(spec), image_size, int(seed), max_pixels, split_dir)


# --------------------------------------------------------------------------- folders

def _class_images(root: Path, cls: str) -> list[str]:
    """Relative paths (``class/sub/file``) of the images under one class folder, nested
    sub-folders included (users group images in them), hidden files and folders not."""
    def refuse(e: OSError) -> None:
        raise UserError(f"cannot list data folder {e.filename}: {e.strerror or e}")

    found = []
    for dirpath, dirnames, filenames in os.walk(root / cls, onerror=refuse):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root)
        for f in filenames:
            if (not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
                    and os.path.isfile(os.path.join(dirpath, f))):
                found.append((rel / f).as_posix())
    return sorted(found)


def _check_class_folder(root: Path, folder: Path, followed: dict[Path, str]) -> None:
    """A class folder's name must be text (it is stored and shown); a symlinked one is
    followed only to a folder outside the data folder, and each target only once (a link
    to the root or to another class would put the same images under two labels)."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(folder.name)
        raise UserError(f"class folder {shown!r} in {root} has a name that is not valid UTF-8: "
                        "rename it") from None
    if not folder.is_symlink():
        return
    target, top = folder.resolve(), root.resolve()
    if target == top or target in top.parents:
        raise UserError(f"class folder {folder.name!r} in {root} links to {target}, which holds "
                        "the data folder itself (a loop): remove the link")
    if top in target.parents:
        raise UserError(f"class folder {folder.name!r} in {root} links to {target}, inside the "
                        "data folder: its images would be counted twice; remove the link")
    if target in followed:
        raise UserError(f"class folders {followed[target]!r} and {folder.name!r} in {root} both "
                        f"link to {target}: the same images under two classes; keep one")
    followed[target] = folder.name


def _scan_folder(root: Path) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """Class names and, per class, sorted relative image paths (``class/.../file``)."""
    if not root.exists():
        raise UserError(f"data folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"data path is not a directory: {root}")
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise UserError(f"cannot list data folder {root}: {e.strerror or e}") from e
    files: dict[str, list[str]] = {}
    followed: dict[Path, str] = {}
    for d in subdirs:
        _check_class_folder(root, d, followed)
        imgs = _class_images(root, d.name)
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


def fit_size(h: int, w: int, max_pixels: int | None) -> tuple[int, int]:
    """(h, w) scaled down, aspect kept, so that h * w <= max_pixels; never scaled up."""
    if max_pixels is None or h * w <= max_pixels:
        return h, w
    s = math.sqrt(max_pixels / (h * w))
    nh = max(1, min(h, round(h * s)))
    nw = max(1, min(w, round(w * s), max_pixels // nh))
    return max(1, min(nh, max_pixels // nw)), nw


def _header_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e
    return h, w


def _folder_size(root: Path, listed: list[str],
                 max_pixels: int | None) -> tuple[tuple[int, int], str]:
    """The folder's typical size (median height, median width), capped at max_pixels."""
    sizes = np.array([_header_size(root / f) for f in listed])
    h, w = (max(1, int(round(float(v)))) for v in np.median(sizes, axis=0))
    size = fit_size(h, w, max_pixels)
    note = f"folder median {h}x{w}"
    return size, note if size == (h, w) else f"{note}, scaled to cap {max_pixels} px"


def _split_name(root: Path) -> str:
    """A file name for the folder's split, unique per resolved path, readable by name."""
    resolved = root.resolve()
    sha = hashlib.sha256(str(resolved).encode()).hexdigest()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", resolved.name, flags=re.ASCII)[:40] or "folder"
    return f"split-{name}-{sha[:12]}.json"


def _split_paths(root: Path, split_dir: Path | None) -> tuple[list[Path], Path]:
    """Where a saved split is looked for (older runs' places first) and where a new one
    is written: ``split_dir``, else the user cache; never the user's data folder."""
    cache = SPLIT_CACHE.expanduser()
    legacy_key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    target = (split_dir if split_dir is not None else cache) / _split_name(root)
    return [root / SPLIT_FILE, cache / f"{legacy_key}.json", target], target


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` atomically unless it exists (parallel searchers: first one wins),
    with ordinary permissions (0644 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
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


def _folder_split(root: Path, classes: tuple[str, ...], listed: list[str], seed: int,
                  split_dir: Path | None) -> dict[str, list[str]]:
    """Load the saved split for ``root`` or make, save and return a new one."""
    candidates, target = _split_paths(root, split_dir)
    for path in candidates:
        if path.is_file():
            return _check_saved(path, root, classes, listed)
    paths = np.array(listed)
    labels = np.array([classes.index(f.split("/", 1)[0]) for f in listed])
    tr, va, te = stratified_split(labels, seed)
    split = {"train": paths[tr].tolist(), "val": paths[va].tolist(), "test": paths[te].tolist()}
    text = json.dumps({"version": 1, "seed": seed, "classes": list(classes),
                       "folder": str(root.resolve()), **split}, indent=1)
    try:
        _write_once(target, text)
    except OSError as e:
        raise UserError(f"cannot save the data split for {root} in {target.parent}: "
                        f"{e.strerror or e}") from e
    return _check_saved(target, root, classes, listed)  # the winner's split


def _check_saved(path: Path, root: Path, classes: tuple[str, ...],
                 listed: list[str]) -> dict[str, list[str]]:
    try:
        saved = json.loads(path.read_text())
        split = {k: [str(f) for f in saved[k]] for k in ("train", "val", "test")}
        saved_classes = tuple(saved["classes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"unreadable split file {path} ({e}); delete it to re-split {root}") from e
    in_split = sum(split.values(), [])
    if saved_classes != classes or sorted(in_split) != listed:
        added, gone = len(set(listed) - set(in_split)), len(set(in_split) - set(listed))
        raise UserError(f"images in {root} changed since its split was saved ({added} new, "
                        f"{gone} gone); delete {path} to re-split (other runs on the old "
                        f"split stop being comparable)")
    return split


def _to_rgb(im: Any) -> Any:
    """RGB for any PIL mode. Why: ``convert("RGB")`` clips 16-bit grey (0..65535) at 255,
    which washes an image out; such pixels are scaled to 0..255 first."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit PNG grey (older Pillow: "I")
        a = np.clip(np.asarray(im, dtype=np.float64), 0, 65535) / 257.0
    elif im.mode == "F":  # float: 0..1 is taken as a fraction, anything else as 0..255
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        if a.size and a.min() >= 0 and a.max() <= 1:
            a = a * 255.0
    else:
        return im.convert("RGB")  # 16-bit RGB(A)/LA: Pillow already keeps the high byte
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L").convert("RGB")


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    try:
        with Image.open(path) as im:
            im.load()
            rgb = _to_rgb(im)
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


def _load_folder(root: Path, image_size: tuple[int, int] | None, seed: int,
                 max_pixels: int | None, split_dir: Path | None) -> Dataset:
    root = root.expanduser()
    if image_size is not None:
        image_size = check_size(image_size, str(root))
    classes, files = _scan_folder(root)
    listed = sorted(f for imgs in files.values() for f in imgs)
    if image_size is None:
        size, note = _folder_size(root, listed, max_pixels)
    else:
        size, note = image_size, "--image-size"
    check_memory(len(listed), size, str(root))
    # read every image before saving a split: a corrupt file must not leave a split behind
    pixels = {f: _read_image(root / f, size) for f in listed}
    split = _folder_split(root, classes, listed, seed, split_dir)
    arrays: list[np.ndarray] = []
    for part in ("train", "val", "test"):
        rel = split[part]
        arrays.append(np.stack([pixels[f] for f in rel]))
        arrays.append(np.array([classes.index(f.split("/", 1)[0]) for f in rel],
                               dtype=np.int32))
    name = root.resolve().name or "folder"
    x_train, y_train, x_val, y_val, x_test, y_test = arrays
    return Dataset(name, x_train, y_train, x_val, y_val, x_test, y_test, class_names=classes, size_note=note)
