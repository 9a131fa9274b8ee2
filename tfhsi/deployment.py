"""Exporting and measuring one model for deployment: convert (lowering Conv3D where the preset
says) → audit against the preset's promise → write → size + MACs + LiteRT latency + TFLM arena
+ per-target verdicts. ``tfhsi export tflite``, ``tfhsi profile``, the Python API and the
recipe runner all call these functions, so every route converts, checks and reports the same
way: a file written as ``int8`` is int8 end to end, whatever route wrote it.

Composes :mod:`tfhsi.export` (presets, converter, static op audit), :mod:`tfhsi.compress`
(lowering) and :mod:`tfhsi.profile` (runtimes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfhsi.data.patches import Layout
from tfhsi.errors import ConfigError, UnsupportedError
from tfhsi.layouts import InputStage

if TYPE_CHECKING:
    from tfhsi._keras import keras
    from tfhsi.data.prepared import PreparedScene
    from tfhsi.export.inspect import ModelAudit

CALIBRATION_SAMPLES = 200
"""Training patches that calibrate activation ranges of integer presets."""

FILE_INPUT: InputStage = "standardised"
"""What an exported file takes by default: all the scene's bands, standardised as its metadata
says; PCA (when the run has one) is the file's first layer. Folding the standardisation too
(``"raw"``) costs int8 accuracy: one int8 scale for raw bands of very different ranges (see
docs/DEPLOYMENT.md, "The file carries its preprocessing", for the measurement)."""


@dataclass(frozen=True)
class FileAbout:
    """The metadata fields of an exported file that no measurement gives (None: a default
    naming the model, scene and preset; empty author/licence: not stated)."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str = ""
    licence: str = ""


class DuplicateExportError(ConfigError):
    """The preset's file would be another preset's file (``same_as``), e.g. ``int8-mixed`` of
    a model the converter makes int8 end to end: nothing is written."""

    def __init__(self, message: str, *, same_as: str) -> None:
        super().__init__(message)
        self.same_as = same_as


@dataclass(frozen=True)
class ExportedFile:
    """A written ``.tflite`` and how it was made.

    Attributes:
        preset: What was asked; ``precision``: what the audit of the file found.
        lowered: Conv3D layers were lowered to Conv2D for this file.
        layout: The patches the file takes.
    """

    path: Path
    data: bytes
    preset: str
    lowered: bool
    layout: Layout
    parameters: int
    precision: str = ""
    inputs: InputStage = "transformed"


def export_tflite(
    model: keras.Model,
    preset: str,
    path: str | Path,
    *,
    prepared: PreparedScene,
    patch: int | None = None,
    layout: Layout | None = None,
    lower: bool = True,
    inputs: InputStage = FILE_INPUT,
    about: FileAbout | None = None,
    keep_int8: Sequence[str] = (),
) -> ExportedFile:
    """Converts ``model`` with ``preset``, checks the file against the preset, and writes it
    (with its metadata and labels) to ``path``.

    The file carries its preprocessing: the run's PCA (and with ``inputs="raw"`` the
    standardisation) becomes its first layer, so it takes all the scene's bands, and its
    TFLite metadata names the input (bands, layout, per-band normalisation, value range
    over the training pixels) and packs the class labels.

    The audit of the converted bytes decides, before anything is written: a preset with a
    ``promise`` (``int8``, ``int16x8``) must give a file integer end to end, else
    :class:`UnsupportedError` names the float ops; a preset with ``same_as`` (``int8-mixed``)
    whose file meets that preset's promise raises :class:`DuplicateExportError`.

    Args:
        model: A functional ``tf_keras`` model taking ``layout`` patches of ``patch`` pixels.
        preset: A row of :data:`tfhsi.export.presets.PRESETS`.
        path: The ``.tflite`` to write (atomically, with ``<stem>.labels.txt``).
        prepared: The scene, split and transform whose training patches calibrate integer
            presets and whose class names label the output.
        patch, layout: The patches the model takes (default: read from its input shape).
        lower: Lower Conv3D layers to Conv2D for the presets whose ``conv3d`` rule says so
            (then the file takes 2-D patches of the same pixels). False keeps Conv3D, so
            ``int8`` / ``int16x8`` of a Conv3D model fail.
        inputs: What the file takes (:data:`tfhsi.layouts.InputStage`): ``"standardised"``
            (default, :data:`FILE_INPUT`) or ``"raw"`` bands with the transform folded in;
            ``"transformed"``: the model as trained, the transform outside the file and no
            metadata (the two-step file, for comparisons).
        about: Name, description, version, author and licence for the metadata.
        keep_int8: Layer names or patterns kept at int8 weights by the ai-edge-quantizer
            presets (``w4a8``, ``auto-mixed``); ``auto-mixed`` searches on the validation
            pixels of ``prepared``.
    """
    from tfhsi.compress.lower import has_conv3d, lower_conv3d
    from tfhsi.export.inspect import audit
    from tfhsi.export.presets import PRESETS
    from tfhsi.export.tflite import convert, write_tflite

    spec = PRESETS.get(preset)
    if patch is None or layout is None:
        from tfhsi.experiment.folders import ModelInput

        given = ModelInput.of(model, source=f"model {model.name!r}")
        layout, patch = given.layout, given.patch
    name, lowered = model.name, False
    three_d = has_conv3d(model)
    if lower and three_d and spec.conv3d == "lower":
        try:
            model, _ = lower_conv3d(model)
        except UnsupportedError as exc:
            raise UnsupportedError(
                f"{exc} (the {preset} preset lowers Conv3D to reach integer kernels"
                + "".join(f"; {fix}" for fix in _mixed_fixes(preset))
                + ")"
            ) from None
        layout, lowered, three_d = "2d", True, False
    parameters = int(model.count_params())
    if inputs == "raw" or (
        inputs == "standardised" and prepared.transform.pca_components is not None
    ):
        from tfhsi.compress.fold import fold_input_map

        model = fold_input_map(model, *prepared.transform.affine(inputs=inputs))
    representative = None
    if spec.calibration:
        representative = prepared.representative(
            patch_size=patch,
            layout=layout,
            num_samples=CALIBRATION_SAMPLES,  # type: ignore[arg-type]
            stage=inputs,
        )
    validate = None
    if spec.aeq is not None and spec.aeq.search != "none":
        from tfhsi.experiment.quantisation import validation_scorer

        validate = validation_scorer(prepared, patch=patch, layout=layout, stage=inputs)
    data = convert(
        model, preset, representative=representative, keep_int8=keep_int8, validate=validate
    )
    report = audit(data)
    check_promise(report, preset, model_name=name, conv3d_kept=three_d)
    if inputs != "transformed":
        data = _with_metadata(
            data, about or FileAbout(), prepared=prepared, inputs=inputs, layout=layout,
            patch=patch, model_name=name, preset=preset, precision=report.precision,
        )  # fmt: skip
    written = write_tflite(data, path, class_names=prepared.scene.class_names)
    return ExportedFile(
        written, data, preset, lowered, layout, parameters, report.precision, inputs
    )


