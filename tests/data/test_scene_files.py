"""Scene YAMLs over the user's files: every format reads back the array that was written."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml
from fake_scenes import write_mat

from tfhsi.data.datasets import check_dataset_ref, open_dataset
from tfhsi.data.scene_file import SceneFileData
from tfhsi.errors import DataFormatError, DataTooLargeError, SceneFileError

SHAPE = (7, 6, 5)  # H, W, B all different: a wrong axis order cannot pass
ENVI_CODES = {"u1": 1, "i2": 2, "i4": 3, "f4": 4, "f8": 5, "u2": 12, "u4": 13, "i8": 14, "u8": 15}


def make_cube(dtype: str = "int16", *, seed: int = 0, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 120, size=shape)
    if np.dtype(dtype).kind == "f":
        return (values / 7.0).astype(dtype)
    if np.dtype(dtype).kind == "i":
        values -= 60  # negative values survive a signed type
    return values.astype(dtype)


def make_labels(ids: tuple[int, ...] = (1, 2, 3), *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    labels = rng.choice(np.array((0, *ids)), size=SHAPE[:2]).astype(np.uint8)
    labels.ravel()[: len(ids) + 1] = (0, *ids)  # every id present
    return labels


def write_envi(
    folder: Path,
    name: str,
    array: np.ndarray,
    *,
    interleave: str = "bsq",
    big_endian: bool = False,
    offset: int = 0,
    data_suffix: str = ".img",
    extra: str = "",
) -> Path:
    """Writes an ENVI header and data file by hand (not with the reader's library)."""
    cube = array if array.ndim == 3 else array[:, :, None]
    lines, samples, bands = cube.shape
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    dtype = cube.dtype.newbyteorder(">" if big_endian else "<")
    payload = np.ascontiguousarray(cube.transpose(order)).astype(dtype).tobytes()
    (folder / f"{name}{data_suffix}").write_bytes(b"\x00" * offset + payload)
    header = folder / f"{name}.hdr"
    header.write_text(
        "ENVI\ndescription = {written by a test}\n"
        f"samples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = {offset}\n"
        f"file type = ENVI Standard\ndata type = {ENVI_CODES[cube.dtype.str[1:]]}\n"
        f"interleave = {interleave}\nbyte order = {int(big_endian)}\n{extra}"
    )
    return header


def write_scene_yaml(folder: Path, cube: Any, labels: Any, **fields: Any) -> Path:
    data = {"name": "my_scene", "cube": cube, "labels": labels, "class_names": ["a", "b", "c"]}
    data.update(fields)
    path = folder / "scene.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def open_written(folder: Path, cube_ref: Any, labels: np.ndarray | None = None) -> SceneFileData:
    np.save(folder / "gt.npy", make_labels() if labels is None else labels)
    scene = open_dataset(str(write_scene_yaml(folder, cube_ref, "gt.npy")))
    assert isinstance(scene, SceneFileData)
    return scene


def assert_same_cube(scene: SceneFileData, cube: np.ndarray) -> None:
    assert scene.cube.dtype == cube.dtype.newbyteorder("=")
    assert scene.cube.dtype.isnative and scene.cube.flags.c_contiguous
    np.testing.assert_array_equal(scene.cube, cube)


@pytest.mark.parametrize(
    ("interleave", "dtype", "big_endian", "offset"),
    [
        ("bsq", "int16", False, 0),
        ("bsq", "uint16", True, 64),
        ("bil", "int16", True, 0),
        ("bil", "float32", False, 128),
        ("bip", "uint16", False, 0),
        ("bip", "float32", True, 16),
        ("bsq", "float32", True, 0),
        ("bil", "uint16", False, 7),
        ("bip", "int16", True, 1),
    ],
)
def test_envi_cube_reads_back_the_written_array(
    tmp_path: Path, interleave: str, dtype: str, big_endian: bool, offset: int
) -> None:
    cube = make_cube(dtype)
    write_envi(tmp_path, "cube", cube, interleave=interleave, big_endian=big_endian, offset=offset)
    scene = open_written(tmp_path, {"path": "cube.hdr"})
    assert_same_cube(scene, cube)
    order = "big-endian" if big_endian else "little-endian"
    assert scene.layouts["cube"] == f"ENVI {interleave.upper()}, {order} {dtype}"


@pytest.mark.parametrize("code", list(ENVI_CODES))
@pytest.mark.parametrize("big_endian", [False, True])
def test_every_real_envi_data_type_reads_back_in_its_own_dtype(
    tmp_path: Path, code: str, big_endian: bool
) -> None:
    cube = make_cube(np.dtype(code).name)
    write_envi(tmp_path, "cube", cube, interleave="bil", big_endian=big_endian)
    assert_same_cube(open_written(tmp_path, "cube.hdr"), cube)


def test_envi_cube_named_by_its_data_file_finds_the_header_beside_it(tmp_path: Path) -> None:
    cube = make_cube("uint16")
    write_envi(tmp_path, "cube", cube, interleave="bip", data_suffix=".dat")
    scene = open_written(tmp_path, {"path": "cube.dat"})
    assert_same_cube(scene, cube)
    assert {"cube.hdr", "cube.dat"} <= set(scene.sources)


@pytest.mark.parametrize(
    ("layout", "write", "expected"),
    [
        (
            "samples",
            lambda p, c: tifffile.imwrite(p, c, photometric="minisblack", planarconfig="contig"),
            "TIFF, bands as samples (H, W, B)",
        ),
        (
            "pages",
            lambda p, c: tifffile.imwrite(p, c.transpose(2, 0, 1), photometric="minisblack"),
            "TIFF, bands as pages (B, H, W)",
        ),
        (
            "planes",
            lambda p, c: tifffile.imwrite(
                p, c.transpose(2, 0, 1), photometric="minisblack", planarconfig="separate"
            ),
            "TIFF, bands as planes (B, H, W)",
        ),
        (
            "pages_without_metadata",
            lambda p, c: tifffile.imwrite(
                p, c.transpose(2, 0, 1), photometric="minisblack", metadata=None
            ),
            "TIFF, bands as pages (B, H, W)",
        ),
    ],
)
def test_tiff_cube_reads_back_whichever_way_the_bands_are_stored(
    tmp_path: Path, layout: str, write: Any, expected: str
) -> None:
    cube = make_cube("int16")
    write(tmp_path / "cube.tif", cube)
    scene = open_written(tmp_path, "cube.tif")
    assert_same_cube(scene, cube)
    assert scene.layouts["cube"] == expected


def test_geotiff_with_georeferencing_tags_reads_back(tmp_path: Path) -> None:
    cube = make_cube("float32")
    geo = [
        (33550, "d", 3, (30.0, 30.0, 0.0), True),  # ModelPixelScale
        (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 4100000.0, 0.0), True),  # ModelTiepoint
        (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1), True),  # GeoKeyDirectory
    ]
    tifffile.imwrite(
        tmp_path / "cube.tiff",
        cube,
        photometric="minisblack",
        planarconfig="contig",
        extratags=geo,
        compression="zlib",
    )
    assert_same_cube(open_written(tmp_path, "cube.tiff"), cube)


