"""A run folder: claimed when the command line names it, its ``status.json``, and whether a folder takes files.

While a run is ``starting`` or ``running`` its status names its process and host, so whoever reads it later
recognises a run that died without a word (``kill -9``, a lost node) and calls it ``crashed``.

Importable without torch or Lightning: the command line uses it before the heavy imports.
"""

import atexit
import errno
import json
import os
import socket
import tempfile
from pathlib import Path

from vae_lightning.console import is_rank_zero
from vae_lightning.errors import UNWRITABLE, ConfigError
from vae_lightning.user_cache import process_alive

#: the file that marks a folder as claimed by a run (rank zero writes the run's status into it)
STATUS_FILE = "status.json"


#: the file that marks a run folder as being resumed, naming the process (removed when that process ends)
RESUMING_FILE = "resuming.json"

#: the statuses of a run that has not ended
LIVE = ("starting", "running")


def _status(status: str, error: str | None) -> str:
    record = {"status": status, "error": error}
    if status in LIVE:
        record |= {"pid": os.getpid(), "host": socket.gethostname()}
    return json.dumps(record, indent=2) + "\n"


def write_status(output_dir: Path, status: str, error: str | None = None) -> None:
    if not is_rank_zero():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / STATUS_FILE).write_text(_status(status, error))


def read_status(folder: Path, name: str = STATUS_FILE) -> dict:
    """A run folder's status (``unknown`` without one, ``unreadable`` if damaged); a run recorded as live whose
    process is gone from this host is ``crashed``. ``name``: another record of the same form."""
    try:
        record = json.loads((folder / name).read_text())
    except FileNotFoundError:
        return {"status": "unknown", "error": None}
    except (OSError, ValueError) as err:
        return {"status": "unreadable", "error": f"{name}: {err}"}
    live, here = record.get("status") in LIVE and "pid" in record, record.get("host") == socket.gethostname()
    if live and here and not process_alive(record["pid"]):
        return {"status": "crashed", "error": f"process {record['pid']} ended without recording how"}
    return record


def unquoted(value: str) -> str:
    """A path setting's value as Hydra reads it: without the quotes around it (``resume='/runs/a b'``)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1].replace("\\" + value[0], value[0])
    return value


def claim_resume(run_dir: Path) -> None:
    """One ``resume=`` of a run at a time: :data:`RESUMING_FILE` names this process until it ends; a second
    resume is refused while that process lives (one whose process died leaves a record that is taken over). A run
    folder that cannot be written (a shared, read-only results folder) is resumed without the record."""
    marker = run_dir / RESUMING_FILE
    holder = read_status(run_dir, RESUMING_FILE)
    if holder["status"] in LIVE:
        raise ConfigError(f"resume={str(run_dir)!r} is not allowed; process {holder.get('pid')} on {holder.get('host')} "
                          "is resuming that run now: wait for it, or stop it")
    try:
        marker.unlink(missing_ok=True)  # a record left by a process that died
        with open(marker, "x") as file:
            file.write(_status("running", None))
    except FileExistsError:  # another resume took it in the meantime
        raise ConfigError(f"resume={str(run_dir)!r} is not allowed; another process is resuming that run now") from None
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        return
    atexit.register(marker.unlink, missing_ok=True)


def check_writable(path: str, key: str) -> None:
    """The folder, or its nearest existing parent while it does not exist, must take a file (tried for real: root
    passes os.access); nothing is left behind."""
    folder = Path(path).expanduser()
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={path!r} is not allowed; it is not a writable folder ({err.strerror})") from None


def check_folder(path: str, key: str) -> None:
    """The folder must be one, or be creatable (its nearest existing parent a folder); it need not be writable."""
    folder = Path(path).expanduser()
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"{key}={path!r} is not allowed; {existing} is not a folder")


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
    folder.mkdir(parents=True, exist_ok=True)
    if not mark:
        return
    try:
        descriptor = os.open(folder / STATUS_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ConfigError(f"{key}={path!r} is not allowed; another run has just started in it") from None
    with os.fdopen(descriptor, "w") as status:
        status.write(_status("starting", None))