def _with_metadata(
    data: bytes,
    about: FileAbout,
    *,
    prepared: PreparedScene,
    inputs: InputStage,
    layout: Layout,
    patch: int,
    model_name: str,
    preset: str,
    precision: str,
) -> bytes:
    """``data`` with the TFLite metadata of a file that takes ``inputs`` bands."""
    import tfhsi
    from tfhsi.export.metadata import InputInfo, Normalization, OutputInfo, add_metadata

    scene, transform = prepared.scene, prepared.transform
    bands = transform.in_bands
    shape = "one pixel's spectrum" if layout == "1d" else f"{patch}×{patch} patches"
    pca = (
        f"; PCA to {transform.out_bands} components (fitted on the training pixels) is the "
        "file's first layer"
        if transform.pca_components is not None
        else ""
    )
    if inputs == "standardised":
        values = (
            "each band standardised as the normalisation options say, (x - mean) / std "
            "(std = inf marks bands constant on the training pixels: they become 0)"
        )
        normalization = Normalization(
            transform.mean.tolist(),
            transform.scale.tolist(),
            transform.zero_variance_bands.tolist(),
        )
    else:
        values = "the band values as stored in the cube (the standardisation is in the file)"
        normalization = None
    low, high = prepared.value_range(inputs)
    return add_metadata(
        data,
        name=about.name or model_name,
        description=about.description
        or (
            f"{scene.display_name} land-cover classifier ({scene.n_classes} classes): "
            f"{model_name}, export preset {preset}, precision {precision} by the file's audit."
        ),
        version=about.version or f"tfhsi {tfhsi.__version__}",
        author=about.author,
        licence=about.licence,
        input=InputInfo(
            description=f"{shape} of all {bands} bands of {scene.display_name}: {values}{pca}. "
            "Stats: per-band min/max of these values over the training pixels.",
            bands=bands,
            layout=layout,
            normalization=normalization,
            value_range=(low, high),
        ),
        output=OutputInfo(
            description="One score per class (the largest is the predicted class), named in "
            "labels.txt in output order.",
            class_names=scene.class_names,
        ),
    )