def test_npy_npz_and_mat_cubes_read_back(tmp_path: Path) -> None:
    cube = make_cube("uint16")
    np.save(tmp_path / "cube.npy", np.asfortranarray(cube))
    assert_same_cube(open_written(tmp_path, "cube.npy"), cube)
    np.savez(tmp_path / "one.npz", anything=cube)
    assert_same_cube(open_written(tmp_path, "one.npz"), cube)
    np.savez_compressed(tmp_path / "two.npz", cube=cube, other=np.zeros(3))
    assert_same_cube(open_written(tmp_path, {"path": "two.npz", "key": "cube"}), cube)
    write_mat(tmp_path / "v5.mat", "X", cube)
    assert_same_cube(open_written(tmp_path, {"path": "v5.mat", "key": "X"}), cube)
    write_mat(tmp_path / "v73.mat", "X", cube, v73=True)
    assert_same_cube(open_written(tmp_path, "v73.mat"), cube)


@pytest.mark.parametrize("fmt", ["envi", "tiff", "npz", "mat"])
def test_labels_in_each_format_read_back(tmp_path: Path, fmt: str) -> None:
    labels = make_labels()
    np.save(tmp_path / "cube.npy", make_cube())
    ref: Any
    if fmt == "envi":
        write_envi(tmp_path, "gt", labels, big_endian=True)
        ref = "gt.hdr"
    elif fmt == "tiff":
        tifffile.imwrite(tmp_path / "gt.tif", labels)
        ref = "gt.tif"
    elif fmt == "npz":
        np.savez(tmp_path / "both.npz", gt=labels, cube=make_cube())
        ref = {"path": "both.npz", "key": "gt"}
    else:
        write_mat(tmp_path / "gt.mat", "gt", labels)
        ref = "gt.mat"
    scene = open_dataset(str(write_scene_yaml(tmp_path, "cube.npy", ref)))
    assert scene.labels.dtype == np.int32
    np.testing.assert_array_equal(scene.labels, labels)


