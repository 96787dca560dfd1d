"""What every trained model gets after its test pass: pictures and the Frechet distance."""

import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

from vae_lightning.analysis.frechet import cached_classifier, cached_test_statistics, content_digest, frechet_distance
from vae_lightning.analysis.pictures import write_pictures
from vae_lightning.analysis.posthoc_sampling import posthoc_mixture_samples
from vae_lightning.console import log, on_rank_zero
from vae_lightning.runs.stopwatch import Stopwatch
from vae_lightning.tracking.loggers import log_image


def classifier_key(data_info: dict[str, Any], train_images: torch.Tensor) -> str:
    """Names the data the classifier learnt from, its content included: the cache is shared by every working
    folder, so two data sets with the same name and size must not share a classifier."""
    origin = "official" if data_info.get("official_mnist") else data_info["source"]
    levels = (train_images * 255).round().to(torch.uint8)
    return f"{data_info['name']}_{origin}_{data_info['n_train']}_{content_digest(levels, digest_size=6)}"


def checked_distance(distance: float) -> float | None:
    """A Fréchet distance, or None (with one line) for what a distance cannot be."""
    if math.isfinite(distance) and distance >= -1e-3:  # zero, up to rounding, is a distance
        return max(distance, 0.0)
    log.error("the Frechet distance came out as %s, which a distance cannot be; not recorded", distance)
    return None


@torch.no_grad()
def sample_quality(model, datamodule, cache_dir: str | Path, n_samples: int, gmm_components: int) -> dict[str, float]:
    """Fréchet distance (classifier features) between n prior samples and the grey-level test images, and between
    n samples of a ``gmm_components``-component Gaussian mixture fitted to the training encodings and the same."""
    train_x, train_y = datamodule.grey("train")
    test_x, test_y = datamodule.grey("test")
    classifier = cached_classifier(cache_dir, classifier_key(datamodule.info, train_x), train_x, train_y)
    test = cached_test_statistics(cache_dir, classifier, test_x, test_y)
    generator = torch.Generator().manual_seed(0)
    samples = torch.cat(
        [model.sample_images(min(1000, n_samples - i), generator=generator).cpu() for i in range(0, n_samples, 1000)]
    )
    distances = {"test/frechet_distance": checked_distance(frechet_distance(classifier, samples, test))}
    z = posthoc_mixture_samples(model, datamodule, n_samples, gmm_components, setting="eval.gmm_components")
    samples = torch.cat([model.decode_images(chunk, y=model.draw_labels(len(chunk), generator)).cpu()
                         for chunk in z.split(1000)])
    distances["test/frechet_distance_gmm"] = checked_distance(frechet_distance(classifier, samples, test))
    metrics = {name: value for name, value in distances.items() if value is not None}
    return {**metrics, "test/classifier_accuracy": float(test["accuracy"])} if metrics else {}


@on_rank_zero
def pictures_and_sample_quality(
    cfg: DictConfig, model, datamodule, out_dir: Path, trainer=None, clock: Stopwatch | None = None
) -> dict[str, float]:
    """After a test pass (rank 0 only): pictures into ``out_dir/pictures`` and, with ``cfg.eval.fid_samples``
    > 0, the sample-quality metrics; with a ``trainer`` the images and metrics also go to its loggers; with a
    ``clock`` the time of each goes to its ``pictures`` and ``frechet`` laps."""
    clock = clock or Stopwatch()
    n_fid_samples = cfg.eval.fid_samples
    was_training = model.training
    model.eval()
    test_x, test_y = datamodule.splits["test"]
    with clock.lap("pictures"):
        variances = model.test_details["mu_variance_per_dim"][: model.latent_dim]  # the first layer's
        pictures = write_pictures(model, test_x, test_y, variances, out_dir / "pictures")
    metrics = {}
    if n_fid_samples > 0:
        with clock.lap("frechet"):
            metrics = sample_quality(model, datamodule, cfg.paths.cache_dir, n_fid_samples, cfg.eval.gmm_components)
    model.train(was_training)
    if trainer is not None:
        for name, image in pictures.items():
            log_image(trainer, f"final/{name}", image)
        publish_summary(trainer.loggers, metrics)
    return metrics


def publish_summary(loggers: list[Logger], metrics: dict[str, float]) -> None:
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(metrics)
        else:
            logger.log_metrics(metrics)
