"""Scenes from the user's files: a small YAML names the cube, the labels and the classes.

Example ``my_scene.yaml`` (relative paths are read from the YAML's folder)::

    name: my_field
    cube: {path: field.hdr}            # ENVI, TIFF/GeoTIFF, .npy, .npz or .mat
    labels: {path: field_gt.tif}
    class_names: {1: Wheat, 10: Maize, 11: Soy}   # or a list for ids 1..C
    ignore: 0                          # label id(s) meaning unlabelled (default 0)
    rgb_bands: [29, 19, 9]             # optional, zero-based
    wavelengths: [400.0, 410.0, ...]   # optional, one per band
    description: Summer 2023 flight    # optional

``class_names`` as a list gives label ids 1..C; as a mapping ``{id: name}`` it allows
any ids, which are renumbered 1..C in id order (the mapping stays in
:attr:`SceneFileData.class_ids`). Readers: :mod:`tfhsi.data.readers`.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tfhsi.data.readers import Raster, read_raster
from tfhsi.data.scene_data import SceneData
from tfhsi.errors import DataFormatError, SceneFileError

SUFFIXES = (".yaml", ".yml")
MAX_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Strict):
    """One file of the scene: its path and, for MAT/NPZ files, the variable inside."""

    path: str = Field(min_length=1)
    key: str | None = None


class SceneFileSpec(_Strict):
    """The scene YAML, validated (unknown keys are errors)."""

    name: str
    cube: FileRef
    labels: FileRef
    class_names: list[str] | dict[int, str]
    ignore: int | list[int] = 0
    rgb_bands: tuple[int, int, int] | None = None
    wavelengths: list[float] | None = None
    description: str = ""

    @field_validator("cube", "labels", mode="before")
    @classmethod
    def _path_alone(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value  # `cube: x.tif` shorthand

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        from tfhsi.data.scenes import SCENES

        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a usable scene name; use letters, digits and _ . + - "
                "(e.g. my_field_2023)"
            )
        if value.startswith("synthetic") or value in SCENES:
            raise ValueError(
                f"{value!r} is taken by a {'synthetic' if value.startswith('synthetic') else 'registered'}"
                f" scene; choose another name (e.g. {value}_mine)"
            )
        return value

    @field_validator("class_names")
    @classmethod
    def _valid_classes(cls, value: list[str] | dict[int, str]) -> list[str] | dict[int, str]:
        names = list(value.values()) if isinstance(value, dict) else list(value)
        if not names:
            raise ValueError("no classes; list one name per class (label ids 1..C)")
        blank = [n for n in names if not n.strip()]
        if blank:
            raise ValueError("a class name is empty; give every class a name")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"class name(s) {twice} appear more than once; names must differ")
        return value

    @property
    def ignored(self) -> tuple[int, ...]:
        return (self.ignore,) if isinstance(self.ignore, int) else tuple(self.ignore)

    @property
    def class_ids(self) -> tuple[int, ...]:
        """Label id in the file of classes 1..C."""
        if isinstance(self.class_names, dict):
            return tuple(sorted(self.class_names))
        return tuple(range(1, len(self.class_names) + 1))

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in the order of :attr:`class_ids`."""
        if isinstance(self.class_names, dict):
            return tuple(self.class_names[i] for i in self.class_ids)
        return tuple(self.class_names)


@dataclass(frozen=True)
class SceneFileData(SceneData):
    """A :class:`SceneData` read through a scene YAML, with what the YAML said about it.

    Attributes:
        class_ids: Label id in the labels file of classes 1..C (``labels`` holds 1..C).
        ignore: Label ids that mean unlabelled (0 in ``labels``).
        wavelengths: One per band, as given in the YAML, or None.
        description: The YAML's description.
        scene_file: Absolute path of the YAML.
        layouts: ``{"cube": ..., "labels": ...}``: how each file stored its array.
    """

    class_ids: tuple[int, ...] = ()
    ignore: tuple[int, ...] = (0,)
    wavelengths: tuple[float, ...] | None = None
    description: str = ""
    scene_file: str = ""
    layouts: dict[str, str] = field(default_factory=dict)


