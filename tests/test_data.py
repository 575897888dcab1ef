"""Data sets: the toon generator, the stratified split, digits and image folders.

Why these checks: a comparison between searchers is only fair if every searcher sees
the same pixels and split, so determinism, stratification and split reuse are the
contract; folder errors must be one clear line naming the path.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.data.datasets as data
import bench.data.toon as toon
from bench.core.errors import UserError
from bench.data.datasets import Dataset, load_dataset, stratified_split
from bench.data.toon import CLASS_NAMES, DEFAULT_SIZE, generate_toon
from bench.run.presets import PRESETS
from bench.run.runner import RunConfig, load_run_data


@pytest.fixture(scope="module")
def toon_ds() -> Dataset:
    return load_dataset("toon", seed=0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """The user cache for splits, per test: tests never write into ~/.cache."""
    monkeypatch.setattr(data, "SPLIT_CACHE", tmp_path / "cache")
    return tmp_path / "cache"


# ------------------------------------------------------------------------ generator

def test_every_preset_trains_on_tall_3_to_1_toon_images(toon_ds, monkeypatch, tmp_path):
    """The seed's images are 600x200 (height x width): every preset's toon run loads images
    of that shape, scaled (full: the seed's own size). Each preset's data set is loaded
    the way a run loads it (bench.run.runner.load_run_data -> bench.data.datasets), with 12 images
    instead of 1000 so that the full size stays cheap; the standard preset's real
    1000-image set (the module's ``toon_ds``) is checked as well."""
    monkeypatch.setattr(data, "TOON_IMAGES", 12)  # 3 per class: the least that splits
    sizes = {}
    for name in PRESETS:
        cfg = RunConfig(searcher="random", preset=name,
                        storage=f"sqlite:///{tmp_path / 'studies.db'}").resolved()
        ds = load_run_data(cfg)
        assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 12, name
        shapes = {x.shape[1:] for x in (ds.x_train, ds.x_val, ds.x_test)}
        assert len(shapes) == 1, (name, shapes)
        (h, w, c), = shapes
        assert h == 3 * w and c == 3, (name, h, w, c)
        assert ds.describe()["image_size"] == [h, w]
        sizes[name] = (h, w)
    assert sizes == {"quick": (48, 16), "standard": DEFAULT_SIZE, "full": (600, 200)}
    for x in (toon_ds.x_train, toon_ds.x_val, toon_ds.x_test):
        assert x.shape[1:] == (*DEFAULT_SIZE, 3) == (120, 40, 3)


def test_generator_shapes_dtypes_and_range():
    x, y, names = generate_toon(24, seed=3)
    assert x.shape == (24, *DEFAULT_SIZE, 3) and x.dtype == np.uint8
    assert y.shape == (24,) and y.dtype == np.int32
    assert names == CLASS_NAMES == ("bossbot", "lawbot", "cashbot", "sellbot")
    assert set(np.unique(y)) <= {0, 1, 2, 3}
    assert x.min() < 40 and x.max() > 215  # uses the range: dark shoes, lit background


def test_generator_is_deterministic_and_seed_dependent():
    a = generate_toon(16, seed=7)
    b = generate_toon(16, seed=7)
    c = generate_toon(16, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_generator_does_not_depend_on_chunking(monkeypatch):
    whole = generate_toon(10, seed=5)[0]
    monkeypatch.setattr(toon, "_CHUNK_PIXELS", 3 * DEFAULT_SIZE[0] * DEFAULT_SIZE[1])
    assert np.array_equal(whole, generate_toon(10, seed=5)[0])


@pytest.mark.parametrize("n", [4, 42, 101])
def test_generator_classes_balanced(n):
    counts = np.bincount(generate_toon(n, image_size=(12, 4), seed=1)[1], minlength=4)
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_generator_other_sizes():
    x, _, _ = generate_toon(2, image_size=(600, 200), seed=0)
    assert x.shape == (2, 600, 200, 3)
    assert generate_toon(3, image_size=(30, 30))[0].shape == (3, 30, 30, 3)


@pytest.mark.parametrize("size", [(0, 10), (10,), "big", (-3, 1)])
def test_generator_rejects_bad_size(size):
    with pytest.raises(UserError):
        generate_toon(4, image_size=size)


# -------------------------------------------------------------------------- splitting

def test_stratified_split_disjoint_complete_and_stratified():
    labels = np.repeat(np.arange(3), [10, 20, 7])
    tr, va, te = stratified_split(labels, seed=0)
    allidx = np.concatenate([tr, va, te])
    assert len(allidx) == len(labels) == len(set(allidx.tolist()))
    for cls, n in enumerate([10, 20, 7]):
        counts = [int((labels[s] == cls).sum()) for s in (tr, va, te)]
        assert sum(counts) == n and min(counts) >= 1
        assert abs(counts[1] - 0.2 * n) <= 1 and abs(counts[2] - 0.2 * n) <= 1
    again = stratified_split(labels, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = stratified_split(labels, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip((tr, va, te), other))


def test_stratified_split_needs_three_per_class():
    with pytest.raises(UserError, match="at least 3"):
        stratified_split(np.array([0, 0, 0, 1, 1]))


# ------------------------------------------------------------------------ toon / digits

def test_toon_dataset_sizes_and_stratification(toon_ds):
    assert (len(toon_ds.y_train), len(toon_ds.y_val), len(toon_ds.y_test)) == (600, 200, 200)
    assert toon_ds.input_shape == (*DEFAULT_SIZE, 3) and toon_ds.num_classes == 4
    for y, per_class in ((toon_ds.y_train, 150), (toon_ds.y_val, 50), (toon_ds.y_test, 50)):
        assert y.dtype == np.int32
        assert np.bincount(y, minlength=4).tolist() == [per_class] * 4


def test_toon_splits_are_disjoint(toon_ds):
    def keys(x):
        return {row.tobytes() for row in x.reshape(len(x), -1)}
    tr, va, te = keys(toon_ds.x_train), keys(toon_ds.x_val), keys(toon_ds.x_test)
    assert len(tr) == 600 and not (tr & va) and not (tr & te) and not (va & te)


def test_toon_describe_is_json_and_fingerprint_stable(toon_ds):
    d = toon_ds.describe()
    json.dumps(d)
    assert d["n_train"] == 600 and d["n_val"] == 200 and d["n_test"] == 200
    assert d["image_size"] == list(DEFAULT_SIZE) and d["class_names"] == list(CLASS_NAMES)
    assert d["size_rule"] == "toon default"
    assert len(d["fingerprint"]) == 16
    assert load_dataset("toon", seed=0).fingerprint == toon_ds.fingerprint


def test_toon_custom_size_and_seed():
    ds = load_dataset("toon", image_size=(24, 8), seed=1)
    assert ds.input_shape == (24, 8, 3)
    assert ds.fingerprint != load_dataset("toon", image_size=(24, 8), seed=2).fingerprint


def test_digits_loads():
    ds = load_dataset("digits")
    assert ds.num_classes == 10 and ds.class_names == tuple(str(i) for i in range(10))
    assert ds.input_shape == (*data.DIGITS_SIZE, 3) and ds.x_train.dtype == np.uint8
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert abs(len(ds.y_test) - 0.2 * 1797) < 10
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert set(np.unique(ds.y_val)) == set(range(10))
    assert load_dataset("digits", image_size=(8, 8)).input_shape == (8, 8, 3)


# ---------------------------------------------------------------------------- folders

def _write_folder(root: Path, per_class: dict[str, int], size=(6, 4)) -> Path:
    rng = np.random.default_rng(0)
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            ext = "png" if i % 2 == 0 else "jpg"
            Image.fromarray(arr).save(root / cls / f"img{i}.{ext}")
    return root


def test_folder_happy_path_split_saved_and_reused(tmp_path, cache):
    root = _write_folder(tmp_path / "cogs", {"alpha": 5, "beta": 6, "gamma": 5})
    (root / "notes.txt").write_text("ignored")
    ds = load_dataset(str(root), image_size=(12, 4))
    assert ds.class_names == ("alpha", "beta", "gamma") and ds.num_classes == 3
    assert ds.input_shape == (12, 4, 3) and ds.x_train.dtype == np.uint8
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (10, 3, 3)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == {0, 1, 2}
    [split_file] = cache.glob("split-cogs-*.json")
    saved = json.loads(split_file.read_text())
    assert sorted(saved["train"] + saved["val"] + saved["test"]) == sorted(
        f"{c}/{f.name}" for c in ("alpha", "beta", "gamma") for f in (root / c).iterdir())
    again = load_dataset(str(root), image_size=(12, 4), seed=99)  # another seed: same split
    assert again.fingerprint == ds.fingerprint


def test_folder_changed_since_split_refuses(tmp_path, cache):
    root = _write_folder(tmp_path / "cogs", {"a": 4, "b": 4})
    load_dataset(str(root), image_size=(6, 4))
    _write_folder(root, {"a": 5})  # adds a/img4.png
    with pytest.raises(UserError) as e:
        load_dataset(str(root), image_size=(6, 4))
    [split_file] = cache.glob("*.json")
    assert str(split_file) in str(e.value) and "1 new, 0 gone" in str(e.value)


def test_folder_split_unwritable_is_one_user_error(tmp_path):
    root = _write_folder(tmp_path / "cogs", {"a": 3, "b": 3})
    blocker = tmp_path / "store-dir"
    blocker.write_text("a file where the split folder should be")
    with pytest.raises(UserError, match="cannot save the data split") as e:
        load_dataset(str(root), image_size=(6, 4), split_dir=blocker)
    assert str(blocker) in str(e.value)


def _error(spec: Path) -> str:
    with pytest.raises(UserError) as e:
        load_dataset(str(spec), image_size=(6, 4))
    return str(e.value)


def test_folder_missing(tmp_path):
    assert str(tmp_path / "nope") in _error(tmp_path / "nope")


def test_folder_not_a_directory(tmp_path):
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    assert str(f) in _error(f)


def test_folder_empty(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    msg = _error(tmp_path / "empty")
    assert str(tmp_path / "empty") in msg and "no images" in msg


def test_folder_single_class(tmp_path):
    root = _write_folder(tmp_path / "one", {"only": 4})
    msg = _error(root)
    assert str(root) in msg and "one class" in msg


def test_folder_too_few_images(tmp_path):
    root = _write_folder(tmp_path / "few", {"a": 4, "b": 2})
    msg = _error(root)
    assert str(root) in msg and "'b'" in msg


def test_folder_corrupt_image(tmp_path):
    root = _write_folder(tmp_path / "bad", {"a": 3, "b": 3})
    bad = root / "b" / "broken.png"
    bad.write_bytes(b"definitely not a png")
    msg = _error(root)
    assert str(bad) in msg
    assert not (root / data.SPLIT_FILE).exists()  # no stale split to delete after the fix
    assert not (tmp_path / "cache").exists()


def test_bad_image_size_is_user_error():
    with pytest.raises(UserError):
        load_dataset("digits", image_size=(0, 3))