def test_non_contiguous_class_ids_are_renumbered_in_id_order_and_kept(tmp_path: Path) -> None:
    raw = make_labels((9, 2, 7))
    np.save(tmp_path / "cube.npy", make_cube())
    np.save(tmp_path / "gt.npy", raw)
    names = {9: "nine", 2: "two", 7: "seven"}
    scene = open_dataset(
        write_scene_yaml(tmp_path, "cube.npy", "gt.npy", class_names=names)  # a Path works too
    )
    assert isinstance(scene, SceneFileData)
    assert scene.class_names == ("two", "seven", "nine")
    assert scene.class_ids == (2, 7, 9)
    expected = np.select([raw == 2, raw == 7, raw == 9], [1, 2, 3], 0)
    np.testing.assert_array_equal(scene.labels, expected)
    assert scene.class_counts().tolist() == [int((raw == i).sum()) for i in (2, 7, 9)]


def test_ignore_makes_another_id_unlabelled_and_zero_a_class(tmp_path: Path) -> None:
    raw = make_labels((0, 3, 255))
    np.save(tmp_path / "cube.npy", make_cube())
    np.save(tmp_path / "gt.npy", raw)
    path = write_scene_yaml(
        tmp_path, "cube.npy", "gt.npy", class_names={0: "water", 3: "soil"}, ignore=255
    )
    scene = open_dataset(str(path))
    np.testing.assert_array_equal(scene.labels, np.select([raw == 0, raw == 3], [1, 2], 0))


def test_scene_records_name_sources_and_yaml_fields(tmp_path: Path) -> None:
    cube = make_cube()
    write_envi(tmp_path, "cube", cube)
    waves = [450.0 + 50 * i for i in range(SHAPE[2])]
    path = write_scene_yaml(
        tmp_path, "cube.hdr", "gt.npy", wavelengths=waves, description="field trial"
    )
    np.save(tmp_path / "gt.npy", make_labels())
    scene = open_dataset(str(path))
    assert isinstance(scene, SceneFileData)
    assert scene.name == "my_scene" and scene.display_name == "my_scene" and not scene.synthetic
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert scene.sources == digest  # the YAML, header, data file and labels
    assert scene.wavelengths == tuple(waves) and scene.description == "field trial"
    assert scene.rgb_bands == (4, 2, 0)  # nearest to 640, 550 and 460 nm
    assert scene.scene_file == str(path)


def test_relative_yaml_path_is_read_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    np.save(folder / "cube.npy", make_cube())
    np.save(folder / "gt.npy", make_labels())
    write_scene_yaml(folder, "cube.npy", "gt.npy")
    monkeypatch.chdir(tmp_path)
    assert check_dataset_ref("scenes/scene.yaml") == str(folder / "scene.yaml")
    assert open_dataset("scenes/scene.yaml").shape == SHAPE


def test_check_dataset_ref_passes_names_and_rejects_unknown_ones(tmp_path: Path) -> None:
    assert check_dataset_ref("indian_pines") == "indian_pines"
    assert check_dataset_ref("synthetic:8x8x4x2@3") == "synthetic:8x8x4x2@3"
    with pytest.raises(SceneFileError, match=r"unknown scene 'indian_pine'.*NAME\.yaml") as err:
        check_dataset_ref("indian_pine")
    assert isinstance(err.value, ValueError)  # pydantic validators report the field
    with pytest.raises(SceneFileError, match=r"missing\.yaml not found"):
        check_dataset_ref(str(tmp_path / "missing.yaml"))
    with pytest.raises(SceneFileError, match="bad synthetic dataset"):
        check_dataset_ref("synthetic:8x")


@pytest.mark.parametrize("fmt", ["npy", "npz", "mat", "mat73", "tiff", "envi"])
def test_cube_larger_than_available_memory_is_refused_with_its_size_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    cube = make_cube("float64")
    if fmt in ("npy", "npz"):
        getattr(np, "save" if fmt == "npy" else "savez")(tmp_path / f"cube.{fmt}", cube)
    elif fmt.startswith("mat"):
        write_mat(tmp_path / "cube.mat", "cube", cube, v73=fmt == "mat73")
    elif fmt == "tiff":
        tifffile.imwrite(tmp_path / "cube.tiff", cube, photometric="minisblack")
    else:
        write_envi(tmp_path, "cube", cube)
    name = {"mat73": "cube.mat", "envi": "cube.hdr"}.get(fmt, f"cube.{fmt}")
    np.save(tmp_path / "gt.npy", make_labels())  # labels 7×6 uint8 = 42 B fit
    monkeypatch.setattr("tfhsi.data.readers.available_memory", lambda: 1000)
    with pytest.raises(DataTooLargeError, match=r"7×6×5 float64, 1\.6 KiB in memory.*1000 B"):
        open_dataset(str(write_scene_yaml(tmp_path, name, "gt.npy")))


