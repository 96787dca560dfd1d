"""Pictures of what a trained VAE learned, written as PNG files (and returned for loggers).

Each function takes the model in eval mode and returns a (3, H, W) image tensor in [0, 1]. A model with labels
encodes and decodes each test digit with its own label (``y``, class indices).
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

PAD = 2


def one_hot(model, y: torch.Tensor | None) -> torch.Tensor | None:
    """The one-hot labels a model with labels reads, on its device; None for a model without."""
    return None if model.labels is None or y is None else model.labels.one_hot(y.to(model.device))


def reconstruction_grid(model, x: torch.Tensor, n_per_row: int, y: torch.Tensor | None = None) -> torch.Tensor:
    """Inputs in odd rows, their reconstructions (the likelihood's mean at z = mu) below them."""
    with torch.no_grad():
        mu, _ = model.encode(x, one_hot(model, y))
        recon = model.likelihood.mean(model.decode(mu, one_hot(model, y)))
    rows = []
    for start in range(0, len(x), n_per_row):
        rows += [x[start : start + n_per_row], recon[start : start + n_per_row]]
    return make_grid(torch.cat(rows).clamp(0, 1), nrow=n_per_row, padding=2, pad_value=1.0)


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    return make_grid(images.clamp(0, 1).cpu(), nrow=nrow, padding=PAD, pad_value=1.0)


@torch.no_grad()
def prior_samples(model, n: int = 64, seed: int = 0) -> torch.Tensor:
    images = model.sample_images(n, generator=torch.Generator().manual_seed(seed))
    return _grid(images, nrow=int(math.sqrt(n)) or 1)


@torch.no_grad()
def reconstructions(model, x: torch.Tensor, y: torch.Tensor, n: int = 32) -> torch.Tensor:
    return reconstruction_grid(model, x[:n].to(model.device), 8, y[:n]).cpu()


@torch.no_grad()
def class_styles(model, x: torch.Tensor, y: torch.Tensor, n: int = 8) -> torch.Tensor:
    """A model with labels: the first row n test digits, then row c: each digit's z (its style, from q(z|x, y)
    at its own label) decoded as class c, as in Kingma et al.'s (2014) figure 1."""
    mu, _ = model.encode(x[:n].to(model.device), one_hot(model, y[:n]))
    classes = torch.arange(model.labels.n_classes, device=model.device).repeat_interleave(n)
    decoded = model.likelihood.mean(model.decode(mu.repeat(model.labels.n_classes, 1), model.labels.one_hot(classes)))
    return _grid(torch.cat([x[:n].to(model.device), decoded]), nrow=n)


@torch.no_grad()
def traversals(
    model, x: torch.Tensor, y: torch.Tensor, mu_variance_per_dim: list[float], n_dims: int = 8, steps: int = 11
) -> torch.Tensor:
    """Row d: the latent dimensions most used by the encoder (by the variance of E_q[z_d] over the test set,
    the active-unit statistic) swept from one digit's mu across the prior's marginal of that dimension, from its
    0.135% to its 99.865% quantile (-3 to 3 for N(0, I))."""
    dims = sorted(range(len(mu_variance_per_dim)), key=lambda d: -mu_variance_per_dim[d])[:n_dims]
    label = one_hot(model, y[:1])
    mu, _ = model.encode(x[:1].to(model.device), label)
    low, high = model.prior.marginal_quantiles(torch.tensor([0.00135, 0.99865])).to(model.device)
    z = mu.repeat(len(dims) * steps, 1)
    for row, dim in enumerate(dims):
        z[row * steps : (row + 1) * steps, dim] = torch.linspace(low[dim].item(), high[dim].item(), steps)
    return _grid(model.likelihood.mean(model.decode(z, label)), nrow=steps)


@torch.no_grad()
def interpolations(model, x: torch.Tensor, y: torch.Tensor, pairs: int = 6, steps: int = 10) -> torch.Tensor:
    """Row i: decoded points on the line between the codes (mu) of two test digits (with labels: decoded with the
    first digit's label)."""
    labels = one_hot(model, y[: 2 * pairs])
    mu, _ = model.encode(x[: 2 * pairs].to(model.device), labels)
    weights = torch.linspace(0, 1, steps, device=model.device).view(1, steps, 1)
    z = mu[0::2].unsqueeze(1) * (1 - weights) + mu[1::2].unsqueeze(1) * weights
    row_labels = None if labels is None else labels[0::2].repeat_interleave(steps, 0)
    return _grid(model.likelihood.mean(model.decode(z.reshape(-1, model.latent_dim), row_labels)), nrow=steps)


@torch.no_grad()
def manifold(model, n: int = 20) -> torch.Tensor:
    """For latent_dim == 2: decoded z on an n x n grid of the prior's marginal quantiles, 5% to 95%
    (``Prior.marginal_quantiles``: exact for N(0, I), estimated from samples for a learned prior)."""
    quantiles = model.prior.marginal_quantiles(torch.linspace(0.05, 0.95, n))
    grid_y, grid_x = torch.meshgrid(quantiles[:, 1].flip(0), quantiles[:, 0], indexing="ij")
    z = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1).to(model.device)
    return _grid(model.likelihood.mean(model.decode(z)), nrow=n)


@torch.no_grad()
def encode_means(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([model.encode(chunk.to(model.device), one_hot(model, labels))[0].cpu()
                      for chunk, labels in zip(x.split(batch_size), y.split(batch_size))])


def latent_scatter(mu: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Test encodings coloured by class; PCA to 2-D when latent_dim > 2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = "test encodings E_q[z] (latent_dim = 2)"
    points = mu
    if mu.shape[1] > 2:
        centred = mu - mu.mean(0)
        _, s, v = torch.linalg.svd(centred, full_matrices=False)
        points = centred @ v[:2].T
        share = (s[:2].pow(2).sum() / s.pow(2).sum()).item()
        title = f"test encodings E_q[z], PCA of {mu.shape[1]} dims ({share:.0%} of variance)"
    elif mu.shape[1] == 1:
        points = torch.cat([mu, torch.zeros_like(mu)], dim=1)
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=120)
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7, vmin=-0.5, vmax=9.5)
    fig.colorbar(scatter, ax=ax, ticks=range(10), label="class")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_png(image: torch.Tensor, path: Path, scale: int = 2) -> None:
    """Save with nearest-neighbour upscaling, so 28-pixel digits are big enough to look at."""
    if scale > 1:
        image = F.interpolate(image.unsqueeze(0), scale_factor=scale, mode="nearest").squeeze(0)
    save_image(image, path)


def write_pictures(
    model, x: torch.Tensor, labels: torch.Tensor, mu_variance_per_dim: list[float], out_dir: Path
) -> dict:
    """Every picture for a trained model into ``out_dir``; returns name -> image tensor."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "samples": prior_samples(model),
        "reconstructions": reconstructions(model, x, labels),
        "traversals": traversals(model, x, labels, mu_variance_per_dim),
        "interpolations": interpolations(model, x, labels),
    }
    if model.labels is not None:
        images["class_styles"] = class_styles(model, x, labels)
    if model.latent_dim == 2:
        images["manifold"] = manifold(model)
    for name, image in images.items():
        save_png(image, out_dir / f"{name}.png")
    latent_scatter(encode_means(model, x, labels), labels.cpu(), out_dir / "latent_space.png")
    return images
