"""Atomic file writes: every file the package writes (checkpoints, sample grids and tensors, metrics, results JSON,
converted or cached weights) goes through :func:`atomic_write`, so a crash, a full disk or a file-size limit never
leaves a half-written file where a complete one was, and a reader never sees a partial file.

The data go to a temporary ``.<name>.<random>.tmp`` in the target's folder, are flushed and fsynced, and the
temporary file is renamed onto the target with ``os.replace`` (atomic on POSIX and Windows). A process killed in
the middle can leave such a temporary file behind; :func:`remove_orphan_tmp` deletes them (the trainer calls it
when a run starts in a folder).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

__all__ = ["atomic_write", "atomic_save", "atomic_write_text", "atomic_append_text", "atomic_copy",
           "remove_orphan_tmp", "check_writable"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary file object of a temporary file next to ``path``, fsync it, then rename it
    onto ``path``. If ``write`` (or the disk) fails, the temporary file is deleted, ``path`` keeps its previous
    content, and the error propagates. Creates the parent folder. Returns ``Path(path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if (isinstance(e, OSError) and e.errno is not None and e.filename is None
                or type(e) is RuntimeError and "inline_container" in str(e)):
            # a failed write (disk full, file-size limit, ...); torch.save reports it as a bare RuntimeError
            kept = "the previous file is unchanged" if path.exists() else "nothing was written"
            why = (getattr(e, "strerror", None) or " ".join(str(e).split()) if isinstance(e, OSError)
                   else "the write stopped part-way: disk full or file-size limit?")
            err = OSError(f"could not write {path} ({why}); {kept}. Free some space or choose another location")
            err.errno = getattr(e, "errno", None)
            raise err from e
        raise
    _fsync_dir(path.parent)
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (see :func:`atomic_write`)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def atomic_append_text(path: str | os.PathLike, text: str) -> Path:
    """Append ``text`` to ``path`` atomically: the new file is the old content plus ``text``, or the old file is
    left as it was (an interrupted plain append can leave half a line)."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: (f.write(old), f.write(data)))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` atomically (a hard link when possible, else a copy), replacing ``dst``."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dst


def remove_orphan_tmp(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files that :func:`atomic_write` leaves when its process is killed mid-write
    (only directly in ``folder``); returns the deleted paths. Call it when nothing else writes to ``folder``."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp"):
        if p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def check_writable(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that a file can be written there (before hours of work that end in
    a save); raise ``PermissionError`` naming the folder otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise PermissionError(f"cannot write to the {what} {folder} ({e.strerror or e}); choose a writable folder "
                              "or fix its permissions") from e
    return folder
