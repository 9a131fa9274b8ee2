"""No committed file names a path of the machine it was made on.

Scanned: every text file git tracks or would add (``git ls-files --cached --others
--exclude-standard``). Flagged: an absolute path that starts a word and lies under a home or
workspace folder (``/home/<user>/``, ``/root/``, ``/Users/``, ``/work/``), a file or folder
under ``/tmp/``, or a Windows drive path (``C:\\...``). Placeholders for users' own machines
(``/shared/...`` in the Ray example, ``/dev/null``, URLs) are not flagged: they name no folder
of this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {"tests/test_no_absolute_paths.py"}  # the rule's own examples
BINARY_SUFFIXES = {".tflite", ".npz", ".npy", ".png", ".jpg", ".gif", ".h5", ".mat", ".tif"}

# A path starts a word: not preceded by a letter, digit, '.', '~', '/' or '-' (so URLs and
# relative paths such as docs/work/ do not match).
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])(?:"
    r"/(?:home|Users)/\w[\w.-]*/"  # a user's home folder
    r"|/(?:root|work)/"  # root's home, the workspace
    r"|/tmp/[\w.-]"  # something inside /tmp
    r"|[A-Za-z]:\\\\?\w"  # C:\Users, also JSON-escaped C:\\Users
    r")"
)


def _files() -> list[Path]:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    names = sorted(set(listed.split("\0")) - ALLOWED - {""})
    return [REPO / name for name in names]


def _text(path: Path) -> str | None:
    if path.suffix.lower() in BINARY_SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ('"source_run": "/work/real_runs/study_random"', True),
        ("--out /tmp/bench/models", True),
        ("see /home/alice/data/x.mat", True),
        ("cd /Users/bob/tfhsi", True),
        ("cache in /root/.cache", True),
        (r"C:\Users\bob", True),
        (r'"C:\\Users\\bob"', True),
        ('"source_run": "runs/study_random"', False),
        ("--data-dir ../shared/data", False),
        ("--out /shared/tfhsi/runs/study", False),
        ("https://example.org/work/tmp/x", False),
        ("docs/work/notes and tests/tmp/x", False),
        (r'f"expected one line:\n{output}"', False),
        ("2>/dev/null", False),
    ],
)
def test_machine_path_rule(text: str, flagged: bool) -> None:
    assert bool(MACHINE_PATH.search(text)) is flagged


def test_no_committed_text_file_names_a_path_of_this_machine() -> None:
    offenders = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = MACHINE_PATH.search(line)
            if match:
                where = path.relative_to(REPO).as_posix()
                offenders.append(f"{where}:{number}: {line.strip()[:120]}")
    assert offenders == [], "\n".join(offenders)
