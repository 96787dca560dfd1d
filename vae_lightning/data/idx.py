"""Reading IDX files (the MNIST file format), plain or gzip-compressed, with integrity checks."""

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from vae_lightning.errors import DataIntegrityError

IDX_UBYTE = 0x08


def read_idx(path: str | Path) -> torch.Tensor:
    """The uint8 array stored in an IDX file (``.gz`` is decompressed), checked against its header."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, OSError, zlib.error) as err:
        raise DataIntegrityError(f"{path}: cannot decompress ({err}); the file is truncated or corrupted") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataIntegrityError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != IDX_UBYTE:
        raise DataIntegrityError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    n_dims = raw[3]
    header_len = 4 + 4 * n_dims
    if len(raw) < header_len:
        raise DataIntegrityError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header_len != expected:
        raise DataIntegrityError(
            f"{path}: header promises {expected} bytes of data for shape {shape}, "
            f"file holds {len(raw) - header_len}; the file is truncated or corrupted"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
    return torch.from_numpy(array.copy())


def idx_bytes(array: np.ndarray | torch.Tensor) -> bytes:
    """A uint8 array as the bytes of an uncompressed IDX file."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    data = idx_bytes(array)
    path = Path(path)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
