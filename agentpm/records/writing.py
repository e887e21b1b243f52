"""Writing files without ever losing a user's data: temporary file, fsync, rename.

Edits in place keep what makes the file the user's: a symlink is followed and its target is
edited (the link stays a link); mode, owner, group and extended attributes are carried over to
the new file; a file with other hard links is refused rather than split from them; and a file
that changed since it was read is not overwritten. Only regular files are ever replaced: a
FIFO, a device or a socket at the target is refused. The temporary file is removed on every
way out, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from agentpm.errors import WriteError

#: Output paths that mean "write to the terminal or pipe", not "replace a file".
STDOUT_NAMES = ("-", "/dev/stdout")


def _temporary_copy(path: Path, payload: bytes, mode: int, sync: bool = True) -> str:
    """A complete temporary file beside ``path`` holding ``payload``, fsynced unless the caller
    syncs a whole batch itself; returns its name."""
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
            if sync:
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteError(f"{path}: cannot write ({exc.strerror})") from None
        raise
    return temporary


def _new_file_mode() -> int:
    # mkstemp makes 0600 files; a new file gets the usual mode under the user's umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _carry_over(source: os.stat_result, target: str, temporary: str) -> None:
    """Give the new file the old one's owner, group and extended attributes (mode is set already)."""
    try:
        if (source.st_uid, source.st_gid) != (os.getuid(), os.getgid()):
            os.chown(temporary, source.st_uid, source.st_gid)
    except (OSError, AttributeError) as exc:
        raise WriteError(
            f"{target}: cannot keep the file's owner and group ({getattr(exc, 'strerror', exc)}); "
            "file left unchanged — run as its owner"
        ) from None
    if hasattr(os, "listxattr"):
        try:
            for name in os.listxattr(target):
                os.setxattr(temporary, name, os.getxattr(target, name))
        except OSError as exc:
            if exc.errno not in (getattr(os, "ENOTSUP", 95), 95):
                raise WriteError(
                    f"{target}: cannot keep the file's extended attributes ({exc.strerror}); file left unchanged"
                ) from None


def fingerprint(path: Path | str) -> tuple[int, int, str] | None:
    """(size, mtime, sha256) of a file as it is now, or None when it is gone."""
    try:
        info = os.stat(path)
        with open(path, "rb") as stream:
            digest = hashlib.sha256(stream.read()).hexdigest()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, digest


def atomic_write(path: Path | str, data: str | bytes, expected: tuple[int, int, str] | None = None) -> None:
    """Replace the file at ``path`` with ``data`` in one step: readers see the old or the new
    file, never half. ``expected`` is the file's :func:`fingerprint` when it was read: if the
    file changed since, nothing is written (:class:`WriteError`)."""
    given = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        info: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise WriteError(f"{given}: cannot write ({exc.strerror})") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise WriteError(f"{given}: is {_kind(info.st_mode)}; agentpm replaces only regular files")
        if info.st_nlink > 1:
            raise WriteError(
                f"{given}: has {info.st_nlink} hard links; replacing it would split them, so it is left "
                "unchanged (edit it by hand, or copy it to an unlinked file)"
            )
    temporary = _temporary_copy(target, payload, stat.S_IMODE(info.st_mode) if info else _new_file_mode())
    replaced = False
    try:
        if info is not None:
            _carry_over(info, str(target), temporary)
        if expected is not None and fingerprint(target) != expected:
            raise WriteError(
                f"{given}: changed while agentpm was working on it; file left as the other writer left it "
                "— run the command again"
            )
        os.replace(temporary, target)
        replaced = True
    except OSError as exc:
        raise WriteError(f"{given}: cannot write ({exc.strerror})") from None
    finally:
        if not replaced:
            Path(temporary).unlink(missing_ok=True)


def write_new_file(path: Path | str, data: str | bytes, overwrite: bool = False) -> None:
    """Write ``path``, refusing an existing file unless ``overwrite`` is given.

    ``-`` and ``/dev/stdout`` write to standard output. Anything at ``path`` that is not a
    regular file (a FIFO, a device, a socket) is refused even with ``overwrite``.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if str(path) in STDOUT_NAMES:
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise WriteError(
            f"{path}: is {_kind(mode)}; agentpm writes only regular files (use - for standard output)"
        )
    if mode is not None and not overwrite:
        raise WriteError(
            f"{path}: already exists; agentpm never overwrites a file (pass --force to replace it, "
            "or choose another path)"
        )
    if overwrite and mode is not None:
        atomic_write(path, payload)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
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


def create_new_files(folder: Path, items: Sequence[tuple[Iterable[str], bytes]]) -> list[Path | WriteError]:
    """One new file in ``folder`` per item, named by the first of its candidate names that is
    free: each file appears complete or not at all and nothing is replaced, as with
    :func:`write_new_file`. The data of the whole batch reaches the disk with one sync of the
    file systems before any file appears, not an fsync per file (an import of 15,000 reports
    spent a third of its time in fsync). Candidate names are read only as they are tried, in
    item order. Returns each item's path, or the error that kept it from being written."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode()
    temporaries: list[str | WriteError] = []
    try:
        for _, payload in items:
            try:
                temporaries.append(_temporary_copy(folder / "new", payload, mode, sync=False))
            except WriteError as exc:
                temporaries.append(exc)
        _sync([temporary for temporary in temporaries if isinstance(temporary, str)])
        return [
            temporary if isinstance(temporary, WriteError) else _link_first_free(folder, names, temporary)
            for (names, _), temporary in zip(items, temporaries, strict=True)
        ]
    finally:
        for temporary in temporaries:
            if isinstance(temporary, str):
                Path(temporary).unlink(missing_ok=True)


def _sync(paths: Sequence[str]) -> None:
    if not paths:
        return
    if sys.platform == "linux":
        os.sync()  # on Linux it returns once the data is written; elsewhere it may not wait
        return
    for path in paths:
        with open(path, "rb+") as stream:
            os.fsync(stream.fileno())


def _link_first_free(folder: Path, names: Iterable[str], temporary: str) -> Path | WriteError:
    for name in names:
        path = folder / name
        try:
            # link() fails if the name exists: a complete new file appears, or nothing does.
            os.link(temporary, path)
        except FileExistsError:
            continue
        except OSError as exc:
            return WriteError(f"{path}: cannot create ({exc.strerror})")
        return path
    return WriteError(f"{folder}: no free name for the file")
