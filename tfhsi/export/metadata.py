"""TFLite model metadata: what a ``.tflite`` file says about its input, output and labels.

The metadata is a ``ModelMetadata`` flatbuffer of the TFLite metadata schema (tflite-support's
``metadata_schema.fbs``, file identifier ``M001``) stored in a model buffer that a
``Model.metadata`` entry named ``TFLITE_METADATA`` points to; associated files (the class
labels, ``labels.txt``) follow the flatbuffer as a zip archive. That is what the metadata
populators of tflite-support and MediaPipe write, and what their ``MetadataDisplayer``, the
Android ``MetadataExtractor`` and the LiteRT / MediaPipe task libraries read: the labels file
is an associated file of the output tensor with type ``TENSOR_AXIS_LABELS``; the per-band
standardisation is the input tensor's ``NormalizationOptions`` (``(x - mean) / std``).

The few tables needed are built with the ``flatbuffers`` runtime
(:mod:`tfhsi.export._metadata_schema`), because no maintained writer installs with tfhsi's
stack: tflite-support 0.4.4 (its last release) pins ``protobuf<4`` while TensorFlow 2.21
needs ``protobuf>=6.31``, and has wheels up to CPython 3.11 only; MediaPipe 1.2 ships a
populator that needs OpenCV and matplotlib, imports ``cv2`` on import, and whose metadata
module imports a native extension the wheel lacks. The model is re-packed with LiteRT's
schema object API, which gives the converter's bytes back unchanged, so the file runs
exactly as before.

Bands that were constant over the training pixels are standardised to 0 by tfhsi; in the
metadata their ``std`` is ``inf``, so ``(x - mean) / std`` gives the same 0 for any pixel.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np

from tfhsi.errors import ConfigError, DataFormatError, UnsupportedError
from tfhsi.export import _metadata_schema as metadata_fb
from tfhsi.export.graph import load_schema
from tfhsi.layouts import InputStage, check_layout, infer_layout
from tfhsi.tflite_file import read_tflite

__all__ = [
    "LABELS_FILE",
    "METADATA_NAME",
    "InputInfo",
    "Normalization",
    "OutputInfo",
    "add_metadata",
    "input_stage",
    "read_metadata",
    "restamp_metadata",
]

METADATA_NAME = "TFLITE_METADATA"
"""Name of the ``Model.metadata`` entry whose buffer holds the metadata flatbuffer."""
LABELS_FILE = "labels.txt"
"""The associated labels file: one class name per line, line ``i`` names output ``i``."""
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


@dataclass(frozen=True)
class Normalization:
    """Per-band standardisation applied to raw band values: ``(x - mean) / std``.

    Attributes:
        mean: ``(B,)`` band means of the training pixels.
        std: ``(B,)`` band standard deviations.
        constant_bands: Bands constant over the training pixels; they become 0 for every
            pixel (written as ``std = inf``).
    """

    mean: Sequence[float]
    std: Sequence[float]
    constant_bands: Sequence[int] = ()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` as float32, ``std = inf`` for the constant bands."""
        mean = np.asarray(self.mean, np.float64).ravel()
        std = np.asarray(self.std, np.float64).ravel().copy()
        if mean.shape != std.shape:
            raise ConfigError(
                f"normalisation mean has {mean.size} values but std has {std.size}; give one "
                "of each per band."
            )
        constant = np.asarray(self.constant_bands, np.int64).ravel()
        if constant.size and (constant.min() < 0 or constant.max() >= std.size):
            raise ConfigError(
                f"constant_bands {constant.tolist()[:10]} index outside 0..{std.size - 1}."
            )
        std[constant] = np.inf
        if not np.isfinite(mean).all() or not (std > 0).all() or np.isnan(std).any():
            raise ConfigError(
                "normalisation needs finite means and positive stds; mark constant bands with "
                "constant_bands=transform.zero_variance_bands instead of a zero std."
            )
        return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class InputInfo:
    """What the model's input tensor holds.

    Attributes:
        description: One or two sentences: what the patches are, how they were made.
        bands: Bands on the tensor's band axis (after PCA, if PCA is outside the file).
        layout: ``"2d"`` ``(k, k, B)``, ``"3d"`` ``(k, k, B, 1)`` or ``"1d"`` ``(B, 1)``.
        normalization: Per-band standardisation of the raw bands, or None when the tensor
            does not take standardised raw bands (e.g. PCA scores computed outside the file).
        value_range: ``(min, max)`` of the tensor's real values (after normalisation), one
            number or one per band each; written as the tensor's ``Stats``.
    """

    description: str
    bands: int
    layout: str
    normalization: Normalization | None = None
    value_range: tuple[Any, Any] | None = None


