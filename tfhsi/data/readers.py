"""Reading a cube or label map from the user's files: MAT, NPY/NPZ, ENVI and TIFF/GeoTIFF.

The format follows the file name: ``.mat`` (v5 or v7.3), ``.npy``, ``.npz``, ``.tif``/
``.tiff`` and ENVI (the ``.hdr`` header, or the data file beside it). Arrays come back
``(H, W, B)`` for cubes and ``(H, W)`` for labels, C-contiguous, in the file's dtype
(native byte order). Before reading, each reader compares the size the array takes in
memory with the memory available. Every failure is a :class:`~tfhsi.errors.TfhsiError`
naming the file and the fix.

TIFF layouts are read from the TIFF's own tags, not guessed from the array's shape:
bands as samples of each pixel (``PlanarConfiguration=1``, GDAL's ``INTERLEAVE=PIXEL``)
are ``(H, W, B)`` already; bands as planes (``PlanarConfiguration=2``, GDAL's
``INTERLEAVE=BAND``) or as one page per band are ``(B, H, W)`` and are transposed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tfhsi.errors import DataFormatError, DatasetNotFoundError, DataTooLargeError, storage_error

Role = Literal["cube", "labels"]
TIFF_SUFFIXES = (".tif", ".tiff", ".gtif", ".gtiff")
ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin", ".envi")
_ENVI_TYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_MAT_CLASSES = {"double": "f8", "single": "f4", "logical": "u1"}
_MAT_CLASSES |= {
    f"{s}int{n}": f"{s[:1] or 'i'}{n // 8}" for s in ("", "u") for n in (8, 16, 32, 64)
}


@dataclass(frozen=True)
class Raster:
    """An array read from disk and the files it came from.

    Attributes:
        array: ``(H, W, B)`` cube or ``(H, W)`` labels, C-contiguous, native byte order.
        files: Every file read (an ENVI header and its data file are two).
        layout: How the file stored it, e.g. ``"ENVI BIL, big-endian int16"``.
    """

    array: np.ndarray
    files: tuple[Path, ...]
    layout: str


def format_of(path: Path, *, fix: str = "") -> str:
    """``"mat"``, ``"npy"``, ``"npz"``, ``"tiff"`` or ``"envi"`` for ``path``'s name."""
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npy", ".npz"):
        return suffix[1:]
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix == ".hdr" or suffix in ENVI_DATA_SUFFIXES:
        return "envi"
    raise DataFormatError(
        f"{path}: unknown file format {suffix!r}; use .mat, .npy, .npz, .tif/.tiff or ENVI "
        "(.hdr with its data file)" + (f"; {fix}" if fix else ".")
    )


def read_raster(path: Path, *, role: Role, key: str | None = None, fix: str = "") -> Raster:
    """Reads the cube or the labels stored in ``path``.

    Args:
        path: The file (for ENVI: the ``.hdr`` or the data file beside it).
        role: ``"cube"`` gives ``(H, W, B)``; ``"labels"`` gives ``(H, W)`` (one band).
        key: Variable of a MAT file or array of an NPZ file (None: the only one).
        fix: Advice appended to format errors (e.g. which YAML field to change).

    Raises:
        DatasetNotFoundError: a file is missing.
        DataFormatError: the file is unreadable, or holds no real-valued array of that shape.
        DataTooLargeError: the array would not fit in the memory available.
        StorageError: the file is not readable (permissions).
    """
    fmt = format_of(path, fix=fix)
    if fmt != "envi":
        _require(path, fix)
    advice = fix[:1].upper() + fix[1:]  # the fix as a sentence of its own
    if fmt == "mat":
        raster = _read_mat(path, role, key, advice)
    elif fmt == "npy":
        raster = _read_npy(path, advice)
    elif fmt == "npz":
        raster = _read_npz(path, key, advice)
    elif fmt == "tiff":
        raster = _read_tiff(path, advice)
    else:
        raster = _read_envi(path, fix)
    return _shaped(raster, role, advice)


def _require(path: Path, fix: str) -> None:
    try:
        if path.is_file():
            return
    except OSError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    raise DatasetNotFoundError(f"{path} not found" + (f"; {fix}" if fix else "; check the path."))


