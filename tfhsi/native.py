"""Silencing native (C++) chatter on stderr: TensorFlow's start-up notes, LiteRT's delegate INFO lines.

These libraries log from C++ straight to file descriptor 2, ignoring Python logging and (for
some lines) TF_CPP_MIN_LOG_LEVEL. Errors still surface as Python exceptions.
``TFHSI_TF_LOGS=1`` shows the chatter again.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Redirects fd 2 to /dev/null for the block (unless ``TFHSI_TF_LOGS=1``)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured or replaced stderr
        fd = -1
    if fd < 0 or os.environ.get("TFHSI_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
