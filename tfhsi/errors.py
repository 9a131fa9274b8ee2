"""User-facing errors.

Every :class:`TfhsiError` message says what was wrong, where, and how to fix it.
The CLI prints the message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


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


class RecipeError(TfhsiError):
    """A recipe cannot be found, parsed or validated; the message names the field and the fix."""


class SetupError(TfhsiError):
    """The installed packages cannot work together (e.g. Keras 3 where tf_keras is needed)."""


class UnsupportedError(TfhsiError):
    """A model, layer or operation is outside what a method or target supports."""
