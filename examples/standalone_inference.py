"""Classify the test pixels of a scene with an exported .tflite file, without tfhsi.

Needs numpy, scipy and ai-edge-litert only (``pip install numpy scipy ai-edge-litert``)::

    python standalone_inference.py model.tflite --cube Indian_pines_corrected.mat \
        --labels Indian_pines_gt.mat --test-mask split.npz [--transform transform.npz]

What it does, step by step, is what tfhsi does when it evaluates a file:

1. Reads the file's TFLite metadata (the ``TFLITE_METADATA`` buffer): the per-band
   standardisation ``(x - mean) / std`` of the input tensor and the class names packed in
   the file (``labels.txt``). Files exported by tfhsi carry their PCA as their first layer,
   so they take all the scene's bands: standardised as the metadata says, or, when the
   metadata has no normalisation, as stored in the cube. A file without metadata (older
   exports, whose PCA ran outside the file) needs ``--transform transform.npz``: the
   per-band mean and scale fitted on the training pixels, the bands that were constant there
   (set to 0), then, if fitted, the projection ``(z - pca_mean) @ pca_components``.
2. Standardises the whole cube, pads it by ``k // 2`` pixels on each side by reflection
   (mirroring without repeating the edge pixel), and cuts the ``k x k`` patch around every
   test pixel (``(k, k, B)``, ``(k, k, B, 1)`` or the centre spectrum ``(B, 1)``, as the
   input tensor's shape says).
3. Quantises each patch with the input tensor's own scale and zero point
   (``round(x / scale) + zero_point``, halves away from zero, clipped), runs it (one patch
   per call for models with a static batch of 1), dequantises the scores and takes the
   highest.
4. Prints overall accuracy, average accuracy over the classes present in the test set, and
   Cohen's kappa: ``OA 96.95  AA 80.16  kappa 0.9652``.

``--test-mask`` takes the ``split.npz`` that ships with the model (boolean ``test`` mask,
row-major pixel order) or any ``.npz`` / ``.npy`` with an ``(H, W)`` boolean mask. Labels are
``1..C`` with 0 for unlabelled pixels; the cube and labels are MATLAB v5 ``.mat`` files.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import flatbuffers  # installed with ai-edge-litert
import numpy as np
import scipy.io
from ai_edge_litert import schema_py_generated as tflite_schema
from ai_edge_litert.interpreter import Interpreter

METADATA_NAME = "TFLITE_METADATA"
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
CHUNK = 1024  # test pixels whose patches are cut at a time


# -- TFLite metadata (metadata_schema.fbs: ModelMetadata, file identifier "M001") -----------


class _Table:
    """Just enough of a flatbuffer table reader for the metadata fields used here."""

    def __init__(self, buf: bytearray, pos: int) -> None:
        self.tab = flatbuffers.table.Table(buf, pos)

    def _offset(self, slot: int) -> int:
        return int(self.tab.Offset(4 + 2 * slot))

    def string(self, slot: int) -> str | None:
        o = self._offset(slot)
        return self.tab.String(o + self.tab.Pos).decode() if o else None

    def byte(self, slot: int) -> int:
        o = self._offset(slot)
        return int(self.tab.Get(flatbuffers.number_types.Uint8Flags, o + self.tab.Pos)) if o else 0

    def child(self, slot: int) -> _Table | None:
        o = self._offset(slot)
        return _Table(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos)) if o else None

    def tables(self, slot: int) -> list[_Table]:
        o = self._offset(slot)
        if not o:
            return []
        start = self.tab.Vector(o)
        n = self.tab.VectorLen(o)
        return [_Table(self.tab.Bytes, self.tab.Indirect(start + 4 * i)) for i in range(n)]

    def floats(self, slot: int) -> np.ndarray | None:
        o = self._offset(slot)
        if not o:
            return None
        return self.tab.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, o).copy()


def read_metadata(data: bytes) -> dict:
    """``{"present", "mean", "std", "labels"}`` from the file's metadata (None where it has none)."""
    found: dict = {"present": False, "mean": None, "std": None, "labels": None}
    model = tflite_schema.Model.GetRootAs(data, 0)
    raw = None
    for i in range(model.MetadataLength()):
        if (model.Metadata(i).Name() or b"").decode() == METADATA_NAME:
            raw = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy()
    if raw is None or isinstance(raw, int):
        return found
    raw = bytes(raw)
    if raw[4:8] != b"M001":
        sys.exit(f"error: the {METADATA_NAME} buffer is not TFLite metadata (no 'M001').")
    found["present"] = True
    root = _Table(bytearray(raw), int(flatbuffers.encode.Get(flatbuffers.packer.uoffset, raw, 0)))
    subgraphs = root.tables(3)  # ModelMetadata.subgraph_metadata
    if not subgraphs:
        return found
    inputs, outputs = subgraphs[0].tables(2), subgraphs[0].tables(3)
    for unit in inputs[0].tables(4) if inputs else []:  # TensorMetadata.process_units
        options = unit.child(1)
        if unit.byte(0) == NORMALIZATION_OPTIONS and options is not None:
            found["mean"], found["std"] = options.floats(0), options.floats(1)
    packed = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            packed = {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        pass
    for file in outputs[0].tables(6) if outputs else []:  # TensorMetadata.associated_files
        if file.byte(2) == TENSOR_AXIS_LABELS and file.string(0) in packed:
            found["labels"] = packed[file.string(0)].decode().splitlines()
    return found


# -- inputs -----------------------------------------------------------------------------


def load_mat(path: Path, key: str | None) -> np.ndarray:
    """The array ``key`` of a MATLAB v5 file, or its only array."""
    variables = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    if key is None:
        if len(variables) != 1:
            sys.exit(f"error: {path} holds {sorted(variables)}; pick one with its --*-key option.")
        key = next(iter(variables))
    if key not in variables:
        sys.exit(f"error: {path} has no variable {key!r}; it holds {sorted(variables)}.")
    return np.asarray(variables[key])


def load_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The boolean test mask of a ``split.npz`` (its ``test`` array) or of an ``.npy``."""
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "test" not in loaded.files:
                sys.exit(f"error: {path} has no 'test' mask (arrays: {loaded.files}).")
            mask = loaded["test"]
    else:
        mask = loaded
    if mask.shape != shape:
        sys.exit(f"error: the test mask is {mask.shape} but the labels are {shape}.")
    return mask.astype(bool)


def standardise(cube: np.ndarray, meta: dict, transform: Path | None) -> np.ndarray:
    """The cube as the model's input bands, float32, as tfhsi's SpectralTransform computes it."""
    pixels = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    if meta["mean"] is not None and meta["std"] is not None:
        ignored = f" ({transform} not used)" if transform is not None else ""
        print(f"normalisation: from the model's metadata{ignored}", file=sys.stderr)
        z = (pixels - meta["mean"].astype(np.float64)) / meta["std"].astype(np.float64)
        return z.astype(np.float32).reshape(*cube.shape[:-1], -1)
    if transform is None and meta["present"]:
        print("normalisation: none (the metadata says: raw bands)", file=sys.stderr)
        return pixels.astype(np.float32).reshape(cube.shape)
    if transform is None:
        sys.exit(
            "error: the model has no metadata; pass --transform transform.npz (shipped with "
            "the model)."
        )
    print(f"normalisation: from {transform}", file=sys.stderr)
    with np.load(transform, allow_pickle=False) as t:
        z = (pixels - t["mean"]) / t["scale"]
        z[:, t["zero_variance_bands"].astype(np.int64)] = 0.0
        if bool(t["has_pca"]):
            z = (z - t["pca_mean"]) @ t["pca_components"]
    return z.astype(np.float32).reshape(*cube.shape[:-1], -1)


def patches_at(padded: np.ndarray, centres: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Model inputs ``(N, *shape)`` for the pixels ``centres`` (row, col of the unpadded cube)."""
    k = 1 if len(shape) == 2 else shape[0]
    offsets = np.arange(k)
    rows = centres[:, 0, None] + offsets
    cols = centres[:, 1, None] + offsets
    patches = padded[rows[:, :, None], cols[:, None, :]]  # (N, k, k, B)
    if len(shape) == 2:  # (B, 1): the centre pixel's spectrum
        return patches[:, k // 2, k // 2, :, None]
    return patches.reshape(len(centres), *shape)


# -- running ----------------------------------------------------------------------------


class Classifier:
    """A ``.tflite`` classifier on the LiteRT interpreter: float patches in, classes out."""

    def __init__(self, data: bytes) -> None:
        self.interpreter = Interpreter(model_content=data)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.sample_shape = tuple(int(d) for d in self.input["shape"][1:])
        self.static_batch = int(self.input["shape_signature"][0]) > 0
        self.batch = int(self.input["shape"][0]) if self.static_batch else 256

    def quantise(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        if dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=dtype)
        scales = self.input["quantization_parameters"]["scales"]
        zero_points = self.input["quantization_parameters"]["zero_points"]
        v = x.astype(np.float32)
        if len(scales):
            v = v / np.float32(scales[0])
            v = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + np.float32(zero_points[0])
        else:
            v = np.rint(v)
        info = np.iinfo(dtype)
        return np.ascontiguousarray(np.clip(v, info.min, info.max).astype(dtype))

    def dequantise(self, raw: np.ndarray) -> np.ndarray:
        scales = self.output["quantization_parameters"]["scales"]
        if not len(scales):
            return raw.astype(np.float32)
        zero_point = self.output["quantization_parameters"]["zero_points"][0]
        return np.float32(scales[0]) * (raw.astype(np.float32) - np.float32(zero_point))

    def classify(self, patches: np.ndarray) -> np.ndarray:
        """Class index of each of ``(N, *sample_shape)`` float patches."""
        q = self.quantise(patches)
        if not self.static_batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(q.shape))
            self.interpreter.allocate_tensors()
            self.interpreter.set_tensor(self.input["index"], q)
            self.interpreter.invoke()
            return self.dequantise(self.interpreter.get_tensor(self.output["index"])).argmax(1)
        classes = []
        for start in range(0, len(q), self.batch):
            chunk = q[start : start + self.batch]
            k = len(chunk)
            if k < self.batch:  # pad the last chunk; the padded rows are dropped
                chunk = np.concatenate(
                    [chunk, np.zeros((self.batch - k, *chunk.shape[1:]), q.dtype)]
                )
            self.interpreter.set_tensor(self.input["index"], chunk)
            self.interpreter.invoke()
            scores = self.dequantise(self.interpreter.get_tensor(self.output["index"]))
            classes.append(scores[:k].argmax(axis=1))
        return np.concatenate(classes)


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[float, float, float]:
    """Overall accuracy, average accuracy (classes present in the test set), Cohen's kappa."""
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    cm = cm.reshape(n_classes, n_classes).astype(np.int64)
    total, trace = int(cm.sum()), int(np.trace(cm))
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, np.diag(cm).astype(np.float64) / support, np.nan)
    chance = sum(int(r) * int(p) for r, p in zip(support.tolist(), predicted.tolist(), strict=True))
    denom = total * total - chance
    kappa = 1.0 if denom == 0 else (total * trace - chance) / denom
    return trace / total, float(np.mean(recall[support > 0])), kappa


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the .tflite file")
    parser.add_argument("--cube", type=Path, required=True, help="(H, W, B) cube, .mat")
    parser.add_argument("--labels", type=Path, required=True, help="(H, W) labels 0..C, .mat")
    parser.add_argument("--test-mask", type=Path, required=True, help="split.npz (or .npy)")
    parser.add_argument("--transform", type=Path, help="transform.npz, if the metadata lacks it")
    parser.add_argument("--cube-key", help="variable of the cube in its .mat file")
    parser.add_argument("--labels-key", help="variable of the labels in their .mat file")
    parser.add_argument(
        "--predictions", type=Path, help="save an (H, W) .npy map: predicted label 1..C, else 0"
    )
    args = parser.parse_args(argv)

    data = args.model.read_bytes()
    meta = read_metadata(data)
    model = Classifier(data)
    cube = load_mat(args.cube, args.cube_key)
    labels = load_mat(args.labels, args.labels_key).astype(np.int64)
    if cube.ndim != 3 or labels.shape != cube.shape[:2]:
        sys.exit(f"error: cube {cube.shape} and labels {labels.shape} do not match.")
    mask = load_mask(args.test_mask, labels.shape) & (labels > 0)

    x = standardise(cube, meta, args.transform)
    shape = model.sample_shape
    bands = shape[0] if len(shape) == 2 else shape[2]
    if x.shape[-1] != bands:
        sys.exit(f"error: the model takes {bands} bands but the prepared cube has {x.shape[-1]}.")
    k = 1 if len(shape) == 2 else shape[0]
    radius = k // 2
    padded = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")

    centres = np.argwhere(mask)
    if len(centres) == 0:
        sys.exit(f"error: {args.test_mask} selects no labelled pixel.")
    y_pred = np.concatenate(
        [
            model.classify(patches_at(padded, centres[i : i + CHUNK], shape))
            for i in range(0, len(centres), CHUNK)
        ]
    ).astype(np.int64)
    y_true = labels[mask] - 1  # argwhere and boolean indexing share the row-major order
    n_classes = int(model.output["shape"][-1])
    if meta["labels"] is not None and len(meta["labels"]) != n_classes:
        sys.exit(f"error: {len(meta['labels'])} labels in the metadata, {n_classes} outputs.")
    if y_true.max(initial=0) >= n_classes:
        sys.exit(
            f"error: labels go up to {y_true.max() + 1} but the model has {n_classes} classes."
        )
    if args.predictions is not None:
        predicted = np.zeros(labels.shape, np.int16)
        predicted[mask] = y_pred + 1
        np.save(args.predictions, predicted)
    oa, aa, kappa = scores(y_true, y_pred, n_classes)
    if meta["labels"] is not None:
        print(f"classes: {', '.join(meta['labels'])}", file=sys.stderr)
    print(f"OA {100 * oa:.2f}  AA {100 * aa:.2f}  kappa {kappa:.4f}")


if __name__ == "__main__":
    main()
