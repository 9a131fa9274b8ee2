"""One local Ray cluster at a time on this machine (import this, not a test module).

pytest runs on several xdist workers; two local Ray clusters started at once compete for the
same CPUs and each waits for resources the other holds, so Ray tests take this lock for as long
as their cluster runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from filelock import FileLock

RAY_LOCK = FileLock(str(Path(tempfile.gettempdir()) / "tfhsi-tests-ray.lock"))

#: The test files that take the lock; ``conftest.py`` schedules them on one xdist worker.
RAY_TEST_FILES = ("tests/recipes/test_executors.py", "tests/search/test_search_runs.py")
