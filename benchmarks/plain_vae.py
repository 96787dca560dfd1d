"""The conventional single-file PyTorch VAE script, for `make bench`'s whole-process comparisons.

    python benchmarks/plain_vae.py [--epochs 3] [--latent-dim 20] [--likelihood bernoulli] [--k 0] [--data-dir data]

What a user would write without this project (in the style of PyTorch's own VAE example): torchvision's
MNIST with ToTensor, a shuffled DataLoader of 128, a 784-400-LATENT MLP encoder and decoder, Adam 1e-3, and
either Bernoulli pixels with dynamic binarisation or a discretised logistic over the 256 pixel levels; it trains
for --epochs and then runs a test pass over the 10,000 test images: the negative ELBO, or with --k > 0 the
importance-weighted bound with k samples (what ``python -m vae_lightning.train`` reports as ``test/nll_iw``).
It reads MNIST's IDX files from DATA_DIR/MNIST/raw (no download; bench.py points it at them).
"""

import argparse
import math

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader


class VAE(nn.Module):
    def __init__(self, latent_dim: int, outputs_per_pixel: int) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, latent_dim), nn.Linear(400, latent_dim)
        self.fc3, self.fc4 = nn.Linear(latent_dim, 400), nn.Linear(400, 784 * outputs_per_pixel)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc4(F.relu(self.fc3(z)))


def bernoulli_log_prob(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)


def logistic_log_prob(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log P(level) of x = level / 255 under a logistic discretised to the 256 levels (Salimans et al., 2017)."""
    mean, log_scale = torch.sigmoid(out[..., :784]), out[..., 784:].clamp(min=-7.0)
    inv_scale = torch.exp(-log_scale)
    cdf_up = torch.where(x > 0.999, 1.0, torch.sigmoid((x + 0.5 / 255 - mean) * inv_scale))
    cdf_low = torch.where(x < 0.001, 0.0, torch.sigmoid((x - 0.5 / 255 - mean) * inv_scale))
    return torch.log((cdf_up - cdf_low).clamp(min=1e-12)).sum(-1)


def neg_elbo(model: VAE, x: torch.Tensor, log_prob) -> torch.Tensor:
    mu, logvar = model.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
    return (kl - log_prob(model.decode(z), x)).sum()


def neg_iw_bound(model: VAE, x: torch.Tensor, log_prob, k: int) -> torch.Tensor:
    """-log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), summed over the batch."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(k, *mu.shape)
    z = mu + eps * std
    log_q = (-0.5 * eps.pow(2) - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p_z = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_w = log_prob(model.decode(z), x.expand(k, *x.shape)) + log_p_z - log_q
    return -(torch.logsumexp(log_w, dim=0) - math.log(k)).sum()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--likelihood", choices=["bernoulli", "logistic"], default="bernoulli")
    parser.add_argument("--k", type=int, default=0, help="importance samples for the test pass (0: the ELBO)")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    torch.manual_seed(1)
    transform = torchvision.transforms.ToTensor()
    train = torchvision.datasets.MNIST(args.data_dir, train=True, download=False, transform=transform)
    test = torchvision.datasets.MNIST(args.data_dir, train=False, download=False, transform=transform)
    train_loader = DataLoader(train, batch_size=128, shuffle=True)
    test_loader = DataLoader(test, batch_size=100 if args.k else 1000)
    binarise = args.likelihood == "bernoulli"
    log_prob = bernoulli_log_prob if binarise else logistic_log_prob
    model = VAE(args.latent_dim, 1 if binarise else 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for x, _ in train_loader:
            x = torch.bernoulli(x) if binarise else x
            optimizer.zero_grad()
            loss = neg_elbo(model, x.view(-1, 784), log_prob)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch}: train -ELBO {total / len(train):.2f}")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, _ in test_loader:
            x = (torch.bernoulli(x) if binarise else x).view(-1, 784)
            total += (neg_iw_bound(model, x, log_prob, args.k) if args.k else neg_elbo(model, x, log_prob)).item()
    print(f"test {'-log p(x), k = ' + str(args.k) if args.k else '-ELBO'} {total / len(test):.2f}")


if __name__ == "__main__":
    main()
