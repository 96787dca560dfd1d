"""The user cache: what is computed or fetched once and shared by every run and working folder.

Every entry is written atomically beside a digest of its bytes and the versions it was made with, and verified on
every read: a damaged, truncated or foreign entry is never used, only computed again (one warning). Runs that miss
the same entry at once take turns (a lock file), so the work is done once.
"""

import errno
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs

from vae_lightning.console import log
from vae_lightning.errors import UNWRITABLE, ConfigError

#: what an entry depends on besides its inputs (named in its file name): the format of this module
FORMAT = "vae_lightning-cache-1"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM
    return True


def user_cache_dir() -> Path:
    """``$VAE_LIGHTNING_CACHE_DIR``, else the platform's user cache (``$XDG_CACHE_HOME/vae_lightning`` on Linux)."""
    if os.environ.get("VAE_LIGHTNING_CACHE_DIR"):
        return Path(os.environ["VAE_LIGHTNING_CACHE_DIR"]).expanduser()
    return Path(platformdirs.user_cache_dir("vae_lightning", appauthor=False))


def _stamp(data: bytes) -> str:
    import torch

    return f"{hashlib.sha256(data).hexdigest()} {FORMAT} torch-{torch.__version__}\n"


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def read_entry(path: Path) -> Any | None:
    """The tensors kept at ``path`` (weights-only), or None when there is none or it fails its digest."""
    import torch

    if not path.exists():
        return None
    try:
        data = path.read_bytes()
        if _digest_file(path).read_text() != _stamp(data):
            raise ValueError("its digest or versions do not match")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # a missing digest, a flipped byte, a truncated file, pickled code: never used
        reason = " ".join(str(err).split())[:120]
        log.warning("the cached %s cannot be used (%s); rebuilding it", path, reason)
        path.unlink(missing_ok=True)
        _digest_file(path).unlink(missing_ok=True)
        return None


def write_entry(path: Path, value: Any) -> None:
    """Save ``value`` (tensors and plain values) at ``path`` with its digest, each file replaced in one step."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    data = buffer.getvalue()
    for target, content in ((path, data), (_digest_file(path), _stamp(data).encode())):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        tmp.replace(target)


@contextmanager
def writable_cache(cache_dir: str | Path) -> Iterator[None]:
    """A folder of the cache that cannot be written, said in one line naming ``paths.cache_dir``."""
    try:
        yield
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        raise ConfigError(
            f"paths.cache_dir={str(cache_dir)!r} is not allowed; {err.filename or cache_dir} cannot be written "
            f"({err.strerror}): set VAE_LIGHTNING_CACHE_DIR to a writable folder"
        ) from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(path.with_name(path.name + ".lock"))):
        yield


def cached(path: str | Path, compute: Callable[[], Any]) -> Any:
    """The entry at ``path``: read and verified, else computed once (other runs wait for it) and kept."""
    path = Path(path)
    with writable_cache(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            value = read_entry(path)
            if value is None:
                value = compute()
                write_entry(path, value)
    return value
