"""Downloads from a loopback HTTP server: verified, atomic, nothing partial left behind."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfhsi.data.download import check_file, download_file, resolve_data_dir
from tfhsi.data.scenes import Scene, SceneFile, get_scene
from tfhsi.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "cube.mat").write_bytes(PAYLOAD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _scene(url: str, sha256: str | None) -> tuple[Scene, SceneFile]:
    base = get_scene("indian_pines")
    file = SceneFile(filename="Indian_pines_corrected.mat", url=url, key="x", sha256=sha256)
    return base, file


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_download_verifies_and_reports_progress(server: str, tmp_path: Path) -> None:
    scene, file = _scene(server + "cube.mat", hashlib.sha256(PAYLOAD).hexdigest())
    seen: list[int] = []
    path = download_file(
        scene, file, tmp_path / "data", progress=lambda done, total: seen.append(done)
    )
    assert path.read_bytes() == PAYLOAD
    assert path == tmp_path / "data" / "indian_pines" / "Indian_pines_corrected.mat"
    assert seen[-1] == len(PAYLOAD)
    assert check_file(scene, file, tmp_path / "data").status == "ok"


def test_checksum_mismatch_keeps_nothing(server: str, tmp_path: Path) -> None:
    scene, file = _scene(server + "cube.mat", "0" * 64)
    with pytest.raises(ChecksumError, match="it was not saved"):
        download_file(scene, file, tmp_path / "data")
    folder = tmp_path / "data" / "indian_pines"
    assert not (folder / file.filename).exists()
    assert _leftovers(folder) == []


def test_http_404_is_a_download_error_with_the_fix(server: str, tmp_path: Path) -> None:
    scene, file = _scene(server + "missing.mat", None)
    with pytest.raises(DownloadError, match="download the file by hand and place it at"):
        download_file(scene, file, tmp_path / "data")
    assert _leftovers(tmp_path / "data" / "indian_pines") == []


def test_present_verified_file_is_not_downloaded_again(tmp_path: Path) -> None:
    scene, file = _scene("http://127.0.0.1:9/unreachable", hashlib.sha256(b"x").hexdigest())
    target = tmp_path / "indian_pines" / file.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert download_file(scene, file, tmp_path) == target


def test_data_dir_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFHSI_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("TFHSI_DATA_DIR")
    assert resolve_data_dir(None).name == "data"
