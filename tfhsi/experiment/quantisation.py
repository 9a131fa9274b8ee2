"""How much each layer's quantisation costs a run's model, on the run's validation pixels.

:func:`quant_report` makes the float (Conv3D lowered) fp32 file of a model, quantises it with
ai-edge-quantizer as a preset says (``w4a8`` by default), and measures on validation pixels
(never test): each layer's output error against the float file (MSE, SNR, cosine, from
ai-edge-quantizer's ``model_validator``), the OA each layer costs when it alone is quantised,
and OA / AA / per-class accuracy of the whole file. :func:`validation_scorer` is the scorer the
``auto-mixed`` preset searches with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfhsi.errors import ConfigError, SplitError
from tfhsi.layouts import InputStage, Layout

if TYPE_CHECKING:
    from tfhsi.data.prepared import PreparedScene
    from tfhsi.export.aeq import Validation

__all__ = [
    "QuantReport",
    "quant_report",
    "quant_report_file",
    "report_stem",
    "validation_patches",
    "validation_scorer",
]

REPORT_SAMPLES = 128
"""Validation patches the per-layer error is averaged over (every validation pixel scores OA)."""


def validation_patches(
    prepared: PreparedScene, *, patch: int, layout: Layout, stage: InputStage = "transformed"
) -> tuple[np.ndarray, np.ndarray]:
    """(patches, class indices) of the validation pixels of ``prepared``.

    Raises:
        SplitError: the split has no validation pixels.
    """
    if prepared.selection_subset() != "val":
        raise SplitError(
            f"split {prepared.split.spec!r} has no validation pixels; the quantisation search "
            "and report score on validation pixels only (never test): use a split with them."
        )
    xs, ys = [], []
    for x, y in prepared.dataset("val", patch_size=patch, layout=layout, stage=stage):
        xs.append(np.asarray(x, np.float32))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def validation_scorer(
    prepared: PreparedScene, *, patch: int, layout: Layout, stage: InputStage = "transformed"
) -> Validation:
    """The :class:`~tfhsi.export.aeq.Validation` of ``prepared``'s validation pixels, for
    ``.tflite`` files taking ``layout`` patches."""
    from tfhsi.export.aeq import Validation

    x, y = validation_patches(prepared, patch=patch, layout=layout, stage=stage)
    return Validation(predict=_classes_of(x), labels=y)


def _classes_of(x: np.ndarray) -> Callable[[bytes], np.ndarray]:
    """``bytes -> class indices`` a ``.tflite`` file predicts for the patches ``x``."""
    from tfhsi.profile.interpreter import TFLiteModel

    def predict(data: bytes) -> np.ndarray:
        return np.asarray(TFLiteModel(data, num_threads=1).predict(x).argmax(axis=1))

    return predict


@dataclass
class QuantReport:
    """The figures of :func:`quant_report` (``to_dict`` is the JSON)."""

    model: str
    preset: str
    precision: str
    weight_bytes: dict[str, int]
    layers: list[dict[str, Any]]
    whole: dict[str, Any]
    float_oa: float
    samples: int
    pixels: int
    notes: list[str] = field(default_factory=list)

    def ranked(self) -> list[dict[str, Any]]:
        """The layers, the one whose quantisation alone costs the most OA first."""
        return sorted(self.layers, key=lambda r: (-r["oa_cost_pp"], r["snr_db"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "preset": self.preset,
            "precision": self.precision,
            "subset": "val",
            "pixels": self.pixels,
            "error_samples": self.samples,
            "float_oa": self.float_oa,
            "weight_bytes": self.weight_bytes,
            "whole": self.whole,
            "layers": self.ranked(),
            "notes": self.notes,
        }

    def save(self, folder: Path) -> Path:
        """Writes ``<model>_<preset>.{png,md,json}`` (:func:`report_stem`) into ``folder``,
        the JSON last (its presence marks the report done); returns the JSON's path."""
        from tfhsi.atomic import write_json, write_text

        folder.mkdir(parents=True, exist_ok=True)
        stem = report_stem(self.model, self.preset)
        plot_layer_errors(self, folder / f"{stem}.png")
        write_text(folder / f"{stem}.md", self.markdown())
        return write_json(folder / f"{stem}.json", self.to_dict())

    def markdown(self) -> str:
        w = self.whole
        lines = [
            f"# Quantisation report: {self.model}, {self.preset}",
            "",
            f"Validation pixels: {self.pixels} (per-layer error over {self.samples}); "
            f"audit precision: {self.precision}.",
            "",
            f"Whole file: OA {w['oa'] * 100:.2f} % (float {self.float_oa * 100:.2f} %), "
            f"AA {w['aa'] * 100:.2f} %, Kappa {w['kappa']:.4f}; weight bytes "
            + ", ".join(f"{k} {v:,}" for k, v in self.weight_bytes.items())
            + ".",
            "",
            "| rank | layer | op | weights | OA cost alone (pp) | SNR (dB) | MSE | cosine |",
            "|---:|---|---|---|---:|---:|---:|---:|",
        ]
        for i, r in enumerate(self.ranked(), 1):
            lines.append(
                f"| {i} | {r['name']} | {r['op']} | {r['stored']} | {r['oa_cost_pp']:.2f} "
                f"| {r['snr_db']:.1f} "
                f"| {r['mse']:.3g} | {r['cosine']:.4f} |"
            )
        lines += ["", "| class | accuracy (%) |", "|---|---:|"]
        lines += [f"| {n} | {a * 100:.1f} |" for n, a in w["per_class"].items()]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def report_stem(model: str, preset: str) -> str:
    """The file name (no suffix) of the report of ``model`` for ``preset``."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{model}_{preset}")


def quant_report(
    model: Any,
    prepared: PreparedScene,
    *,
    preset: str = "w4a8",
    keep_int8: list[str] | None = None,
    samples: int = REPORT_SAMPLES,
    calibration: int = 200,
    inputs: InputStage = "standardised",
) -> tuple[QuantReport, dict[str, bytes]]:
    """Per-layer and whole-file quantisation figures of ``model`` on validation pixels.

    Args:
        model: A ``tf_keras`` model of the run (Conv3D is lowered first).
        prepared: The run's scene, split and transform (calibration: training patches;
            figures: validation patches).
        preset: An ai-edge-quantizer row of :data:`tfhsi.export.presets.PRESETS`
            (``w4a8``; ``auto-mixed`` runs its search).
        keep_int8: Layer names or patterns kept at int8 weights.
        inputs: What the files take, as :func:`tfhsi.deployment.export_tflite` makes them:
            ``"standardised"`` (default: the run's PCA is the file's first layer, named
            ``spectral_transform``), ``"raw"`` (the standardisation folded in too) or
            ``"transformed"`` (the model as trained).

    Returns:
        The report and the files it made (``float``, the preset's file).
    """
    from tfhsi.compress.lower import has_conv3d, lower_conv3d
    from tfhsi.experiment.folders import ModelInput
    from tfhsi.export.tflite import convert

    spec = _aeq_spec(preset)
    name = model.name
    if has_conv3d(model):
        model, _ = lower_conv3d(model)
    given = ModelInput.of(model, source=f"model {name!r}")
    pca = prepared.transform.pca_components is not None
    if inputs == "raw" or (inputs != "transformed" and pca):
        from tfhsi.compress.fold import fold_input_map

        model = fold_input_map(model, *prepared.transform.affine(inputs=inputs))
    return _analyse(
        convert(model, "fp32"), prepared, name=name, preset=preset, spec=spec,
        patch=given.patch, layout=given.layout, stage=inputs, keep_int8=keep_int8,
        samples=samples, calibration=calibration,
    )  # fmt: skip


def quant_report_file(
    path: Path,
    prepared: PreparedScene,
    *,
    preset: str = "w4a8",
    keep_int8: list[str] | None = None,
    samples: int = REPORT_SAMPLES,
    calibration: int = 200,
) -> tuple[QuantReport, dict[str, bytes]]:
    """:func:`quant_report` of a float ``.tflite`` file (e.g. a run's ``export/fp32.tflite``):
    its patch, layout and input stage come from the file and its metadata.

    Raises:
        ConfigError: the file is not float end to end by its audit, or holds CONV_3D (which
            ai-edge-quantizer does not quantise: pass the Keras model, it is lowered first).
    """
    from tfhsi.experiment.prediction import predictor
    from tfhsi.export.inspect import audit

    spec = _aeq_spec(preset)
    report = audit(path)
    if report.precision != "float32":
        raise ConfigError(
            f"quant-report {path.name}: the file is {report.precision} by its audit; it "
            "re-quantises a float file, so pass the run's fp32 .tflite or the Keras model."
        )
    if any(op.name == "CONV_3D" for op in report.ops):
        raise ConfigError(
            f"quant-report {path.name}: the file holds CONV_3D, which ai-edge-quantizer does "
            "not quantise; pass the Keras model (.keras or the run folder): it is lowered to "
            "Conv2D first."
        )
    model = predictor(path)
    patch, layout = model.fit_to(prepared)
    return _analyse(
        path.read_bytes(), prepared, name=path.stem, preset=preset, spec=spec, patch=patch,
        layout=layout, stage=model.stage, keep_int8=keep_int8, samples=samples,
        calibration=calibration,
    )  # fmt: skip


def _aeq_spec(preset: str) -> Any:
    from tfhsi.export.presets import PRESETS

    spec = PRESETS.get(preset)
    if spec.aeq is None:
        aeq_rows = ", ".join(n for n, s in PRESETS.items() if s.aeq is not None)
        raise ConfigError(
            f"quant-report --preset {preset!r}: only the ai-edge-quantizer presets ({aeq_rows}) "
            "can be re-quantised layer by layer; pick one of those."
        )
    return spec


def _analyse(
    float_model: bytes,
    prepared: PreparedScene,
    *,
    name: str,
    preset: str,
    spec: Any,
    patch: int,
    layout: Layout,
    stage: InputStage,
    keep_int8: list[str] | None,
    samples: int,
    calibration: int,
) -> tuple[QuantReport, dict[str, bytes]]:
    """The figures of :func:`quant_report` for a float file taking ``layout`` patches."""
    from tfhsi.export.aeq import (
        AeqQuantizer,
        Validation,
        auto_mixed,
        layer_errors,
        select_layers,
        weight_bytes,
    )
    from tfhsi.export.inspect import audit
    from tfhsi.train.metrics import compute_metrics

    x, y = validation_patches(prepared, patch=patch, layout=layout, stage=stage)
    representative = prepared.representative(
        patch_size=patch,
        layout=layout,
        num_samples=calibration,  # type: ignore[arg-type]
        stage=stage,
    )
    quantizer = AeqQuantizer(float_model, representative, activation_bits=spec.aeq.activation_bits)
    keep = select_layers(quantizer.layers, keep_int8) if keep_int8 else []

    validation = Validation(predict=_classes_of(x), labels=y)
    predict = validation.predict

    def score(data: bytes) -> float:
        return validation.oa(predict(data))

    notes: list[str] = []
    bits = spec.aeq.weight_bits
    if spec.aeq.search == "auto-mixed":
        search = auto_mixed(quantizer, validation, weight_bits=bits, keep=keep)
        quantised = search.data
        notes.append(
            f"auto-mixed kept {', '.join(search.keep) or 'no layer'} at int8: validation OA "
            f"{search.oa * 100:.2f} % vs {search.reference_oa * 100:.2f} % all int8 "
            f"({search.low_oa * 100:.2f} % all int4); {search.changed_pp:.2f} % of validation "
            "predictions differ from the int8 file's"
        )
    else:
        quantised = quantizer.quantize(weight_bits=bits, keep=keep)
    float_oa = score(float_model)
    errors = {e.name: e for e in layer_errors(float_model, quantised, list(x[:samples, None]))}
    stored = audit(quantised).weight_dtypes
    rows = []
    for layer in quantizer.layers:
        alone = score(quantizer.quantize(weight_bits=bits, only=[layer]))
        e = errors.get(layer.name)
        rows.append(
            {
                "name": layer.name,
                "op": layer.op,
                "weights": layer.weights,
                "stored": stored.get(layer.op, "float32"),
                "oa_alone": alone,
                "oa_cost_pp": (float_oa - alone) * 100.0,
                "mse": e.mse if e else float("nan"),
                "snr_db": 10 * math.log10(e.snr) if e and e.snr > 0 else float("nan"),
                "cosine": e.cosine if e else float("nan"),
            }
        )
    metrics = compute_metrics(y, predict(quantised), class_names=prepared.scene.class_names)
    whole = {
        "oa": metrics.oa,
        "aa": metrics.aa,
        "kappa": metrics.kappa,
        "per_class": dict(
            zip(metrics.class_names, map(float, metrics.per_class_accuracy), strict=True)
        ),
    }
    int8 = quantizer.quantize(weight_bits=8)
    report = QuantReport(
        model=name,
        preset=preset,
        precision=audit(quantised).precision,
        weight_bytes={
            "fp32": weight_bytes(float_model),
            "int8": weight_bytes(int8),
            preset: weight_bytes(quantised),
        },
        layers=rows,
        whole=whole,
        float_oa=float_oa,
        samples=min(samples, len(x)),
        pixels=len(x),
        notes=notes,
    )
    return report, {"float": float_model, preset: quantised}


def plot_layer_errors(report: QuantReport, path: Path) -> Path:
    """A bar plot of each layer's output SNR (dB) and OA cost alone, in graph order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfhsi.atomic import atomic_path

    names = [r["name"] for r in report.layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(4.0, 0.7 * len(names) + 2), 5.5))
    top.bar(names, [r["snr_db"] for r in report.layers], color="#4477aa")
    top.set_ylabel("output SNR (dB)")
    top.set_title(f"{report.model}: {report.preset} vs float, per layer (validation pixels)")
    bottom.bar(names, [r["oa_cost_pp"] for r in report.layers], color="#cc6677")
    bottom.set_ylabel("OA cost alone (pp)")
    for axis in (top, bottom):
        axis.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