def test_tiff_with_a_2d_cube_is_a_single_band_scene(tmp_path: Path) -> None:
    cube = make_cube(shape=SHAPE[:2])
    tifffile.imwrite(tmp_path / "cube.tif", cube)
    scene = open_written(tmp_path, "cube.tif")
    assert scene.shape == (*SHAPE[:2], 1)


def test_labels_with_a_band_axis_of_one_are_accepted(tmp_path: Path) -> None:
    labels = make_labels()
    scene = open_written(tmp_path, _npy(tmp_path, "cube", make_cube()), labels[:, :, None])
    np.testing.assert_array_equal(scene.labels, labels)


def _npy(folder: Path, name: str, array: np.ndarray) -> str:
    np.save(folder / f"{name}.npy", array)
    return f"{name}.npy"


def test_float_labels_with_fractions_are_refused(tmp_path: Path) -> None:
    labels = make_labels().astype(np.float32)
    labels[0, 1] = 1.5
    with pytest.raises(DataFormatError, match="whole numbers"):
        open_written(tmp_path, _npy(tmp_path, "cube", make_cube()), labels)


@pytest.mark.real_data
def test_salinas_a_as_envi_and_geotiff_equals_the_registered_scene(
    real_data_dir: Path, tmp_path: Path
) -> None:
    from tfhsi.data.io import read_mat_array
    from tfhsi.data.scenes import get_scene
    from tfhsi.data.splits import make_split

    registered = open_dataset("salinas_a", data_dir=real_data_dir)
    meta = get_scene("salinas_a")
    folder = real_data_dir / "salinas_a"
    cube = read_mat_array(folder / meta.cube.filename, meta.cube.key, ndim=3)
    raw = read_mat_array(folder / meta.labels.filename, meta.labels.key, ndim=2)
    assert sorted(set(np.unique(raw).tolist())) == [0, 1, 10, 11, 12, 13, 14]
    write_envi(tmp_path, "salinas_a", cube, interleave="bil", big_endian=True, offset=256)
    write_envi(tmp_path, "salinas_a_gt", raw, interleave="bsq")
    tifffile.imwrite(
        tmp_path / "salinas_a.tif", cube, photometric="minisblack", planarconfig="contig"
    )
    tifffile.imwrite(tmp_path / "salinas_a_gt.tif", raw)
    mapping = dict(zip(meta.raw_class_ids(), meta.class_names, strict=True))
    for cube_file, labels_file in (
        ("salinas_a.hdr", "salinas_a_gt.hdr"),
        ("salinas_a.tif", "salinas_a_gt.tif"),
    ):
        path = write_scene_yaml(
            tmp_path, cube_file, labels_file, name="salinas_a_mine", class_names=mapping
        )
        scene = open_dataset(str(path))
        assert scene.cube.dtype == registered.cube.dtype == np.int16
        np.testing.assert_array_equal(scene.cube, registered.cube)
        np.testing.assert_array_equal(scene.labels, registered.labels)
        assert scene.class_names == registered.class_names
        assert int(scene.class_counts().sum()) == 5348
        for spec in ("random:0.1", "disjoint:0.3"):
            mine = make_split(scene.labels, spec, seed=3, patch_size=5, val_fraction=0.1)
            theirs = make_split(registered.labels, spec, seed=3, patch_size=5, val_fraction=0.1)
            for subset in ("train", "val", "test"):
                np.testing.assert_array_equal(getattr(mine, subset), getattr(theirs, subset))
    # ... and so the same inputs and metrics: one seeded epoch of a small model on each
    from tfhsi.experiment import ExperimentSpec, train_experiment
    from tfhsi.train.config import TrainConfig

    def metrics(dataset: str, out: Path) -> dict:
        spec = ExperimentSpec(
            dataset=dataset, model="student2d", split="disjoint:0.3", patch_size=5, pca=8,
            train=TrainConfig(epochs=1),
        )  # fmt: skip
        return train_experiment(spec, out_dir=out, data_dir=real_data_dir)["keras"]

    envi_scene = write_scene_yaml(
        tmp_path, "salinas_a.hdr", "salinas_a_gt.hdr", name="salinas_a_mine", class_names=mapping
    )
    assert metrics(str(envi_scene), tmp_path / "mine") == metrics("salinas_a", tmp_path / "reg")