def is_scene_file(ref: str | os.PathLike[str]) -> bool:
    """Whether a dataset reference names a scene YAML (by its suffix)."""
    return os.fspath(ref).lower().endswith(SUFFIXES)


def read_scene_spec(path: str | os.PathLike[str]) -> tuple[Path, SceneFileSpec]:
    """Reads and validates a scene YAML; returns (absolute path, spec).

    Raises:
        SceneFileError: the file is missing, not YAML, or has an unknown key or bad value.
    """
    import yaml

    where = Path(path).expanduser().absolute()
    try:
        if not where.is_file():
            raise SceneFileError(
                f"scene file {where} not found; check the path (relative paths are read from "
                f"the current folder, {Path.cwd()})."
            )
        if where.stat().st_size > MAX_BYTES:
            raise SceneFileError(f"{where}: larger than 1 MiB; a scene YAML is a few lines.")
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFileError(f"cannot read scene file {where} ({exc}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SceneFileError(f"{where}: not valid YAML{at} ({problem}); fix the syntax.") from None
    if not isinstance(data, dict):
        raise SceneFileError(
            f"{where}: expected a mapping with name, cube, labels and class_names; "
            f"found {type(data).__name__}."
        )
    try:
        return where, SceneFileSpec.model_validate(data)
    except ValidationError as exc:
        raise SceneFileError(f"{where}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()  # a misspelt key first: it also explains the "missing" one
    error = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = [str(p) for p in error.get("loc", ()) if not str(p).startswith(("list[", "dict["))]
    where = ".".join(loc) or "scene file"
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        allowed = list(FileRef.model_fields if len(loc) > 1 else SceneFileSpec.model_fields)
        close = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}."
        return f"unknown key {where!r}; {hint}"
    if kind == "missing":
        return f"{where}: required field is missing; add it."
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}."


def _resolve(scene_file: Path, ref: FileRef) -> Path:
    path = Path(ref.path).expanduser()
    return path if path.is_absolute() else scene_file.parent / path


def _fix(scene_file: Path, role: str) -> str:
    return f"fix `{role}:` in {scene_file.name} (relative paths are read from its folder)."


def read_scene_labels(scene_file: Path, spec: SceneFileSpec) -> tuple[np.ndarray, Raster]:
    """The label map (0 unlabelled, 1..C) of a validated scene YAML, and where it came from."""
    path = _resolve(scene_file, spec.labels)
    raster = read_raster(path, role="labels", key=spec.labels.key, fix=_fix(scene_file, "labels"))
    labels = map_class_ids(
        raster.array, spec.class_ids, spec.ignored, path=raster.files[-1], scene_file=scene_file
    )
    return labels, raster


def map_class_ids(
    raw: np.ndarray,
    class_ids: tuple[int, ...],
    ignore: tuple[int, ...],
    *,
    path: Path,
    scene_file: Path,
) -> np.ndarray:
    """Renumbers label ids: ``ignore`` → 0 and ``class_ids[i]`` → ``i + 1`` (int32).

    Raises:
        SceneFileError: an ignored id is also a class.
        DataFormatError: labels are not whole numbers, or an id has no class name.
    """
    overlap = sorted(set(ignore) & set(class_ids))
    if overlap:
        raise SceneFileError(
            f"{scene_file}: label id(s) {overlap} are both classes and `ignore:`; "
            "remove them from one of the two."
        )
    if np.issubdtype(raw.dtype, np.floating) and (
        not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw))
    ):
        raise DataFormatError(
            f"{path}: labels must be whole numbers (found fractions, NaN or Inf); "
            "use an integer label map (0 = unlabelled)."
        )
    values, inverse = np.unique(raw.astype(np.int64), return_inverse=True)
    index = {class_id: i for i, class_id in enumerate(class_ids, start=1)}
    lookup = np.array([0 if v in ignore else index.get(int(v), -1) for v in values.tolist()])
    unknown = values[lookup < 0]
    if unknown.size:
        shown = ", ".join(str(v) for v in unknown[:10].tolist()) + (
            " …" if unknown.size > 10 else ""
        )
        raise DataFormatError(
            f"{path}: label id(s) {shown} have no class name in {scene_file.name}; add them to "
            "`class_names` (a mapping {id: name} allows any ids) or to `ignore:` if they mean "
            "unlabelled."
        )
    return lookup[inverse.reshape(raw.shape)].astype(np.int32)


