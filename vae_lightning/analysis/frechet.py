"""A sample-quality score that works offline: the Fréchet distance (torchmetrics') between prior samples and test
images in the feature space of a small digit classifier trained (and cached) by the project.

Not comparable with Inception-based FID: the feature network, its training data and the feature
size (128) all differ. It is comparable between models evaluated with the same cached classifier.
"""

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from vae_lightning.console import log
from vae_lightning.user_cache import cached


class DigitClassifier(nn.Module):
    """Two conv blocks and a 128-unit feature layer; about 99% test accuracy on MNIST after 3 epochs."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU(),
        )
        self.classify = nn.Linear(self.feature_dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int | None = None, batch_size: int = 128, seed: int = 0
) -> DigitClassifier:
    """Fit the classifier on grey-level images in [0, 1] (N, 1, 28, 28); by default for at least
    3 epochs and 20,000 examples (more passes over small data sets)."""
    epochs = epochs or max(3, -(-20_000 // len(labels)))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    with torch.enable_grad():
        _fit(model, optimizer, images, labels, epochs, batch_size, generator)
    return model.eval()


def _fit(model, optimizer, images, labels, epochs: int, batch_size: int, generator: torch.Generator) -> None:
    for _ in range(epochs):
        for index in torch.randperm(len(labels), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def cached_classifier(
    cache_dir: str | Path, key: str, images: torch.Tensor, labels: torch.Tensor
) -> DigitClassifier:
    """The classifier for data set ``key``, trained once and kept in ``cache_dir`` (weights only)."""

    def train() -> dict[str, torch.Tensor]:
        log.info("training the feature classifier for the Frechet distance, once (about a minute on 2 CPU cores; "
                 "cached in %s)", cache_dir)
        return train_classifier(images, labels).state_dict()

    model = DigitClassifier()
    model.load_state_dict(cached(Path(cache_dir) / f"digit_classifier_v3_{key}.pt", train))
    return model.eval()


def content_digest(*tensors: torch.Tensor, digest_size: int = 8) -> str:
    """A short hash of the tensors' bytes: names cache files after what they were computed from."""
    hasher = hashlib.blake2b(digest_size=digest_size)
    for tensor in tensors:
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


class ClassifierFeatures(nn.Module):
    """The classifier's feature layer, as torchmetrics' Fréchet distance takes a feature extractor."""

    def __init__(self, classifier: DigitClassifier) -> None:
        super().__init__()
        self.classifier, self.num_features = classifier, classifier.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images.to(next(self.classifier.parameters()).device))


#: the Fréchet metric's state that describes the test images
REAL_STATE = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def frechet_metric(classifier: DigitClassifier) -> FrechetInceptionDistance:
    """Computed by one process (rank 0 under DDP) on all its samples: no synchronisation across processes,
    which would wait for ranks that never compute it."""
    return FrechetInceptionDistance(feature=ClassifierFeatures(classifier), reset_real_features=False,
                                    sync_on_compute=False)


@torch.no_grad()
def cached_test_statistics(cache_dir: str | Path, model: DigitClassifier, images: torch.Tensor,
                           labels: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """The Fréchet metric's state for the test images (:data:`REAL_STATE`) and the classifier's ``accuracy`` on
    them: the same for every model scored on one data set, so computed once and kept in ``cache_dir``, named by
    the classifier's weights and the images and labels themselves."""
    weights = content_digest(*model.state_dict().values())

    def compute() -> dict[str, torch.Tensor]:
        metric = frechet_metric(model)
        correct = 0
        for chunk, chunk_labels in zip(images.split(batch_size), labels.split(batch_size)):
            metric.update(chunk, real=True)
            correct += int((model(chunk).argmax(-1).cpu() == chunk_labels).sum())
        return {**{name: getattr(metric, name) for name in REAL_STATE},
                "accuracy": torch.tensor(correct / len(labels), dtype=torch.float64)}

    return cached(Path(cache_dir) / f"test_statistics_v3_{weights}_{content_digest(images, labels)}.pt", compute)


@torch.no_grad()
def frechet_distance(classifier: DigitClassifier, images: torch.Tensor, test_statistics: dict[str, torch.Tensor],
                     batch_size: int = 1000) -> float:
    """The Fréchet distance between Gaussians fitted to the classifier's features of ``images`` and of the test
    images (torchmetrics' ``FrechetInceptionDistance`` with this classifier as its feature extractor)."""
    metric = frechet_metric(classifier)
    for name in REAL_STATE:
        setattr(metric, name, test_statistics[name])
    for chunk in images.split(batch_size):
        metric.update(chunk, real=False)
    return float(metric.compute())
