"""Loader: real layout, v5 and v7.3, and an actionable error for every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from fake_scenes import fake_arrays, write_fake_scene, write_mat

from tfhsi.data.io import load_labels, load_scene, read_mat_array
from tfhsi.errors import ChecksumError, DataFormatError, DatasetNotFoundError, UnknownNameError


def test_load_scene_reads_fake_v5_files_with_mapped_labels(fake_data_dir: Path) -> None:
    scene = load_scene("indian_pines", data_dir=fake_data_dir, verify=False)
    cube, raw = fake_arrays("indian_pines")
    np.testing.assert_array_equal(scene.cube, cube)
    np.testing.assert_array_equal(scene.labels, raw.astype(np.int32))
    assert scene.cube.flags.c_contiguous
    assert scene.n_classes == 16 and not scene.synthetic
    assert set(scene.sources) == {"Indian_pines_corrected.mat", "Indian_pines_gt.mat"}


def test_load_scene_reads_v73_hdf5_with_transposed_axes(tmp_path: Path) -> None:
    write_fake_scene("indian_pines", tmp_path, v73=True)
    scene = load_scene("indian_pines", data_dir=tmp_path, verify=False)
    cube, raw = fake_arrays("indian_pines")
    np.testing.assert_array_equal(scene.cube, cube)
    np.testing.assert_array_equal(scene.labels, raw)


def test_salinas_a_labels_are_mapped_from_salinas_ids(fake_data_dir: Path) -> None:
    labels, _, _ = load_labels("salinas_a", data_dir=fake_data_dir, verify=False)
    _, raw = fake_arrays("salinas_a")
    assert set(np.unique(labels)) == set(range(7))
    assert (labels[raw == 10] == 2).all() and (labels[raw == 14] == 6).all()


def test_missing_cube_names_file_command_and_checksum(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_scene("pavia_u", data_dir=tmp_path)
    message = str(err.value)
    assert "PaviaU.mat not found in" in message
    assert "tfhsi data download pavia_u" in message
    assert "sha256 2844" in message


def test_unknown_scene_suggests_close_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'indian_pines'"):
        load_scene("indian_pine")


def test_wrong_key_lists_variables_found(tmp_path: Path) -> None:
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"a": np.zeros((3, 3, 2)), "b": np.ones((3, 3, 2))})
    with pytest.raises(DataFormatError, match=r"no variable 'cube'.*a \(3-D\), b \(3-D\)"):
        read_mat_array(path, "cube", ndim=3)


def test_single_array_under_another_key_is_accepted(tmp_path: Path) -> None:
    path = write_mat(tmp_path / "other.mat", "IndianPinesCorrected", np.ones((3, 4, 5)))
    assert read_mat_array(path, "indian_pines_corrected", ndim=3).shape == (3, 4, 5)


def test_truncated_file_is_reported_as_corrupt(fake_data_dir: Path) -> None:
    path = fake_data_dir / "indian_pines" / "Indian_pines_corrected.mat"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="not a valid MAT file or truncated"):
        load_scene("indian_pines", data_dir=fake_data_dir, verify=False)


def test_garbage_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.mat"
    path.write_bytes(b"this is not a MAT file at all" * 10)
    with pytest.raises(DataFormatError, match=r"junk\.mat: not a valid MAT file"):
        read_mat_array(path, "x", ndim=3)


def test_cube_label_shape_mismatch_names_both_shapes(fake_data_dir: Path) -> None:
    write_mat(
        fake_data_dir / "indian_pines" / "Indian_pines_gt.mat",
        "indian_pines_gt",
        np.zeros((5, 5), np.uint8),
    )
    with pytest.raises(DataFormatError, match=r"12×10×8 but labels .* are 5×5"):
        load_scene("indian_pines", data_dir=fake_data_dir, verify=False)


def test_nan_band_is_named(fake_data_dir: Path) -> None:
    cube = fake_arrays("indian_pines")[0].astype(np.float32)
    cube[2, 3, 5] = np.nan
    cube[0, 0, 7] = np.inf
    write_mat(
        fake_data_dir / "indian_pines" / "Indian_pines_corrected.mat",
        "indian_pines_corrected",
        cube,
    )
    with pytest.raises(DataFormatError, match=r"NaN/Inf values in 2 band\(s\) \(0-based: 5, 7\)"):
        load_scene("indian_pines", data_dir=fake_data_dir, verify=False)


def test_labels_beyond_class_list_are_rejected(fake_data_dir: Path) -> None:
    labels = fake_arrays("indian_pines")[1]
    labels[1, 1] = 17
    write_mat(fake_data_dir / "indian_pines" / "Indian_pines_gt.mat", "indian_pines_gt", labels)
    with pytest.raises(
        DataFormatError, match=r"label values \[17\] are not classes of indian_pines"
    ):
        load_scene("indian_pines", data_dir=fake_data_dir, verify=False)


def test_checksum_mismatch_is_refused_when_verifying(fake_data_dir: Path) -> None:
    with pytest.raises(ChecksumError, match="expected ec2f8808"):
        load_scene("indian_pines", data_dir=fake_data_dir, verify=True)


def test_flat_layout_is_found(tmp_path: Path) -> None:
    cube, labels = fake_arrays("indian_pines")
    write_mat(tmp_path / "Indian_pines_corrected.mat", "indian_pines_corrected", cube)
    write_mat(tmp_path / "Indian_pines_gt.mat", "indian_pines_gt", labels)
    assert load_scene("indian_pines", data_dir=tmp_path, verify=False).shape == FAKE_SHAPE


FAKE_SHAPE = (12, 10, 8)


@pytest.mark.real_data
def test_real_indian_pines_loads_verified(real_data_dir: Path) -> None:
    scene = load_scene("indian_pines", data_dir=real_data_dir)
    assert scene.shape == (145, 145, 200)
    assert scene.cube.dtype == np.uint16
    assert int(scene.class_counts().sum()) == 10249
    assert scene.class_counts()[8] == 20  # Oats


@pytest.mark.real_data
def test_real_pavia_u_labels_only(real_data_dir: Path) -> None:
    labels, _, digest = load_labels("pavia_u", data_dir=real_data_dir)
    assert labels.shape == (610, 340)
    assert int((labels > 0).sum()) == 42776
    assert digest.startswith("23f6a426")
