"""A seeded fake run record (results.json + map PNGs) with the runner's layout, for report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tfhsi.report.results import DatasetInfo, ResultRow, RunResults, TargetFit, write_results

CLASS_NAMES = [
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
]  # fmt: skip

# variant, model, stage, format, OA, params, MACs, raw bytes, gzip bytes, latency ms, arena, int8, sparsity
VARIANTS = [
    ("teacher", "hamida3d", "teacher", "keras", 0.953, 44636, 4_300_000, None, None, 3.1, None, None, None),
    ("teacher", "hamida3d", "teacher", "fp32", 0.952, 44636, 4_300_000, 183_000, 166_000, 2.4, None, False, None),
    ("teacher", "hamida3d", "teacher", "int8", 0.948, 44636, 4_300_000, 52_000, 41_000, 1.1, 96_000, True, None),
    ("kd_student", "student3d", "distill", "int8", 0.931, 6120, 610_000, 12_800, 10_100, 0.21, 24_500, True, None),
    ("pruned_qat", "student3d", "qat", "int8", 0.925, 6120, 610_000, 12_800, 4_900, 0.20, 24_500, True, 0.8),
    ("pruned_qat", "student3d", "qat", "fp16", 0.929, 6120, 610_000, 14_900, 8_300, 0.35, None, False, 0.8),
]  # fmt: skip


def _targets(raw: int | None, arena: int | None, full: bool | None) -> dict[str, TargetFit]:
    if raw is None:
        return {}
    out = {}
    for name, flash, ram, speed in (
        ("cortex-m4", 256_000, 64_000, 40.0),
        ("cortex-m7", 1_000_000, 256_000, 12.0),
    ):
        reasons = []
        if raw > flash:
            reasons.append(f"model {raw // 1024} KiB > {flash // 1024} KiB flash")
        if arena is None or arena > ram:
            reasons.append(
                "arena unknown"
                if arena is None
                else f"arena {arena // 1024} KiB > {ram // 1024} KiB RAM"
            )
        if not full:
            reasons.append("float ops (not int8 end to end)")
        out[name] = TargetFit(
            fits=not reasons,
            reasons=reasons,
            estimated_latency_ms=raw / 1000 / speed * 30 if not reasons else None,
        )
    return out


def fake_results(
    *,
    seeds: tuple[int, ...] = (0, 1),
    synthetic: bool = True,
    quick: bool = True,
    n_classes: int = 16,
    failed: bool = True,
    maps: dict[tuple[str, str], str] | None = None,
    recipe: str = "kd_indian_pines",
) -> RunResults:
    rng = np.random.default_rng(0)
    names = CLASS_NAMES[:n_classes]
    rows = []
    for seed in seeds:
        for (
            variant,
            model,
            stage,
            fmt,
            oa,
            params,
            macs,
            raw,
            gz,
            lat,
            arena,
            full,
            sparsity,
        ) in VARIANTS:
            acc = np.clip(oa + rng.normal(0, 0.06, n_classes), 0, 1)
            pca = [None if k == 8 and seed == 0 else float(round(a, 4)) for k, a in enumerate(acc)]
            support = rng.integers(20, 200, n_classes)
            confusion = np.diag(np.round(support * acc).astype(int))
            for k in range(n_classes):
                confusion[k, (k + 1) % n_classes] += support[k] - confusion[k, k]
            jitter = float(rng.normal(0, 0.004))
            rows.append(ResultRow(
                seed=seed, variant=variant, format=fmt, model=model, stage=stage,
                oa=round(oa + jitter, 4), aa=round(oa - 0.03 + jitter, 4), kappa=round(oa - 0.02 + jitter, 4),
                per_class_accuracy=pca, confusion=confusion.tolist(), parameters=params, macs=macs,
                size_bytes=raw, gzip_bytes=gz, sparsity=sparsity, latency_ms=lat * (1 + 0.05 * seed),
                latency_threads=1, arena_bytes=arena, full_int8=full, targets=_targets(raw, arena, full),
                tflite=None if fmt == "keras" else f"seed_{seed}/{variant}/export/{fmt}.tflite",
                map=(maps or {}).get((variant, fmt), "").replace("{seed}", str(seed)) or None,
            ))  # fmt: skip
        if failed:
            rows.append(ResultRow(
                seed=seed, variant="clustered", format="int8", model="student3d", stage="cluster",
                error=f"ConverterError: tfl.conv_3d has no int8 kernel (seed {seed})" if seed else None,
                oa=None if seed else 0.9, aa=None if seed else 0.88, kappa=None if seed else 0.89,
                size_bytes=None if seed else 9000, gzip_bytes=None if seed else 5200,
            ))  # fmt: skip
            rows.append(ResultRow(
                seed=seed, variant="pruned_qat", format="int16x8", model="student3d", stage="qat",
                error="RuntimeError: int16x8 conversion needs a representative dataset | retry",
            ))  # fmt: skip
    return RunResults(
        recipe=recipe,
        description="Knowledge distillation of a 3D CNN into a tiny int8 student (Indian Pines)",
        quick=quick,
        dataset=DatasetInfo(
            name="synthetic" if synthetic else "indian_pines",
            display="synthetic scene" if synthetic else "Indian Pines",
            synthetic=synthetic, shape=[32, 32, 24] if synthetic else [145, 145, 200],
            sources={} if synthetic else {"Indian_pines_corrected.mat": "a" * 64},
        ),
        split="random:0.1", seeds=list(seeds), class_names=names, targets=["cortex-m4", "cortex-m7"],
        environment={"python": "3.11.2", "platform": "Linux-6.1-x86_64", "cpu": "Fake CPU @ 2.0GHz",
                     "cpu_count": 2, "packages": {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "keras": None},
                     "env": {"OMP_NUM_THREADS": "1"}},
        command=f"tfhsi recipe run {recipe}" + (" --quick" if quick else ""),
        started="2025-01-01T12:00:00+00:00", wall_time_s=1234.5, rows=rows,
    )  # fmt: skip


def write_fake_run(run_dir: Path, *, with_maps: bool = True, **kwargs: Any) -> RunResults:
    """Writes results.json (and map PNGs for teacher/int8 and kd_student/int8) into run_dir."""
    maps = {}
    if with_maps:
        from tfhsi.report.maps import save_maps

        rng = np.random.default_rng(1)
        n = kwargs.get("n_classes", 16)
        truth = np.repeat(np.repeat(rng.integers(0, n + 1, (8, 8)), 5, 0), 5, 1)
        for seed in kwargs.get("seeds", (0, 1)):
            for variant in ("teacher", "kd_student"):
                pred = np.where(
                    rng.random(truth.shape) < 0.9, truth, rng.integers(1, n + 1, truth.shape)
                )
                pred = np.where(truth > 0, pred, 0)
                rel = f"seed_{seed}/{variant}/map_int8.png"
                save_maps(run_dir / rel, truth=truth, predicted=pred, class_names=CLASS_NAMES[:n],
                          title=f"{variant} int8, seed {seed}")  # fmt: skip
        maps = {("teacher", "int8"): "seed_{seed}/teacher/map_int8.png",
                ("kd_student", "int8"): "seed_{seed}/kd_student/map_int8.png"}  # fmt: skip
    results = fake_results(maps=maps, **kwargs)
    write_results(run_dir, results)
    return results
