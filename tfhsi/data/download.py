"""Where scene files live, and how they get there: data directory, checksums, downloads.

The data directory is ``--data-dir``, else ``$TFHSI_DATA_DIR``, else a per-user
cache directory. A scene's files sit in ``<data dir>/<scene folder>/<file>``
(the layout of the official archive); a file directly in ``<data dir>`` is found too.
Downloads stream into a temp file beside the target, hash while writing, and are
renamed into place only when the sha256 matches; a lock file keeps two processes
from downloading the same file at once.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from tfhsi.atomic import atomic_open
from tfhsi.data.scenes import Scene, SceneFile
from tfhsi.errors import ChecksumError, DatasetNotFoundError, DownloadError, storage_error

ENV_VAR = "TFHSI_DATA_DIR"
_CHUNK = 1 << 20

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None)."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Returns the data directory: the argument, else ``$TFHSI_DATA_DIR``, else the user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tfhsi")) / "data"


def canonical_path(scene: Scene, file: SceneFile, data_dir: Path) -> Path:
    """Where tfhsi stores (and downloads) ``file`` of ``scene``."""
    return data_dir / scene.folder / file.filename


def find_file(scene: Scene, file: SceneFile, data_dir: Path) -> Path | None:
    """Returns the existing path of ``file`` (scene folder first, then flat), or None.

    Raises:
        StorageError: a folder on the way cannot be read (permissions).
    """
    for candidate in (canonical_path(scene, file, data_dir), data_dir / file.filename):
        try:
            if candidate.is_file():
                return candidate
        except OSError as exc:  # e.g. a folder without read/search permission
            raise storage_error(exc, candidate, writing=False) or exc from None
    return None


def short_sha(sha256: str | None) -> str:
    return f"{sha256[:4]}…" if sha256 else "unknown"


def missing_file_error(scene: Scene, file: SceneFile, data_dir: Path) -> DatasetNotFoundError:
    """The actionable error for a scene file that is not on disk."""
    checksum = f"sha256 {short_sha(file.sha256)}" if file.sha256 else "no published sha256"
    return DatasetNotFoundError(
        f"{scene.name}: {file.filename} not found in {data_dir / scene.folder}. "
        f"Run `tfhsi data download {scene.name} --data-dir {data_dir}` or place the file there "
        f"({checksum}; source {file.url})."
    )


def require_file(scene: Scene, file: SceneFile, data_dir: Path) -> Path:
    """Like :func:`find_file` but raises :class:`DatasetNotFoundError` with the fix."""
    path = find_file(scene, file, data_dir)
    if path is None:
        raise missing_file_error(scene, file, data_dir)
    return path


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file (a permission problem is a :class:`StorageError`)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    return digest.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one scene file on disk."""

    file: SceneFile
    path: Path | None
    sha256: str | None
    status: str  # "ok" | "mismatch" | "missing" | "unverifiable"

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverifiable")


def check_file(scene: Scene, file: SceneFile, data_dir: Path) -> FileCheck:
    """Hashes ``file`` if present and compares it with the published sha256."""
    path = find_file(scene, file, data_dir)
    if path is None:
        return FileCheck(file, None, None, "missing")
    digest = sha256_file(path)
    if file.sha256 is None:
        return FileCheck(file, path, digest, "unverifiable")
    return FileCheck(file, path, digest, "ok" if digest == file.sha256 else "mismatch")


def mismatch_message(scene: Scene, file: SceneFile, path: Path, actual: str) -> str:
    return (
        f"{scene.name}: {path} has sha256 {actual}, expected {file.sha256}. The file is corrupt, "
        f"truncated or a different version (e.g. re-saved as MAT v7.3). Replace it with the "
        f"published file: `tfhsi data download {scene.name} --force` (with the --data-dir holding it)."
    )


def download_file(
    scene: Scene,
    file: SceneFile,
    data_dir: Path,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> Path:
    """Downloads ``file`` into the data directory, verified, atomically.

    Returns the existing path when the file is present and its checksum matches
    (unless ``force``). A partial download never appears under the final name.

    Raises:
        ChecksumError: the downloaded bytes do not match the published sha256.
        DownloadError: network, HTTP or disk failure.
    """
    present = find_file(scene, file, data_dir)
    if present is not None and not force and _is_verified(file, present):
        return present  # read-only data directories work: nothing is written or locked
    target = canonical_path(scene, file, data_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create {target.parent} ({exc.strerror}). Choose a writable data directory "
            f"with --data-dir or ${ENV_VAR}."
        ) from exc
    lock = FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=3600)
    except Timeout as exc:  # pragma: no cover - needs a stuck concurrent download
        raise DownloadError(f"another process has been downloading {target} for an hour.") from exc
    except OSError as exc:  # a read-only or full data directory
        raise storage_error(exc, target, writing=True) or exc from None
    try:
        if target.is_file() and not force and _is_verified(file, target):
            return target  # another process finished it while we waited for the lock
        _fetch(scene, file, target, progress=progress, timeout=timeout)
        return target
    finally:
        lock.release()


def _is_verified(file: SceneFile, path: Path) -> bool:
    return file.sha256 is None or sha256_file(path) == file.sha256


def _fetch(
    scene: Scene,
    file: SceneFile,
    target: Path,
    *,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    digest = hashlib.sha256()
    request = urllib.request.Request(file.url, headers={"User-Agent": "tfhsi"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total_header = response.headers.get("Content-Length")
            total = int(total_header) if total_header else file.size
            done = 0
            with atomic_open(target, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                actual = digest.hexdigest()
                if file.sha256 is not None and actual != file.sha256:
                    raise ChecksumError(
                        f"{scene.name}: download of {file.url} has sha256 {actual}, expected "
                        f"{file.sha256}; it was not saved. Retry later, or download the file by "
                        f"hand and place it at {target}."
                    )
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        raise DownloadError(
            f"{scene.name}: cannot download {file.url} ({reason}). Check the network, or download "
            f"the file by hand and place it at {target}."
        ) from exc
    except OSError as exc:
        if isinstance(exc, ChecksumError):  # pragma: no cover - ChecksumError is not an OSError
            raise
        raise DownloadError(
            f"{scene.name}: writing {target} failed ({exc.strerror or exc}); nothing was kept. "
            "Free disk space or choose another --data-dir."
        ) from exc
