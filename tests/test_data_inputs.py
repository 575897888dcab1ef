"""A user's own image folder as it really comes: its own geometry, 16-bit PNGs, nested
sub-folders, a size too large for memory, and data that must not be written into.

Why: each of these once went wrong silently (stretched to 120x40, washed out, images
ignored, a split file written into the user's data) or with an 11 GiB allocation.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.data.datasets as data
from bench.core.errors import UserError
from bench.data.datasets import fit_size, load_dataset


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """The user cache for splits, per test: tests never write into ~/.cache."""
    monkeypatch.setattr(data, "SPLIT_CACHE", tmp_path / "cache")
    return tmp_path / "cache"


def _folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> Path:
    """One PNG per (height, width) listed for each class; plain colours (small files)."""
    for k, (cls, hw) in enumerate(sizes.items()):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(hw):
            arr = np.full((h, w, 3), (40 * k + 7 * i) % 256, np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i}.png")
    return root


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# ------------------------------------------------------------------ folder geometry

def test_square_folder_loads_square_by_default(tmp_path):
    root = _folder(tmp_path / "digits28", {"a": [(28, 28)] * 3, "b": [(28, 28)] * 3})
    ds = load_dataset(str(root))
    assert ds.input_shape == (28, 28, 3)
    assert ds.size_note == "folder median 28x28" == ds.describe()["size_rule"]


def test_three_to_one_folder_keeps_its_aspect_and_median(tmp_path):
    sizes = [(90, 30), (60, 20), (99, 33)]  # median height 90, median width 30
    root = _folder(tmp_path / "tall", {"a": sizes, "b": sizes})
    assert load_dataset(str(root)).input_shape == (90, 30, 3)


def test_large_folder_is_capped_with_aspect_kept(tmp_path):
    root = _folder(tmp_path / "photos", {"a": [(480, 640)] * 3, "b": [(480, 640)] * 3})
    ds = load_dataset(str(root))  # default cap: the toon default's 4800 pixels
    assert ds.input_shape == (60, 80, 3)
    assert ds.size_note == "folder median 480x640, scaled to cap 4800 px"
    assert load_dataset(str(root), max_pixels=768).input_shape[:2] == (24, 32)


def test_explicit_size_overrides_the_folder_geometry(tmp_path):
    root = _folder(tmp_path / "sq", {"a": [(28, 28)] * 3, "b": [(28, 28)] * 3})
    ds = load_dataset(str(root), image_size=(12, 4))
    assert ds.input_shape == (12, 4, 3) and ds.size_note == "--image-size"


@pytest.mark.parametrize("h,w,cap", [(101, 99, 4800), (1, 100_000, 4800), (100_000, 1, 4800),
                                     (300, 100, 4800), (7, 7, 1), (28, 28, None)])
def test_fit_size_respects_the_cap_and_never_scales_up(h, w, cap):
    nh, nw = fit_size(h, w, cap)
    assert 1 <= nh <= h and 1 <= nw <= w
    if cap is None or h * w <= cap:
        assert (nh, nw) == (h, w)
    else:
        assert 0.9 * cap <= nh * nw <= cap
        if min(nh, nw) > 10:
            assert abs(nh / nw - h / w) < 0.05 * h / w


# ------------------------------------------------------------------------ memory

def test_size_that_cannot_fit_is_refused_before_anything_is_made(tmp_path, cache):
    with pytest.raises(UserError, match=r"need about .* GiB .* available: pass a smaller "
                                        r"--image-size"):
        load_dataset("toon", image_size=(100_000, 100_000))
    root = _folder(tmp_path / "f", {"a": [(8, 8)] * 3, "b": [(8, 8)] * 3})
    before = _files(tmp_path)
    with pytest.raises(UserError) as e:
        load_dataset(str(root), image_size=(100_000, 100_000), split_dir=tmp_path / "store")
    assert str(root) in str(e.value) and "\n" not in str(e.value)
    assert _files(tmp_path) == before  # no split file anywhere, nothing written


def test_cgroup_limit_lowers_available_memory(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("400000\n")
    monkeypatch.setattr(data, "CGROUP_DIR", tmp_path)
    assert data.available_memory() == 600_000
    with pytest.raises(UserError, match="1 MiB is available"):
        load_dataset("toon", image_size=(12, 4))  # 1000 x 12x4x3 x 5.2 bytes > 0.6 MB
    (tmp_path / "memory.max").write_text("max\n")
    assert data.available_memory() > 600_000


# ----------------------------------------------------------------------- 16-bit PNG

def test_16_bit_grey_png_is_scaled_not_washed_out(tmp_path):
    grey = np.linspace(4, 65507, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    for cls in ("a", "b"):
        (tmp_path / "deep" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(grey).save(tmp_path / "deep" / cls / f"g{i}.png")
    assert Image.open(tmp_path / "deep" / "a" / "g0.png").mode == "I;16"
    x = load_dataset(str(tmp_path / "deep")).x_train
    assert x.shape[1:] == (16, 16, 3)
    assert (x == 255).mean() < 0.02 and x.min() == 0 and x.max() == 255
    assert len(np.unique(x)) > 200  # spread over the 8-bit range


def test_int_and_float_modes_are_scaled():
    i32 = Image.fromarray(np.array([[0, 65535]], np.int32))  # mode "I"
    assert np.asarray(data._to_rgb(i32))[0, :, 0].tolist() == [0, 255]
    frac = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))  # mode "F", 0..1
    assert np.asarray(data._to_rgb(frac))[0, :, 0].tolist() == [0, 128, 255]
    big = Image.fromarray(np.array([[-3.0, 100.0, 300.0]], np.float32))
    assert np.asarray(data._to_rgb(big))[0, :, 0].tolist() == [0, 100, 255]


# -------------------------------------------------------------------- nested folders

def test_nested_sub_folders_count_for_their_class(tmp_path, cache):
    root = tmp_path / "nested"
    for cls in ("a", "b"):
        _folder(root, {cls: [(8, 8)] * 3})
        for sub in ("sub", "sub/deeper"):
            _folder(root / cls / sub, {"": [(8, 8)] * 5})
        _folder(root / cls / ".thumbs", {"": [(8, 8)] * 4})  # hidden: skipped
        Image.new("RGB", (8, 8)).save(root / cls / "sub" / ".hidden.png")
    ds = load_dataset(str(root))
    counts = sum(np.bincount(y, minlength=2) for y in (ds.y_train, ds.y_val, ds.y_test))
    assert counts.tolist() == [13, 13]
    saved = json.loads(next(cache.glob("*.json")).read_text())
    assert "a/sub/deeper/img0.png" in saved["train"] + saved["val"] + saved["test"]


# ------------------------------------------------------------------------ split file

def test_split_is_saved_beside_the_store_never_in_the_data(tmp_path, cache):
    root = _folder(tmp_path / "my data", {"a": [(8, 8)] * 4, "b": [(8, 8)] * 4})
    before = _files(root)
    old = os.umask(0o022)
    try:
        ds = load_dataset(str(root), split_dir=tmp_path / "store")
    finally:
        os.umask(old)
    assert _files(root) == before and not cache.exists()
    [split] = (tmp_path / "store").iterdir()
    assert split.name.startswith("split-my_data-") and split.suffix == ".json"
    assert split.stat().st_mode & 0o044
    again = load_dataset(str(root), split_dir=tmp_path / "store", seed=5)
    assert again.fingerprint == ds.fingerprint


def test_existing_in_folder_split_is_still_honoured(tmp_path, cache):
    root = _folder(tmp_path / "old", {"a": [(8, 8)] * 3, "b": [(8, 8)] * 3})
    legacy = {"version": 1, "seed": 0, "classes": ["a", "b"],  # as older runs wrote it
              "train": ["b/img2.png", "a/img2.png"], "val": ["a/img1.png", "b/img1.png"],
              "test": ["a/img0.png", "b/img0.png"]}
    (root / data.SPLIT_FILE).write_text(json.dumps(legacy))
    ds = load_dataset(str(root), split_dir=tmp_path / "store")
    first = np.asarray(Image.open(root / "b" / "img2.png").convert("RGB"))
    assert np.array_equal(ds.x_train[0], first) and ds.y_train.tolist() == [1, 0]
    assert not (tmp_path / "store").exists() and not cache.exists()
