"""Opening a dataset: a registered real scene, a scene YAML, or an explicitly synthetic one.

``synthetic`` or ``synthetic:HxWxB[xC][@seed]`` makes a seeded synthetic scene; a path
ending in ``.yaml``/``.yml`` is a scene file over the user's own files
(:mod:`tfhsi.data.scene_file`); any other name must be a registered scene and is loaded
from disk — a missing real scene is an error with the download command, never silently
replaced by synthetic data.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tfhsi.data.io import load_scene
from tfhsi.data.scene_data import SceneData
from tfhsi.data.scene_file import is_scene_file, open_scene_file, read_scene_spec
from tfhsi.errors import ConfigError, SceneFileError

SYNTHETIC = "synthetic"
_SYNTHETIC_SPEC = re.compile(r"^synthetic(?::(\d+)x(\d+)x(\d+)(?:x(\d+))?)?(?:@(\d+))?$")
DEFAULT_SYNTHETIC = (48, 48, 32, 6)


def is_synthetic(name: str) -> bool:
    return name == SYNTHETIC or name.startswith(SYNTHETIC + ":") or name.startswith(SYNTHETIC + "@")


def check_dataset_ref(value: str) -> str:
    """Checks a dataset reference without reading the scene; returns it normalised.

    A scene YAML must exist and validate; it is returned as an absolute path, so worker
    processes started elsewhere open the same file. Registered names and synthetic specs
    are returned unchanged. For recipe validators: the error is also a ``ValueError``.

    Raises:
        SceneFileError: unknown name (with close matches), bad synthetic spec, missing or
            invalid scene YAML.
    """
    from tfhsi.data.scenes import SCENES

    if is_scene_file(value):
        where, _ = read_scene_spec(value)
        return str(where)
    if is_synthetic(value):
        if not _SYNTHETIC_SPEC.match(value):
            raise SceneFileError(_bad_synthetic(value))
        return value
    if value not in SCENES:
        raise SceneFileError(
            SCENES.unknown_message(value)
            + " Or use synthetic[:HxWxB[xC]], or a scene file NAME.yaml over your own files."
        )
    return value


def _bad_synthetic(name: str) -> str:
    return (
        f"bad synthetic dataset {name!r}; use 'synthetic', 'synthetic:HxWxB', "
        "'synthetic:HxWxBxC' or add '@SEED' (e.g. synthetic:64x64x32x6@1)."
    )


def open_dataset(
    name: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    verify: bool = True,
) -> SceneData:
    """Returns the scene ``name`` refers to (see the module docstring).

    Args:
        name: A registered scene, ``synthetic[:...]``, or a scene YAML path (absolute or
            relative to the current folder).
        data_dir: Where registered scenes live (unused by scene YAMLs and synthetic scenes).
        verify: Compare registered scenes' files with their published sha256.
    """
    if isinstance(name, Path) or is_scene_file(os.fspath(name)):
        return open_scene_file(name)
    name = os.fspath(name)
    if not is_synthetic(name):
        return load_scene(name, data_dir=data_dir, verify=verify)
    from tfhsi.data.synthetic import synthetic_scene

    match = _SYNTHETIC_SPEC.match(name)
    if not match:
        raise ConfigError(_bad_synthetic(name))
    h, w, b, c, seed = match.groups()
    dh, dw, db, dc = DEFAULT_SYNTHETIC
    return synthetic_scene(
        height=int(h or dh),
        width=int(w or dw),
        bands=int(b or db),
        n_classes=int(c or dc),
        seed=int(seed or 0),
    )
