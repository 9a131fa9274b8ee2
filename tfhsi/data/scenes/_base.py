"""Scene metadata types and the registry they live in."""

from __future__ import annotations

from dataclasses import dataclass

from tfhsi.registry import Registry

EHU_URL = "https://www.ehu.eus/ccwintco/uploads/"
"""Grupo de Inteligencia Computacional (UPV/EHU), 'Hyperspectral Remote Sensing Scenes'."""


@dataclass(frozen=True)
class SceneFile:
    """One downloadable file of a scene.

    Attributes:
        filename: Name on disk (as published).
        url: Official download URL.
        key: Variable name inside the MAT file.
        sha256: Published checksum, or None where none is known (downloads then print theirs).
        size: Size in bytes where known (progress bars, sanity checks).
    """

    filename: str
    url: str
    key: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Scene:
    """A public hyperspectral benchmark scene.

    Attributes:
        name: Registry name (``indian_pines``).
        title: Human name.
        sensor: Instrument and year.
        folder: Sub-folder of the data directory holding the files.
        cube: The radiance/reflectance cube file.
        labels: The ground-truth file.
        shape: ``(H, W, B)`` of the published cube.
        class_names: Names of classes 1..C.
        class_ids: Raw label values of classes 1..C in the file when they are not 1..C
            (Salinas-A keeps Salinas' ids); None means 1..C.
        rgb_bands: Zero-based bands for a false-colour composite.
        labelled_pixels: Published number of labelled pixels.
        citation: How to cite the scene.
    """

    name: str
    title: str
    sensor: str
    folder: str
    cube: SceneFile
    labels: SceneFile
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    rgb_bands: tuple[int, int, int]
    labelled_pixels: int
    class_ids: tuple[int, ...] | None = None
    citation: str = (
        "Grupo de Inteligencia Computacional (UPV/EHU), Hyperspectral Remote Sensing Scenes."
    )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def files(self) -> tuple[SceneFile, SceneFile]:
        return (self.cube, self.labels)

    def raw_class_ids(self) -> tuple[int, ...]:
        return self.class_ids or tuple(range(1, self.n_classes + 1))


SCENES: Registry[Scene] = Registry("scene")


def get_scene(name: str) -> Scene:
    """Looks a scene up by name (raises with close matches and the valid names)."""
    return SCENES.get(name)
