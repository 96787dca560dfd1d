"""Post-hoc latent sampling (as in pythae and Ghosh et al., 2020): after training, fit a Gaussian mixture to the
encodings of the training images, where the decoder reads them, and decode its samples instead of the prior's,
which often look more like the data when the aggregate posterior and the prior disagree."""

import torch

from vae_lightning.data.pixels import to_model_input
from vae_lightning.errors import ConfigError


@torch.no_grad()
def encoding(model, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The posterior's point at zero noise, what the decoder reads (B, latent_dim): the encoder's mean for the
    diagonal Gaussian, the flow applied to it (z_K, not z_0) for a flow posterior, h1 with two layers. A model
    with labels encodes with the labels its component chooses from the class indices ``y`` (``encoding_labels``)."""
    mu, logvar = model.encode(x, None if model.labels is None else model.labels.encoding_labels(model, x, y))
    z, _ = model.posterior(mu, logvar, torch.zeros(1, len(mu), model.posterior.latent_dim, device=mu.device))
    return z[0, :, : model.latent_dim]


@torch.no_grad()
def training_encodings(model, pixels: torch.Tensor, labels: torch.Tensor, pixel_mode: str, batch_size: int = 1000
                       ) -> torch.Tensor:
    """:func:`encoding` of every training image (uint8 pixels, as the data module keeps them, with their class
    indices), on the CPU; the images get the model's input transform with a fixed seed."""
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    return torch.cat([encoding(model, to_model_input(chunk, pixel_mode, generator).to(device), y.to(device)).cpu()
                      for chunk, y in zip(pixels.split(batch_size), labels.split(batch_size))])


def gmm_samples(encodings: torch.Tensor, n: int, components: int, seed: int = 0) -> torch.Tensor:
    """``n`` latents drawn, in random order, from a ``components``-component full-covariance Gaussian mixture
    fitted to ``encodings`` (N, D)."""
    from sklearn.mixture import GaussianMixture

    mixture = GaussianMixture(components, covariance_type="full", random_state=seed).fit(encodings.double().numpy())
    z, _ = mixture.sample(n)  # grouped by component
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return torch.as_tensor(z, dtype=torch.float32)[order]


def posthoc_mixture_samples(model, datamodule, n: int, components: int, seed: int = 0,
                              setting: str = "gmm_components") -> torch.Tensor:
    """``n`` latents from a ``components``-component Gaussian mixture fitted to the encodings of the data
    module's training images; more components than images is refused (naming ``setting``) before encoding them."""
    n_train = len(datamodule.splits["train"][0])
    if components > n_train:
        raise ConfigError(f"{setting}={components} is not allowed; the Gaussian mixture is fitted to the {n_train:,} "
                          f"training images, so use at most {n_train:,} components")
    encodings = training_encodings(model, *datamodule.splits["train"], datamodule.pixel_mode)
    return gmm_samples(encodings, n, components, seed)
