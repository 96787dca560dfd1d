"""The conventional single-file PyTorch VAE script, for `make bench`'s whole-process comparison.

    python benchmarks/plain_vae.py [--epochs 3] [--data-dir data]

What a user would write without this project (in the style of PyTorch's own VAE example): torchvision's
MNIST with ToTensor, a shuffled DataLoader of 128, a 784-400-20 MLP encoder and decoder, Bernoulli pixels
with dynamic binarisation, Adam 1e-3; it trains for --epochs and then runs a test pass (the negative ELBO on
the 10,000 test images). It reads MNIST's IDX files from DATA_DIR/MNIST/raw (no download; bench.py points it at them).
"""

import argparse

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader


class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def loss_function(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    recon = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon + kl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    torch.manual_seed(1)
    transform = torchvision.transforms.ToTensor()
    train = torchvision.datasets.MNIST(args.data_dir, train=True, download=False, transform=transform)
    test = torchvision.datasets.MNIST(args.data_dir, train=False, download=False, transform=transform)
    train_loader = DataLoader(train, batch_size=128, shuffle=True)
    test_loader = DataLoader(test, batch_size=1000)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for x, _ in train_loader:
            x = torch.bernoulli(x)
            optimizer.zero_grad()
            logits, mu, logvar = model(x)
            loss = loss_function(logits, x, mu, logvar)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch}: train -ELBO {total / len(train):.2f}")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, _ in test_loader:
            x = torch.bernoulli(x)
            logits, mu, logvar = model(x)
            total += loss_function(logits, x, mu, logvar).item()
    print(f"test -ELBO {total / len(test):.2f}")


if __name__ == "__main__":
    main()
