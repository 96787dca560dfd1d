"""A sample-quality score that works offline: the Frechet distance between prior samples and test
images in the feature space of a small digit classifier trained (and cached) by the project.

Not comparable with Inception-based FID: the feature network, its training data and the feature
size (128) all differ. It is comparable between models evaluated with the same cached classifier.
"""

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

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
        log.info("training the feature classifier for the Frechet distance (cached in %s)", cache_dir)
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


@torch.no_grad()
def cached_test_statistics(cache_dir: str | Path, model: DigitClassifier, images: torch.Tensor,
                           labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``mean`` and ``cov`` of the classifier's features of the test images and its ``accuracy`` on them: the same
    for every model scored on one data set, so computed once and kept in ``cache_dir``, named by the classifier's
    weights and the images and labels themselves."""
    weights = content_digest(*model.state_dict().values())

    def compute() -> dict[str, torch.Tensor]:
        features = classifier_features(model, images)
        # the features are float32 values held in float64, so classifying them again in float32 loses nothing
        predictions = model.classify(features.float().to(next(model.parameters()).device)).argmax(-1).cpu()
        mean, cov = feature_statistics(features)
        return {"mean": mean, "cov": cov, "accuracy": (predictions == labels).double().mean()}

    return cached(Path(cache_dir) / f"test_statistics_v2_{weights}_{content_digest(images, labels)}.pt", compute)


@torch.no_grad()
def classifier_features(model: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model.features(chunk.to(device)).double().cpu() for chunk in images.split(batch_size)])


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of a feature set (N, F), in float64."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets (see :func:`frechet_distance_of`)."""
    return frechet_distance_of(*feature_statistics(features_a), *feature_statistics(features_b))


def frechet_distance_of(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor) -> float:
    """||m_a - m_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)).

    Tr((C_a C_b)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix C_a^(1/2) C_b C_a^(1/2), which has the same spectrum and is numerically stable.
    """
    eigvals, eigvecs = torch.linalg.eigh(cov_a)
    sqrt_a = eigvecs @ torch.diag(eigvals.clamp(min=0).sqrt()) @ eigvecs.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mean_a - mean_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross)
