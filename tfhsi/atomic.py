"""Atomic file writes: a temp file beside the target, fsync, then ``os.replace``.

A reader never sees a half-written file under the final name: after a crash,
SIGINT or a full disk there is either the old file, the complete new one, or
nothing; the temp file is removed on failure. A full disk or a read-only folder becomes
a :class:`~tfhsi.errors.StorageError` naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tfhsi.errors import storage_error


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path in ``target``'s folder; renames it to ``target`` on success.

    Use it for writers that want a path (``np.save``, ``model.save``, converters).

    Raises:
        StorageError: the disk is full or the folder is read-only or not writable (the
            temp file is removed and an earlier ``target`` is left as it was).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temp name ends like the target (".weights.h5", ".keras"): writers pick formats by suffix.
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f".part{''.join(target.suffixes)}", dir=target.parent
        )
    except OSError as exc:
        error = storage_error(exc, target, writing=True)
        if error is None:
            raise
        raise error from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        error = storage_error(exc, target, writing=True) if _about(exc, tmp, target) else None
        if error is not None:
            raise error from exc
        raise


def _about(exc: BaseException, *paths: Path) -> bool:
    """Whether an ``OSError`` concerns one of ``paths`` (or names no file, e.g. a failed write)."""
    name = getattr(exc, "filename", None)
    return name is None or any(os.fspath(name) == os.fspath(p) for p in paths)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Opens a temp file for writing; it becomes ``target`` only if the block succeeds."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes only; got mode {mode!r}")
    with atomic_path(target) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically writes ``data`` to ``target`` and returns the path."""
    with atomic_open(target, "wb") as f:
        f.write(data)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Atomically writes UTF-8 ``text`` to ``target`` and returns the path."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically writes ``obj`` as indented JSON."""
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
