"""How 8-bit pixels k in {0..255} become the x the model sees."""

import torch

PIXEL_MODES = ("grey", "dynamic", "static", "dequantize")


def to_model_input(k: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 pixels -> float x.

    * ``grey``: k / 255 in [0, 1];
    * ``dynamic``: a fresh Bernoulli draw with p = k / 255 (dynamic binarisation);
    * ``static``: k / 255 > 0.5 (the same binary image every time);
    * ``dequantize``: (k + u) / 256 with u ~ U[0, 1), so a density on [0, 1] bounds P(k).
    """
    grey = k.float() / 255.0
    if mode == "grey":
        return grey
    if mode == "static":
        return (grey > 0.5).float()
    noise = torch.rand(k.shape, generator=generator, device=k.device if generator is None else "cpu").to(k.device)
    if mode == "dynamic":
        return (noise < grey).float()
    if mode == "dequantize":
        return (k.float() + noise) / 256.0
    raise ValueError(f"pixel mode {mode!r} is not allowed; use one of {PIXEL_MODES}")