def _shaped(raster: Raster, role: Role, fix: str) -> Raster:
    array, where = raster.array, raster.files[-1]
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataFormatError(
            f"{where}: holds {array.dtype} values; a {role} must be real numbers. {fix}".strip()
        )
    if role == "labels" and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if role == "cube" and array.ndim == 2:
        array = array[:, :, None]  # a single-band cube
    want = 3 if role == "cube" else 2
    if array.ndim != want:
        shape = "×".join(map(str, array.shape))
        need = "an H×W×B cube" if role == "cube" else "an H×W label map (one band)"
        raise DataFormatError(
            f"{where}: holds a {shape} array ({raster.layout}); expected {need}. {fix}".strip()
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return Raster(np.ascontiguousarray(array), raster.files, raster.layout)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError  # pragma: no cover


def ensure_fits(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raises :class:`DataTooLargeError` when an array of ``shape`` would not fit in memory."""
    nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    free = available_memory()
    if free is not None and nbytes > free:
        raise DataTooLargeError(
            f"{path}: the array is {'×'.join(map(str, shape))} {np.dtype(dtype).name}, "
            f"{_size(nbytes)} in memory, more than the {_size(free)} available. Crop the scene "
            "(fewer rows, columns or bands) or use a machine with more memory."
        )


def _unreadable(path: Path, what: str, exc: BaseException, fix: str) -> DataFormatError:
    return DataFormatError(
        f"cannot read {path}: not a valid {what} or truncated ({type(exc).__name__}: {exc}). "
        + (fix or "Check the file.")
    )


def _read_mat(path: Path, role: Role, key: str | None, fix: str) -> Raster:
    from tfhsi.data.io import read_mat_array

    ndim = 3 if role == "cube" else 2
    _check_mat(path, key, fix)
    array = read_mat_array(path, key or "", ndim=ndim, fix=fix or "Check the file.")
    return Raster(array, (path,), f"MAT variable {key}" if key else "MAT")


def _check_mat(path: Path, key: str | None, fix: str) -> None:
    """Checks that ``key`` exists and the variables fit in memory, without reading them."""
    import h5py
    import scipy.io

    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                found = {
                    k: (tuple(f[k].shape)[::-1], f[k].dtype)
                    for k in f
                    if isinstance(f[k], h5py.Dataset) and f[k].dtype.kind in "biuf"
                }
        else:
            found = {
                n: (tuple(s), np.dtype(_MAT_CLASSES[c]))
                for n, s, c in scipy.io.whosmat(path)
                if c in _MAT_CLASSES
            }
    except Exception:  # read_mat_array reports unreadable files
        return
    sizes = list(found.values())
    largest = max(sizes, key=lambda sd: int(np.prod(sd[0])) * sd[1].itemsize, default=None)
    if key and key not in found and key.lower() not in {k.lower() for k in found}:
        names = ", ".join(f"{k} ({len(s)}-D)" for k, (s, _) in found.items()) or "none"
        raise DataFormatError(
            f"{path}: no variable {key!r} (variables found: {names}). {fix or 'Check the key.'}"
        )
    if largest is not None:
        ensure_fits(path, *largest)


def _read_npy(path: Path, fix: str) -> Raster:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except PermissionError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable(path, ".npy file", exc, fix) from exc
    ensure_fits(path, mapped.shape, mapped.dtype)
    return Raster(np.array(mapped), (path,), "NPY")


def _read_npz(path: Path, key: str | None, fix: str) -> Raster:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None and len(names) != 1:
                raise DataFormatError(
                    f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); say "
                    f"which with `key:`. {fix}".strip()
                )
            name = key if key is not None else names[0]
            if name not in names:
                raise DataFormatError(
                    f"{path}: no array {name!r} (arrays found: {', '.join(names) or 'none'}). "
                    f"{fix or 'Check the key.'}"
                )
            with archive.zip.open(name + ".npy") as member:
                version = np.lib.format.read_magic(member)
                header = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }.get(version)
                if header is not None:  # other versions: read without the check
                    shape, _, dtype = header(member)
                    ensure_fits(path, shape, dtype)
            array = archive[name]
    except PermissionError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, ".npz file", exc, fix) from exc
    return Raster(array, (path,), f"NPZ array {name}")


def _read_tiff(path: Path, fix: str) -> Raster:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = tuple(series.shape), series.axes
            keep = [i for i, a in enumerate(axes) if shape[i] != 1 or a in "YX"]
            shape, axes = tuple(shape[i] for i in keep), "".join(axes[i] for i in keep)
            ensure_fits(path, shape, series.dtype)
            array = series.asarray().reshape(shape)
    except PermissionError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    except KeyError as exc:
        if "imagecodecs" in str(exc):
            raise DataFormatError(
                f"{path}: compressed with a codec that needs the imagecodecs package; "
                "`pip install imagecodecs`, or save the TIFF uncompressed or with deflate."
            ) from exc
        raise _unreadable(path, "TIFF file", exc, fix) from exc
    except (OSError, ValueError, EOFError, IndexError, tifffile.TiffFileError) as exc:
        raise _unreadable(path, "TIFF file", exc, fix) from exc
    if axes == "YX":
        return Raster(array, (path,), "TIFF, one band")
    if len(axes) == 3 and axes[:2] == "YX":
        return Raster(array, (path,), "TIFF, bands as samples (H, W, B)")
    if len(axes) == 3 and axes[1:] == "YX":
        where = "planes" if axes[0] == "S" else "pages"
        return Raster(array.transpose(1, 2, 0), (path,), f"TIFF, bands as {where} (B, H, W)")
    raise DataFormatError(
        f"{path}: TIFF image has axes {axes} ({'×'.join(map(str, shape))}); expected one image "
        "with bands as samples (H, W, B) or as pages/planes (B, H, W)."
    )


def envi_files(path: Path) -> tuple[Path, Path | None]:
    """The ENVI header and data file for ``path`` (either of the two); data None if not found."""
    if path.suffix.lower() == ".hdr":
        header = path
        stem = path.with_suffix("")
        data = next(
            (
                stem.with_name(stem.name + ext)
                for ext in (*ENVI_DATA_SUFFIXES, *(e.upper() for e in ENVI_DATA_SUFFIXES[1:]))
                if stem.with_name(stem.name + ext).is_file()
            ),
            None,
        )
        return header, data
    for header in (path.with_name(path.name + ".hdr"), path.with_suffix(".hdr")):
        if header.is_file():
            return header, path if path.is_file() else None
    return path.with_suffix(".hdr"), path if path.is_file() else None


def _read_envi(path: Path, fix: str) -> Raster:
    header, data = envi_files(path)
    _require(header, fix or "an ENVI file needs its .hdr header beside it")
    if data is None:
        raise DatasetNotFoundError(
            f"{header}: ENVI data file not found (looked for "
            f"{header.with_suffix('').name}{{,.img,.dat,.raw,.bsq,.bil,.bip,.bin}}); give the data "
            "file as `path:` (its header beside it)."
        )
    dtype, shape, interleave, offset = _envi_header(header)
    ensure_fits(data, shape, dtype)
    need = offset + int(np.prod(shape)) * dtype.itemsize
    have = data.stat().st_size
    if have < need:
        raise DataFormatError(
            f"{data}: {have:,} bytes, but header {header.name} describes {need:,} "
            f"({'×'.join(map(str, shape))} {dtype.name} + {offset} header offset); the file is "
            "truncated or the header is wrong."
        )
    import spectral.io.envi as envi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = envi.open(str(header), str(data))
            mapped = image.open_memmap(interleave="bip")  # (lines, samples, bands) view
            cube = np.ascontiguousarray(mapped)
        del mapped, image
    except PermissionError as exc:
        raise storage_error(exc, data, writing=False) or exc from None
    except (envi.EnviException, OSError, ValueError, KeyError) as exc:
        raise _unreadable(data, "ENVI image", exc, fix[:1].upper() + fix[1:]) from exc
    order = "big-endian" if dtype.byteorder == ">" else "little-endian"
    return Raster(cube, (header, data), f"ENVI {interleave.upper()}, {order} {dtype.name}")


def _envi_header(header: Path) -> tuple[np.dtype, tuple[int, int, int], str, int]:
    """(dtype with byte order, (lines, samples, bands), interleave, offset) from a header."""
    import spectral.io.envi as envi

    def bad(problem: str) -> DataFormatError:
        return DataFormatError(f"{header}: invalid ENVI header: {problem}.")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fields = envi.read_envi_header(str(header))
    except PermissionError as exc:
        raise storage_error(exc, header, writing=False) or exc from None
    except (envi.EnviException, OSError, ValueError, UnicodeDecodeError) as exc:
        problem = " ".join(f"{exc}".split()).rstrip(".")
        raise bad(f"{problem}; it must start with ENVI and hold `key = value` lines") from None
    if str(fields.get("file type", "ENVI Standard")).strip().lower() == "envi spectral library":
        raise bad("a spectral library, not an image")

    def integer(name: str, *, minimum: int, default: int | None = None) -> int:
        text = fields.get(name)
        if text is None and default is not None:
            return default
        if text is None:
            raise bad(f"no `{name} = ...` line; add it")
        try:
            value = int(str(text).strip())
        except ValueError:
            raise bad(f"`{name} = {text}` is not a whole number") from None
        if value < minimum:
            raise bad(f"`{name} = {value}` must be ≥ {minimum}")
        return value

    shape = (
        integer("lines", minimum=1),
        integer("samples", minimum=1),
        integer("bands", minimum=1),
    )
    code = integer("data type", minimum=0)
    if code not in _ENVI_TYPES:
        kind = "complex" if code in (6, 9) else "unknown"
        raise bad(
            f"`data type = {code}` is {kind}; use 1, 2, 3, 4, 5, 12, 13, 14 or 15 (real numbers)"
        )
    dtype = np.dtype(_ENVI_TYPES[code])
    interleave = str(fields.get("interleave", "")).strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise bad(f"`interleave = {interleave or '(missing)'}`; use bsq, bil or bip")
    if dtype.itemsize > 1:
        order = integer("byte order", minimum=0)
        if order > 1:
            raise bad(f"`byte order = {order}`; use 0 (little-endian) or 1 (big-endian)")
        dtype = dtype.newbyteorder(">" if order else "<")
    return dtype, shape, interleave, integer("header offset", minimum=0, default=0)
