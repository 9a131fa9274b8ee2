"""The scene registry: metadata of the public HSI benchmark scenes.

One module per scene, torchgeo-style: file names, official URLs, MAT keys,
checksums, class names and RGB bands are class-level facts; loading lives in
:mod:`tfhsi.data.io`, downloading in :mod:`tfhsi.data.download`.
"""

# Importing the scene modules registers them.
from tfhsi.data.scenes import (  # noqa: F401
    botswana,
    indian_pines,
    ksc,
    pavia_c,
    pavia_u,
    salinas,
    salinas_a,
)
from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile, get_scene

__all__ = ["EHU_URL", "SCENES", "Scene", "SceneFile", "get_scene"]