def check_promise(report: ModelAudit, preset: str, *, model_name: str, conv3d_kept: bool) -> None:
    """Raises unless the audited file is what ``preset`` promises (see :func:`export_tflite`)."""
    from tfhsi.export.presets import PRESETS

    spec = PRESETS.get(preset)
    if spec.promise is not None and not (report.is_full_int8 and report.precision in spec.accepts):
        ops = sorted({op.name for op in report.float_ops})
        what = f"op(s) {', '.join(ops)} compute" if ops else "tensors are"
        fixes = [
            "allow Conv3D lowering (no --no-lower, no `lower: never`)"
            if conv3d_kept and "CONV_3D" in ops
            else "replace that layer with one that has an integer kernel"
        ]
        fixes += _mixed_fixes(preset)
        raise UnsupportedError(
            f"{model_name}: the {preset} export is not {spec.promise} end to end: {what} in "
            f"float (audit: precision {report.precision}); {', or '.join(fixes)}."
        )
    same = PRESETS.get(spec.same_as) if spec.same_as else None
    if same is not None and report.is_full_int8 and report.precision == same.promise:
        raise DuplicateExportError(
            f"{model_name}: the {preset} export is {same.promise} end to end (the converter "
            f"left no float op), so it is the {same.name} file; export with preset "
            f"{same.name} instead.",
            same_as=same.name,
        )


def _mixed_fixes(preset: str) -> list[str]:
    from tfhsi.export.presets import PRESETS

    return [
        f"export with preset {name} to keep the converter's mixed result"
        for name, other in PRESETS.items()
        if other.same_as == preset
    ]


AUDIT_KEYS = {"tflm": "tflm", "edgetpu": "edgetpu", "litert": "litert-xnnpack"}
"""Target runtime → the audit verdict that decides it."""


@dataclass
class Measurement:
    """What one ``.tflite`` file measured; ``to_row()`` gives the results.json fields."""

    size_bytes: int
    gzip_bytes: int
    macs: int
    precision: str
    full_int8: bool
    float_ops: list[str]
    verdicts: dict[str, Any]
    latency_ms: float | None = None
    latency_threads: int | None = None
    arena_bytes: int | None = None
    tflm_error: str | None = None
    targets: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "macs": self.macs,
            "precision": self.precision,
            "full_int8": self.full_int8,
            "float_ops": self.float_ops,
            "verdicts": self.verdicts,
            "latency_ms": self.latency_ms,
            "latency_threads": self.latency_threads,
            "arena_bytes": self.arena_bytes,
            "tflm_error": self.tflm_error,
            "targets": self.targets,
        }


def measure(
    data: bytes,
    *,
    targets: Sequence[str] = (),
    threads: int = 1,
    latency_runs: int = 50,
    tflm: bool = True,
    source: str = "<bytes>",
) -> Measurement:
    """Audits and profiles ``data``; TFLM is tried only when the audit says it can run it."""
    from tfhsi.export.inspect import audit
    from tfhsi.profile.latency import measure_latency
    from tfhsi.profile.macs import count_macs
    from tfhsi.profile.mcu import find_min_arena
    from tfhsi.profile.size import model_size
    from tfhsi.profile.targets import load_targets

    report = audit(data)
    size = model_size(data)
    result = Measurement(
        size_bytes=size.raw_bytes,
        gzip_bytes=size.gzip_bytes,
        macs=count_macs(data).per_sample,
        precision=report.precision,
        full_int8=report.is_full_int8,
        float_ops=sorted({op.name for op in report.float_ops}),
        verdicts={name: v.to_dict() for name, v in report.verdicts.items()},
    )
    stats = measure_latency(
        data, threads=threads, xnnpack=True, warmup=min(10, latency_runs), runs=latency_runs
    )
    result.latency_ms, result.latency_threads = stats.median_ms, threads
    tflm_verdict = report.verdicts.get("tflm")
    if tflm and tflm_verdict is not None and tflm_verdict.ok:
        try:
            result.arena_bytes = find_min_arena(data, source=source).min_bytes
        except UnsupportedError as exc:
            result.tflm_error = str(exc)
    elif tflm_verdict is not None and not tflm_verdict.ok:
        result.tflm_error = "; ".join(tflm_verdict.reasons[:2])
    profiles = load_targets()
    verdicts = {name: (v.ok, list(v.reasons)) for name, v in report.verdicts.items()}
    for assessment in assess_targets(
        [profiles.get(name) for name in targets],
        model_bytes=size.raw_bytes,
        arena_bytes=result.arena_bytes,
        macs=result.macs,
        verdicts=verdicts,
        int8=report.is_full_int8,
        tflm_error=result.tflm_error,
    ):
        result.targets[assessment.target] = assessment.to_dict()
    return result


def assess_targets(
    profiles: Sequence[Any],
    *,
    model_bytes: int,
    arena_bytes: int | None,
    macs: int | None,
    verdicts: dict[str, tuple[bool, list[str]]] | None,
    int8: bool | None,
    tflm_error: str | None,
) -> list[Any]:
    """Each target profile's fits / does-not-fit, given the audit verdict of its runtime."""
    from tfhsi.profile.targets import assess

    return [
        assess(
            profile,
            model_bytes=model_bytes,
            arena_bytes=arena_bytes,
            macs=macs,
            audit_verdict=(verdicts or {}).get(AUDIT_KEYS[profile.runtime]),
            int8=int8,
            runtime_error=tflm_error if profile.runtime == "tflm" else None,
        )
        for profile in profiles
    ]
