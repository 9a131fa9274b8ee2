"""Opening a dataset by name: a registered real scene, or an explicitly synthetic one.

``synthetic`` or ``synthetic:HxWxB[xC][@seed]`` makes a seeded synthetic scene; any other
name must be a registered scene and is loaded from disk — a missing real scene is an
error with the download command, never silently replaced by synthetic data.
"""

from __future__ import annotations

import os
import re

from tfhsi.data.io import load_scene
from tfhsi.data.scene_data import SceneData
from tfhsi.errors import ConfigError

SYNTHETIC = "synthetic"
_SYNTHETIC_SPEC = re.compile(r"^synthetic(?::(\d+)x(\d+)x(\d+)(?:x(\d+))?)?(?:@(\d+))?$")
DEFAULT_SYNTHETIC = (48, 48, 32, 6)


def is_synthetic(name: str) -> bool:
    return name == SYNTHETIC or name.startswith(SYNTHETIC + ":") or name.startswith(SYNTHETIC + "@")


def open_dataset(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, verify: bool = True
) -> SceneData:
    """Returns the scene called ``name`` (see the module docstring for synthetic names)."""
    if not is_synthetic(name):
        return load_scene(name, data_dir=data_dir, verify=verify)
    from tfhsi.data.synthetic import synthetic_scene

    match = _SYNTHETIC_SPEC.match(name)
    if not match:
        raise ConfigError(
            f"bad synthetic dataset {name!r}; use 'synthetic', 'synthetic:HxWxB', "
            "'synthetic:HxWxBxC' or add '@SEED' (e.g. synthetic:64x64x32x6@1)."
        )
    h, w, b, c, seed = match.groups()
    dh, dw, db, dc = DEFAULT_SYNTHETIC
    return synthetic_scene(
        height=int(h or dh),
        width=int(w or dw),
        bands=int(b or db),
        n_classes=int(c or dc),
        seed=int(seed or 0),
    )
