"""A run folder: claimed when the command line names it, its ``status.json``, and whether a folder takes files.

Importable without torch or Lightning: the command line uses it before the heavy imports.
"""

import json
import os
import tempfile
from pathlib import Path

from vae_lightning.console import is_rank_zero
from vae_lightning.errors import ConfigError

#: the file that marks a folder as claimed by a run (rank zero writes the run's status into it)
STATUS_FILE = "status.json"


def write_status(output_dir: Path, status: str, error: str | None = None) -> None:
    if not is_rank_zero():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / STATUS_FILE).write_text(json.dumps({"status": status, "error": error}, indent=2) + "\n")


def check_writable(path: str, key: str) -> None:
    """The folder must exist or be creatable, and take a file (tried for real: root passes os.access)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={path!r} is not allowed; it is not a writable folder ({err.strerror})") from None


def claim_folder(path: str, key: str, mark: bool = True) -> None:
    """A folder named on the command line must be new or empty. A run folder (``mark``) is claimed at once
    (``status.json``, created exclusively), so a second run started into it at the same moment is refused too."""
    folder = Path(path).expanduser()
    if folder.exists() and any(folder.iterdir()):
        held = ", ".join(sorted(p.name for p in folder.iterdir())[:4])
        raise ConfigError(
            f"{key}={path!r} is not allowed; it already holds files ({held}) and a run never writes into a folder "
            "it did not make (name a new folder, or leave it out for a fresh one)"
        )
    check_writable(str(folder), key)
    if not mark:
        return
    try:
        descriptor = os.open(folder / STATUS_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ConfigError(f"{key}={path!r} is not allowed; another run has just started in it") from None
    with os.fdopen(descriptor, "w") as status:
        status.write('{"status": "starting", "error": null}\n')
