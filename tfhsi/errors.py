"""User-facing errors.

Every :class:`TfhsiError` message says what was wrong, where, and how to fix it.
The CLI prints the message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import errno
import os


class TfhsiError(Exception):
    """Base class of every error tfhsi raises on purpose."""

    exit_code = 2


class DatasetNotFoundError(TfhsiError):
    """A scene file is missing from the data directory."""


class ChecksumError(TfhsiError):
    """A file's sha256 differs from the published one."""


class DataFormatError(TfhsiError):
    """A file exists but its content is not what tfhsi expects (keys, shapes, dtype, NaN)."""


class DownloadError(TfhsiError):
    """A download failed (network, HTTP status, disk)."""


class ModelFileNotFoundError(TfhsiError, FileNotFoundError):
    """A model file (.tflite, .keras, weights) that was asked for does not exist."""


class SplitError(TfhsiError):
    """A train/val/test split cannot be made as asked."""


class UnknownNameError(TfhsiError, KeyError):
    """A registry lookup failed; the message lists close matches and the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(TfhsiError):
    """An option, field or specification string is malformed."""


class SceneFileError(ConfigError, ValueError):
    """A dataset reference or scene YAML is wrong: unknown name, missing YAML, bad key or value.

    Also a ``ValueError``, so a pydantic validator that raises it reports the field.
    """


class DataTooLargeError(TfhsiError):
    """A scene file would not fit in the memory available; the message gives the size it needs."""


class RecipeError(TfhsiError):
    """A recipe cannot be found, parsed or validated; the message names the field and the fix."""


class SetupError(TfhsiError):
    """The installed packages cannot work together (e.g. Keras 3 where tf_keras is needed)."""


class UnsupportedError(TfhsiError):
    """A model, layer or operation is outside what a method or target supports."""


class ModelRefError(ConfigError, ValueError):
    """A model reference (zoo name, ``file.py:function``, ``package.module:function``, model file) is wrong.

    Also a ``ValueError``, so a pydantic validator that raises it reports the field.
    """


class UserCodeError(TfhsiError):
    """The user's model code (a builder file or function) failed to import or run."""


class UnsafeModelFileError(TfhsiError):
    """A model file holds code (e.g. a Lambda layer) that loading would run; not done without opt-in."""


class StorageError(TfhsiError):
    """A file or folder cannot be read or written: full disk, read-only or permission denied."""


_STORAGE_PROBLEMS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def storage_error(
    exc: BaseException, path: str | os.PathLike[str], *, writing: bool | None
) -> StorageError | None:
    """The user-facing error for an ``OSError`` caused by the disk or permissions, else None.

    Args:
        exc: The error raised while reading or writing.
        path: The file tfhsi was reading or writing (named in the message).
        writing: Whether ``path`` was being written, read (False) or either (None).
    """
    if not isinstance(exc, OSError) or isinstance(exc, TfhsiError):
        return None
    problem = _STORAGE_PROBLEMS.get(exc.errno or -1)
    if problem is None:
        return None
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name)) or "."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        writing = True
    if writing is False:
        return StorageError(
            f"cannot read {name}: {problem}. Make it readable (e.g. `chmod -R a+rX {folder}`) or "
            "point --data-dir / $TFHSI_DATA_DIR at a readable copy."
        )
    again = "then run the command again (with --resume to continue a run)"
    if writing is None:
        return StorageError(
            f"cannot access {name}: {problem}. Make {folder} readable and writable, or choose "
            f"other folders with --out / --data-dir / $TFHSI_CACHE_DIR; {again}."
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (
            f"free disk space in {folder} (or choose another --out / --data-dir / "
            f"$TFHSI_CACHE_DIR), {again}"
        )
    else:
        fix = f"make {folder} writable or choose a writable --out / --data-dir / $TFHSI_CACHE_DIR, {again}"
    return StorageError(
        f"cannot write {name}: {problem}; nothing was half-written (an earlier "
        f"{os.path.basename(name)} is unchanged). Fix: {fix}."
    )
