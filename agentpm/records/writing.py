"""Writing files without ever losing a user's data: temporary file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agentpm.errors import WriteError


def _temporary_copy(path: Path, payload: bytes, mode: int) -> str:
    """A complete, fsynced temporary file beside ``path`` holding ``payload``; returns its name."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise WriteError(
            f"{path}: cannot write ({exc.strerror}); check the folder exists and is writable"
        ) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot write ({exc.strerror})") from None
    return temporary


def _new_file_mode() -> int:
    # mkstemp makes 0600 files; a new file gets the usual mode under the user's umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path | str, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new file, never half.

    Keeps the mode of an existing file.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    mode = path.stat().st_mode & 0o7777 if path.exists() else _new_file_mode()
    temporary = _temporary_copy(path, payload, mode)
    try:
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot write ({exc.strerror})") from None


def write_new_file(path: Path | str, data: str | bytes, overwrite: bool = False) -> None:
    """Write ``path``, refusing an existing file unless ``overwrite`` is given."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise WriteError(
            f"{path}: already exists; agentpm never overwrites a file (pass --force to replace it, "
            "or choose another path)"
        )
    if overwrite:
        atomic_write(path, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = _temporary_copy(path, payload, _new_file_mode())
    try:
        # link() fails if the name exists: a complete new file appears, or nothing does.
        os.link(temporary, path)
    except FileExistsError:
        raise WriteError(f"{path}: already exists; agentpm never overwrites a file") from None
    except OSError as exc:
        raise WriteError(f"{path}: cannot create ({exc.strerror})") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
