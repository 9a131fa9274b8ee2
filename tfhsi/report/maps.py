"""Classification maps: false-colour composite, ground truth, prediction and errors side by side.

Pure numpy + matplotlib (Agg); class colours come from one fixed palette so the same
class has the same colour in every figure of every run.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfhsi.atomic import write_bytes

# 24 distinguishable colours (class 1 first); label 0 (unlabelled) is black.
PALETTE = np.array(
    [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
        (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
        (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
        (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
        (255, 255, 255), (100, 60, 0), (0, 70, 40), (190, 0, 90),
    ],
    dtype=np.uint8,
)  # fmt: skip
CORRECT = (46, 160, 67)
WRONG = (215, 48, 39)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Maps a label map (0 = unlabelled, 1..C) to an ``(H, W, 3)`` uint8 image."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.max(initial=0) > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} classes can be drawn, got {labels.max()}")
    table = np.vstack([np.zeros((1, 3), np.uint8), PALETTE])
    return table[labels]


def false_colour(
    cube: np.ndarray, rgb_bands: Sequence[int], *, percentiles: tuple[float, float] = (2, 98)
) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 composite of three bands, each stretched between percentiles."""
    channels = []
    for band in rgb_bands:
        plane = np.asarray(cube[..., band], dtype=np.float64)
        low, high = np.percentile(plane, percentiles)
        scaled = (plane - low) / (high - low) if high > low else np.zeros_like(plane)
        channels.append(np.clip(scaled, 0, 1))
    return (np.stack(channels, axis=-1) * 255).astype(np.uint8)


def error_map(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Green where a labelled pixel is right, red where wrong, black where unlabelled."""
    image = np.zeros((*truth.shape, 3), np.uint8)
    labelled = truth > 0
    image[labelled & (truth == predicted)] = CORRECT
    image[labelled & (truth != predicted)] = WRONG
    return image


def render_maps(
    *,
    truth: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    title: str,
    composite: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> bytes:
    """Renders composite | ground truth | prediction | errors with a class legend, as PNG bytes.

    Args:
        truth: ``(H, W)`` ground truth, 0 = unlabelled.
        predicted: ``(H, W)`` predicted labels 1..C (0 where not predicted).
        class_names: Names of classes 1..C.
        title: Figure title (mark synthetic scenes and quick runs here).
        composite: Optional ``(H, W, 3)`` false-colour image.
        mask: Optional ``(H, W)`` bool: pixels scored in the error map (e.g. the test set).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    scored = truth if mask is None else np.where(mask, truth, 0)
    correct = int(((scored > 0) & (scored == predicted)).sum())
    total = int((scored > 0).sum())
    panels = [("ground truth", colorize(truth)), ("prediction", colorize(predicted))]
    panels.append((f"errors ({correct:,}/{total:,} correct)", error_map(scored, predicted)))
    if composite is not None:
        panels.insert(0, ("false colour", composite))
    height, width = truth.shape
    panel_w = 3.2
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(panel_w * len(panels) + 2.8, panel_w * height / width + 0.9),
        squeeze=False,
    )
    for ax, (name, image) in zip(axes[0], panels, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    handles = [
        Patch(color=PALETTE[i] / 255, label=f"{i + 1} {name}") for i, name in enumerate(class_names)
    ]
    fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(
        left=0.01, right=1 - 2.7 / fig.get_figwidth(), top=0.85, bottom=0.02, wspace=0.04
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    plt.close(fig)
    return buffer.getvalue()


def save_maps(path: str | Path, **kwargs: object) -> Path:
    """:func:`render_maps` written atomically to ``path``."""
    return write_bytes(path, render_maps(**kwargs))  # type: ignore[arg-type]