@dataclass(frozen=True)
class OutputInfo:
    """What the model's output tensor holds: one score per class, named by ``class_names``."""

    description: str
    class_names: Sequence[str] = field(default_factory=tuple)


def add_metadata(
    data: bytes,
    *,
    name: str,
    description: str,
    version: str,
    author: str,
    licence: str,
    input: InputInfo,
    output: OutputInfo,
) -> bytes:
    """Returns ``data`` with TFLite metadata and the labels file packed in.

    Existing metadata is replaced; the model's tensors, ops and buffers are unchanged.

    Args:
        data: A ``.tflite`` flatbuffer with one input and one output tensor.
        name, description, version, author, licence: The model's ``ModelMetadata`` fields.
        input: The input tensor: layout, bands, normalisation, value range.
        output: The output tensor: one class name per score.

    Raises:
        DataFormatError: ``data`` is not a TFLite flatbuffer.
        UnsupportedError: not one input and one output, or buffers stored by offset.
        ConfigError: ``input`` / ``output`` disagree with the tensors (layout, bands,
            number of classes) or hold invalid values.
    """
    _, content = read_tflite(bytes(data))
    schema = load_schema()
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    in_shape, out_shape = _io_shapes(model)
    _check_input(input, in_shape)
    labels = _labels(output, out_shape)
    mean = std = low = high = None
    if input.normalization is not None:
        mean, std = input.normalization.arrays()
    if input.value_range is not None:
        low, high = (np.asarray(v, np.float32).ravel() for v in input.value_range)
    metadata = metadata_fb.build(
        name=name,
        description=description,
        version=version,
        author=author,
        licence=licence,
        input_tensor=metadata_fb.TensorFields(
            "patch",
            input.description,
            metadata_fb.DIMENSIONS[input.layout],
            mean=mean,
            std=std,
            stats_min=low,
            stats_max=high,
        ),
        output_tensor=metadata_fb.TensorFields(
            "scores",
            output.description,
            ("batch", "class"),
            labels_file=LABELS_FILE,
            labels_description="Class names, one per line, in output order.",
        ),
    )
    packed = _with_metadata_buffer(schema, model, metadata, hint=len(content))
    return _append_files(packed, {LABELS_FILE: labels})


def restamp_metadata(
    data: bytes,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    author: str | None = None,
    licence: str | None = None,
) -> bytes:
    """``data`` with the given ``ModelMetadata`` fields replaced and everything else its
    metadata says (input normalisation, value range, labels) kept, e.g. to state the author
    and licence of a released file.

    Raises:
        ConfigError: the file has no metadata to restamp.
    """
    meta = read_metadata(data)
    if meta is None:
        raise ConfigError(
            "the file has no TFLite metadata to restamp; export it with tfhsi (which writes "
            "it) or call add_metadata()."
        )
    tensor, output = meta["inputs"][0], meta["outputs"][0]
    norm, stats = tensor["normalization"], tensor["stats"]
    normalization = None
    if norm is not None:
        std = [1.0 if v is None else v for v in norm["std"]]
        normalization = Normalization(norm["mean"], std, norm["constant_bands"])
    _, content = read_tflite(bytes(data))
    in_shape, _ = _io_shapes(load_schema().ModelT.InitFromPackedBuf(content, 0))
    found = infer_layout(in_shape[1:])
    return add_metadata(
        data,
        name=meta["name"] if name is None else name,
        description=meta["description"] if description is None else description,
        version=meta["version"] if version is None else version,
        author=meta["author"] if author is None else author,
        licence=meta["license"] if licence is None else licence,
        input=InputInfo(
            tensor["description"],
            bands=found[2] if found else 0,
            layout=tensor["layout"],
            normalization=normalization,
            value_range=None if stats is None else (stats["min"], stats["max"]),
        ),
        output=OutputInfo(output["description"], output["labels"] or ()),
    )


def input_stage(metadata: dict[str, Any] | None) -> InputStage:
    """What values a file's input takes (:data:`tfhsi.layouts.InputStage`), from its
    :func:`read_metadata`: no metadata → ``"transformed"`` (the run's transform applied
    outside the file, as before files carried their preprocessing); a normalisation in the
    metadata → ``"standardised"`` (the consumer applies it to the raw bands); metadata
    without one → ``"raw"`` (the file takes the bands as stored)."""
    if metadata is None or not metadata.get("inputs"):
        return "transformed"
    return "standardised" if metadata["inputs"][0].get("normalization") else "raw"


