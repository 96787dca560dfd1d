"""Batching tensors that are already in memory: one index operation per batch, no per-image work.

``IndexBatchSampler`` yields index tensors (a whole batch at a time) and shards them across DDP
ranks itself, so the DataLoader runs with ``batch_size=None`` and Lightning's sampler replacement is
switched off (``trainer.use_distributed_sampler=false``).
"""

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """``dataset[index_tensor]`` returns the batch ``(images[index], labels[index], index)``.

    The example indices travel with the batch so evaluation can give each example its own fixed noise.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = index.to(self.labels.device)
        return self.images[index], self.labels[index], index


class IndexBatchSampler(Sampler[torch.Tensor]):
    """Batches of indices into ``n`` examples for one DDP rank.

    Training (``shuffle=True``): a permutation drawn from ``seed + epoch`` (the same on every rank),
    trimmed to a multiple of ``world_size`` and dealt out round-robin, so each example is seen once per
    epoch by exactly one rank. Evaluation (``shuffle=False``): rank r takes examples r, r + W, ... with
    nothing repeated or dropped, so metrics summed over ranks equal the single-process ones.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        extra: tuple[torch.Tensor, int] | None = None,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.extra = extra
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._skip = 0  # batches to skip once, when resuming mid-epoch

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """The next iteration continues epoch ``epoch`` after its first ``batches_done`` batches."""
        self.epoch, self._skip = epoch, batches_done

    def _rank_indices(self) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator)
            order = order[: self.n - self.n % self.world_size]
        else:
            order = torch.arange(self.n)
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[torch.Tensor]:
        indices = self._rank_indices()
        start, self._skip = self._skip, 0
        for i in range(start, len(self)):
            batch = indices[i * self.batch_size : (i + 1) * self.batch_size]
            yield batch if self.extra is None else torch.cat([batch, self._extra(i)])

    def _extra(self, i: int) -> torch.Tensor:
        """The ``extra`` indices added to batch i: the next ones of a per-epoch order of the subset, cycling, each
        rank its own."""
        subset, size = self.extra
        order = subset[torch.randperm(len(subset), generator=torch.Generator().manual_seed(self.seed + self.epoch))]
        start = (i * self.world_size + self.rank) * size
        return order[torch.arange(start, start + size) % len(order)]

    def __len__(self) -> int:
        n_rank = len(range(self.rank, self.n - (self.n % self.world_size if self.shuffle else 0), self.world_size))
        return -(-n_rank // self.batch_size)


class ResumableLoader(DataLoader):
    """A DataLoader whose position Lightning stores in checkpoints and restores on resume.

    Lightning prefetches a batch ahead, so the position is taken from the training loop's own count
    of completed batches (``progress``), not from what the iterator has handed out.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches_done = self.progress()
        return {"epoch": epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume_at(state["epoch"], state["batches_done"])


def tensor_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[], tuple[int, int]] | None = None,
    extra: tuple[torch.Tensor, int] | None = None,
) -> DataLoader:
    """Batches of in-memory tensors; with ``progress`` (epoch, batches done) the loader is resumable; with
    ``extra`` (subset, size), each batch also takes ``size`` indices of ``subset`` (:class:`IndexBatchSampler`)."""
    sampler = IndexBatchSampler(len(labels), batch_size, shuffle, seed, rank, world_size, extra)
    # Its own generator: otherwise every new iterator draws a base seed from the global RNG, and a run
    # resumed mid-epoch would draw different training noise than one never stopped.
    options = dict(sampler=sampler, batch_size=None, num_workers=0, generator=torch.Generator().manual_seed(seed))
    dataset = TensorBatches(images, labels)
    if progress is not None:
        return ResumableLoader(dataset, progress=progress, **options)
    return DataLoader(dataset, **options)
