"""How 8-bit pixels (levels 0..255) become the x the model sees."""

from typing import Literal

import torch

#: what a likelihood asks the data module for (``Likelihood.pixels``)
PixelMode = Literal["grey", "dynamic", "static", "dequantize"]


def expected_model_input(pixels: torch.Tensor, mode: str) -> torch.Tensor:
    """E[x] of :func:`to_model_input` over its noise: p / 255 (grey and dynamic), the static threshold, or
    (p + 1/2) / 256 (dequantised)."""
    if mode == "dequantize":
        return (pixels.float() + 0.5) / 256.0
    return to_model_input(pixels, "grey" if mode == "dynamic" else mode)


def to_model_input(pixels: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 pixels p -> float x.

    * ``grey``: p / 255 in [0, 1];
    * ``dynamic``: a fresh Bernoulli draw with probability p / 255 (dynamic binarisation);
    * ``static``: p / 255 > 0.5 (the same binary image every time);
    * ``dequantize``: (p + u) / 256 with u ~ U[0, 1), so a density on [0, 1] bounds P(p). x can be
      exactly 0 (p = 0, u = 0), and float32 rounds (p + u) up to p + 1 for u close to 1 (x = 1 for p = 255):
      a density on [0, 1] must be finite at both ends.
    """
    grey = pixels.float() / 255.0
    if mode == "grey":
        return grey
    if mode == "static":
        return (grey > 0.5).float()
    if mode == "dynamic" and generator is None:  # training batches: one kernel, on every step
        return torch.bernoulli(grey)
    device = pixels.device
    noise = torch.rand(pixels.shape, generator=generator, device=device if generator is None else "cpu").to(device)
    if mode == "dynamic":  # the fixed draw of the evaluation sets (from a seeded generator)
        return (noise < grey).float()
    if mode == "dequantize":
        return (pixels.float() + noise) / 256.0
    raise ValueError(f"pixel mode {mode!r} is not one of {PixelMode}")