def read_metadata(data: bytes) -> dict[str, Any] | None:
    """The metadata of a ``.tflite`` file as plain values, or None when it has none.

    Returns:
        ``name``, ``description``, ``version``, ``author``, ``license``,
        ``min_parser_version``, ``files`` (names packed in the file) and ``inputs`` /
        ``outputs``: per tensor ``name``, ``description``, ``dimension_names``,
        ``layout`` (from the dimension names, or None), ``content``, ``normalization``
        (``mean``, ``std``, ``constant_bands``; ``std`` is None for those bands, whose
        stored std is ``inf``, so the result is plain JSON) or None, ``stats`` (``min``, ``max``) or
        None, ``associated_files`` (``name``, ``description``, ``type``) and ``labels``
        (the lines of its ``TENSOR_AXIS_LABELS`` file, or None).

    Raises:
        DataFormatError: not a TFLite flatbuffer, or metadata that is not ``M001``.
    """
    _, content = read_tflite(bytes(data))
    schema = load_schema()
    fb = schema.Model.GetRootAs(content, 0)
    buffer = None
    for i in range(fb.MetadataLength()):
        entry = fb.Metadata(i)
        if (entry.Name() or b"").decode() == METADATA_NAME:
            buffer = fb.Buffers(entry.Buffer()).DataAsNumpy()
    if buffer is None or isinstance(buffer, int):
        return None
    raw = bytes(buffer)
    if len(raw) < 8 or raw[4:8] != metadata_fb.IDENTIFIER:
        raise DataFormatError(
            f"the {METADATA_NAME} buffer is not a TFLite metadata flatbuffer (no "
            f"{metadata_fb.IDENTIFIER.decode()!r} identifier); re-export the model."
        )
    files = _packed_files(content)
    try:
        return metadata_fb.parse(raw, files)
    except (IndexError, ValueError, TypeError, struct.error) as exc:
        raise DataFormatError(
            f"the {METADATA_NAME} buffer is truncated or corrupt ({exc}); re-export the model."
        ) from exc


# -- checks ------------------------------------------------------------------------------


def _io_shapes(model: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    graph = model.subgraphs[0]
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; metadata is "
            "written for single-input, single-output classifiers only."
        )
    if any(b.offset for b in model.buffers or []):
        raise UnsupportedError(
            "the model stores its buffers by offset (a model over 2 GB); metadata cannot be "
            "added to it here."
        )

    def shape(index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in graph.tensors[index].shape)

    return shape(inputs[0]), shape(outputs[0])


def _check_input(info: InputInfo, shape: tuple[int, ...]) -> None:
    check_layout(info.layout)
    found = infer_layout(shape[1:])
    if found is None or found[0] != info.layout or found[2] != info.bands:
        raise ConfigError(
            f"InputInfo says layout {info.layout!r} with {info.bands} bands but the model's "
            f"input tensor has shape {shape}; describe the tensor the file takes."
        )
    if info.normalization is not None:
        mean, _ = info.normalization.arrays()
        if mean.size != info.bands:
            raise ConfigError(
                f"the normalisation has {mean.size} bands but the input tensor has "
                f"{info.bands}; with PCA outside the file pass normalization=None."
            )
    if info.value_range is not None:
        for bound in info.value_range:
            size = np.asarray(bound, np.float64).size
            if size not in (1, info.bands):
                raise ConfigError(
                    f"value_range bounds need 1 or {info.bands} values each, got {size}."
                )


def _labels(info: OutputInfo, shape: tuple[int, ...]) -> bytes:
    names = [str(n) for n in info.class_names]
    if isinstance(info.class_names, str) or len(names) != shape[-1]:
        raise ConfigError(
            f"OutputInfo has {len(names)} class names but the output tensor {shape} has "
            f"{shape[-1]} scores; give one name per score, in output order."
        )
    for i, n in enumerate(names):
        if not n.strip() or "\n" in n or "\r" in n:
            raise ConfigError(
                f"class name {i} ({n!r}) is empty or contains a line break; the labels file "
                "has one name per line."
            )
    return "".join(f"{n}\n" for n in names).encode()


# -- writing -----------------------------------------------------------------------------


def _with_metadata_buffer(schema: Any, model: Any, metadata: bytes, *, hint: int) -> bytes:
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    entries = list(model.metadata or [])
    old = [m for m in entries if _text(m.name) == METADATA_NAME]
    if old:
        model.buffers[old[0].buffer] = buffer
        entries = [m for m in entries if m is old[0] or _text(m.name) != METADATA_NAME]
    else:
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers)
        model.buffers.append(buffer)
        entries.append(entry)
    model.metadata = entries
    builder = flatbuffers.Builder(hint + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` followed by a zip of ``files`` (stored, not compressed, as the populator does).

    The archive is written behind a zero prefix of the model's length, so its offsets count
    from the start of the file and nothing in the model bytes is mistaken for a zip record.
    """
    stream = io.BytesIO(bytes(len(model)))
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), content)
    return model + stream.getvalue()[len(model) :]


# -- reading -----------------------------------------------------------------------------


def _packed_files(content: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {n: archive.read(n) for n in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
