"""What a run ran on: Python, packages, CPU, threads. No TensorFlow import.

Versions come from the installed distributions' metadata, so the report is
instant and works even when TensorFlow itself fails to import.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "tfhsi",
    "tensorflow",
    "tensorflow-cpu",
    "tf-keras",
    "keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "tflite-micro",
    "numpy",
    "scipy",
    "h5py",
)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, object]:
    """A JSON-ready description of the interpreter, packages and machine."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "env": {
            k: os.environ[k]
            for k in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")
            if k in os.environ
        },
    }


def minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None


def setup_problems(packages: dict[str, str | None]) -> list[str]:
    """Known-bad combinations of the installed packages, each with its fix."""
    problems: list[str] = []
    tf_version = packages.get("tensorflow") or packages.get("tensorflow-cpu")
    tfk = packages.get("tf-keras")
    if tf_version is None:
        problems.append("TensorFlow is not installed: `pip install 'tensorflow==2.21.*'`.")
    if tfk is None:
        keras3 = packages.get("keras")
        what = (
            f"only Keras {keras3} (Keras 3) is installed" if keras3 else "tf-keras is not installed"
        )
        problems.append(
            f"{what}; TF-MOT needs Keras 2: `pip install 'tf-keras=={minor(tf_version) or '2.21'}.*'`."
        )
    elif tf_version and minor(tf_version) != minor(tfk):
        problems.append(
            f"TensorFlow {tf_version} and tf-keras {tfk} differ in minor version; "
            f"`pip install 'tf-keras=={minor(tf_version)}.*'`."
        )
    for name in ("tensorflow-model-optimization", "ai-edge-litert", "tflite-micro"):
        if packages.get(name) is None:
            problems.append(f"{name} is not installed: `pip install -e .` installs it.")
    return problems


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a record or a committed file shows it: relative to the working directory,
    never an absolute path of the machine that made it."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return Path(text).as_posix()
    try:
        return Path(os.path.relpath(text)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(text).name