def _default_rgb(bands: int, wavelengths: tuple[float, ...] | None) -> tuple[int, int, int]:
    if wavelengths:
        nm = np.asarray(wavelengths) * (1000.0 if max(wavelengths) < 100 else 1.0)
        if nm.min() <= 460 and nm.max() >= 640:
            picks = [int(np.argmin(np.abs(nm - target))) for target in (640.0, 550.0, 460.0)]
            return picks[0], picks[1], picks[2]
    rgb = [round(f * (bands - 1)) for f in (0.75, 0.45, 0.15)]
    return rgb[0], rgb[1], rgb[2]


def _source_names(scene_file: Path, files: list[Path]) -> dict[Path, str]:
    """How each file is named in ``sources``: its path relative to the YAML's folder."""
    names: dict[Path, str] = {}
    for file in dict.fromkeys(files):
        try:
            names[file] = file.resolve().relative_to(scene_file.parent.resolve()).as_posix()
        except ValueError:
            names[file] = file.name if file.name not in names.values() else str(file)
    return names


def open_scene_file(path: str | os.PathLike[str]) -> SceneFileData:
    """Opens the scene a YAML describes; reads both files and checks them.

    Args:
        path: The scene YAML (absolute, or relative to the current folder).

    Returns:
        The scene, named by the YAML's ``name``, with ``synthetic=False`` and ``sources``
        holding the sha256 of the YAML and of every file read.

    Raises:
        SceneFileError, DatasetNotFoundError, DataFormatError, DataTooLargeError,
        StorageError: one line naming the file and the fix; nothing is written.
    """
    from tfhsi.data.download import sha256_file
    from tfhsi.data.io import check_cube
    from tfhsi.data.readers import format_of

    scene_file, spec = read_scene_spec(path)
    cube_path = _resolve(scene_file, spec.cube)
    format_of(cube_path, fix=_fix(scene_file, "cube"))  # fails before the labels are read
    labels, labels_raster = read_scene_labels(scene_file, spec)
    cube_raster = read_raster(
        cube_path, role="cube", key=spec.cube.key, fix=_fix(scene_file, "cube")
    )
    cube = cube_raster.array
    if cube.shape[:2] != labels.shape:
        raise DataFormatError(
            f"{scene_file.name}: cube {cube_raster.files[-1]} is {'×'.join(map(str, cube.shape))} "
            f"({cube_raster.layout}) but labels {labels_raster.files[-1]} are "
            f"{'×'.join(map(str, labels.shape))}; they must share H×W. Check that both files "
            "belong to the same scene."
        )
    check_cube(cube, cube_raster.files[-1])
    bands = int(cube.shape[2])
    wavelengths = tuple(spec.wavelengths) if spec.wavelengths is not None else None
    if wavelengths is not None and len(wavelengths) != bands:
        raise SceneFileError(
            f"{scene_file}: wavelengths: {len(wavelengths)} values for a cube of {bands} bands; "
            "give one per band or remove the field."
        )
    rgb = spec.rgb_bands or _default_rgb(bands, wavelengths)
    if not all(0 <= b < bands for b in rgb):
        raise SceneFileError(
            f"{scene_file}: rgb_bands: {list(rgb)} outside the cube's bands 0..{bands - 1}; "
            "use zero-based band indices."
        )
    files = [scene_file, *cube_raster.files, *labels_raster.files]
    names = _source_names(scene_file, files)
    sources = {names[f]: sha256_file(f) for f in dict.fromkeys(files)}
    return SceneFileData(
        name=spec.name,
        cube=cube,
        labels=labels,
        class_names=spec.names,
        rgb_bands=rgb,
        synthetic=False,
        sources=sources,
        class_ids=spec.class_ids,
        ignore=spec.ignored,
        wavelengths=wavelengths,
        description=spec.description,
        scene_file=str(scene_file),
        layouts={"cube": cube_raster.layout, "labels": labels_raster.layout},
    )
