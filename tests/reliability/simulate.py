"""Faults on demand: bad scene files, denied or read-only folders, a full disk, a slow server.

Permission faults are real (``chmod``) when the tests do not run as root; as root (CI
containers) the kernel ignores the mode bits, so the same errors are raised at the
``os`` / ``open`` level for paths under the folder, exactly as the kernel would.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import functools
import http.server
import io
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fake_scenes import fake_arrays, write_mat

from tfhsi.data.scenes import SCENES, get_scene

SCENE = "ksc"  # no published checksum: fake files load without --no-verify
SHAPE = (16, 16, 6)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def ksc_arrays(shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    return fake_arrays(SCENE, shape=shape)


def write_ksc(
    root: Path,
    *,
    cube: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    cube_key: str | None = None,
    labels_key: str | None = None,
) -> tuple[Path, Path]:
    """A data directory holding fake KSC files (optionally with replaced arrays or keys)."""
    scene = get_scene(SCENE)
    good_cube, good_labels = ksc_arrays()
    folder = root / scene.folder
    return (
        write_mat(
            folder / scene.cube.filename,
            cube_key or scene.cube.key,
            good_cube if cube is None else cube,
        ),
        write_mat(
            folder / scene.labels.filename,
            labels_key or scene.labels.key,
            good_labels if labels is None else labels,
        ),
    )


def _inside(path: object, folder: str) -> bool:
    if not isinstance(path, str | bytes | os.PathLike):
        return False
    name = os.path.abspath(os.fsdecode(path))
    return name == folder or name.startswith(folder + os.sep)


def _fail(code: int, path: object) -> None:
    raise OSError(code, os.strerror(code), os.fsdecode(path))  # type: ignore[arg-type]


@contextmanager
def denied(folder: Path, *, writes_only: bool) -> Iterator[None]:
    """``folder`` is read-only (EROFS) or unreadable (EACCES) inside the block, really or simulated."""
    original = folder.stat().st_mode
    folder.chmod(0o555 if writes_only else 0o000)
    try:
        with pytest.MonkeyPatch.context() as patch:
            if os.geteuid() == 0:  # root ignores mode bits: raise what the kernel would
                _simulate(patch, os.path.abspath(folder), writes_only=writes_only)
            yield
    finally:
        folder.chmod(original)


def _simulate(patch: pytest.MonkeyPatch, root: str, *, writes_only: bool) -> None:
    code = errno.EROFS if writes_only else errno.EACCES
    real_open, real_os_open, real_stat = builtins.open, os.open, os.stat
    real_mkdir = os.mkdir

    def guarded_open(file, mode="r", *args, **kwargs):
        writing = any(c in mode for c in "wax+")
        if _inside(file, root) and (writing or not writes_only):
            _fail(code, file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if _inside(path, root) and (flags & _WRITE_FLAGS or not writes_only):
            _fail(code, path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_stat(path, *args, **kwargs):
        if not writes_only and _inside(path, root) and os.path.abspath(path) != root:
            _fail(code, path)  # no search permission on the folder: nothing inside is visible
        return real_stat(path, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if _inside(path, root) and not os.path.isdir(path):
            _fail(code, path)
        return real_mkdir(path, *args, **kwargs)

    def guarded(real: Callable) -> Callable:
        def call(path, *args, **kwargs):
            if _inside(path, root):
                _fail(code, path)
            return real(path, *args, **kwargs)

        return call

    patch.setattr(builtins, "open", guarded_open)
    patch.setattr(io, "open", guarded_open)
    patch.setattr(os, "open", guarded_os_open)
    patch.setattr(os, "stat", guarded_stat)
    patch.setattr(os, "mkdir", guarded_mkdir)
    for name in ("replace", "rename", "unlink", "remove", "chmod"):
        patch.setattr(os, name, guarded(getattr(os, name)))


def _fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch, *, name: str, after: int = 0) -> Iterator[None]:
    """The disk is full from the ``after+1``-th atomic write of a file called ``name`` on.

    ``tfhsi.atomic`` fsyncs every temp file before renaming it into place; that is where a
    full disk surfaces (ENOSPC), so failing it there models a disk that fills up mid-run.
    """
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file is being written")
    real = os.fsync
    seen = 0

    def fsync(fd: int) -> None:
        nonlocal seen
        if f"{name}." in Path(_fd_name(fd)).name:
            seen += 1
            if seen > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        yield


def scene_served_from(url: str, name: str = SCENE):
    """The scene ``name`` with both files' URLs under ``url`` and no published checksum."""
    scene = get_scene(name)
    return dataclasses.replace(
        scene,
        cube=dataclasses.replace(scene.cube, url=url + scene.cube.filename, sha256=None),
        labels=dataclasses.replace(scene.labels, url=url + scene.labels.filename, sha256=None),
    )


def serve_scene_from(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(SCENES._items, SCENE, scene_served_from(url))


def prelude_serving(url: str) -> str:
    """Python run before the CLI in a child process: the scene downloads from ``url``."""
    return f"""
import dataclasses
from tfhsi.data.scenes import SCENES
_s = SCENES._items[{SCENE!r}]
SCENES._items[{SCENE!r}] = dataclasses.replace(
    _s,
    cube=dataclasses.replace(_s.cube, url={url!r} + _s.cube.filename, sha256=None),
    labels=dataclasses.replace(_s.labels, url={url!r} + _s.labels.filename, sha256=None),
)
"""


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files in small chunks with pauses (``delay`` seconds per chunk)."""

    delay = 0.0
    chunk = 64 * 1024
    requests: list[str] | None = None

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        if self.requests is not None:
            self.requests.append(self.path)  # list.append is atomic
        super().do_GET()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        while data := source.read(self.chunk):
            try:
                outputfile.write(data)
                outputfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            time.sleep(self.delay)


@contextmanager
def file_server(
    root: Path, *, delay: float = 0.0, requests: list[str] | None = None
) -> Iterator[str]:
    """A loopback HTTP server for ``root``; yields its base URL (ending in ``/``).

    Files go out in 64 KiB chunks, ``delay`` seconds apart; ``requests`` collects the
    requested paths.
    """
    handler = type("Handler", (_SlowHandler,), {"delay": delay, "requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


SLOW_WRITES = """
import os, sys, time
_real_fsync = os.fsync
def _announced_fsync(fd):
    try:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        name = ""
    if ".part" in name:
        print(f"ATOMIC-WRITE {name}", file=sys.stderr, flush=True)
        if %r in name:
            time.sleep(%r)
    _real_fsync(fd)
os.fsync = _announced_fsync
"""


def slow_writes(name: str, seconds: float = 2.0) -> str:
    """Prelude: atomic writes announce themselves on stderr; those of ``name`` pause.

    A signal sent after the announcement lands inside the write (temp file complete, not yet
    renamed): the worst moment for a half-written file to appear under the final name.
    """
    return SLOW_WRITES % (f".{name}.", seconds)


def signal_when(
    process: subprocess.Popen, ready: Callable[[str], bool], sig: int, *, timeout: float = 120
) -> tuple[str, str]:
    """Sends ``sig`` once a stderr line satisfies ``ready``; returns (stdout, stderr) at exit."""
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if not seen.is_set() and ready(line):
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not seen.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            reader.join(timeout=10)
            raise AssertionError(
                "the child never reached the point to interrupt:\n" + "".join(lines)
            )
    process.send_signal(sig)
    out = process.stdout.read() if process.stdout else ""
    process.wait(timeout=timeout)
    reader.join(timeout=10)
    return out, "".join(lines)
