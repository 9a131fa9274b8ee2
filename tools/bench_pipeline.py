"""Benchmark: streaming patch pipeline vs materialising every patch first.

For each scene and patch size, each method runs in its own subprocess, so the peak
RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` of that child) belongs to one configuration:

* ``stream``: :func:`tfhsi.data.pipeline.patch_dataset` (pad once, gather per batch).
* ``stream_aug``: the same with shuffle + flip/rotation augmentation (training setup).
* ``baseline``: ``extract_patches`` builds the full ``(N, k, k, B)`` float32 array, then
  ``tf.data.Dataset.from_tensor_slices((X, y)).batch(64).prefetch(AUTOTUNE)``.

Every labelled pixel of the scene is streamed in batches of 64 (2D layout) for
``--epochs`` epochs; epoch 1 includes tracing and (for the baseline) TF's copies of
the array; "patches/s" uses the fastest later (steady-state) epoch, the JSON also
has the median. A baseline whose predicted peak memory exceeds the available RAM is
recorded as a skipped row instead of being run (``--force`` runs it anyway).

Scenes: ``indian_pines`` (real, from ``--data-dir``) and ``synthetic_pavia_u``
(a synthetic 610x340x103 scene with 9 classes and as many labelled pixels as the
real Pavia University ground truth, 42,776).

Usage:
    .venv/bin/python tools/bench_pipeline.py [--patch-sizes 11 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SCENES = ("indian_pines", "synthetic_pavia_u")
METHODS = ("stream", "stream_aug", "baseline")
PAVIA_U_LABELLED = 42_776  # labelled pixels of the real Pavia University ground truth
BASELINE_COPIES = 4.2  # measured: peak RSS grows by ~4x the patch array (numpy + TF copies)
GIB = 1024**3


def _default_data_dir() -> Path:
    return Path(os.environ.get("TFHSI_DATA_DIR", REPO.parent / "shared" / "data"))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024.0**2


def _load_scene(name: str, data_dir: Path):
    """Returns (cube, labels, display name)."""
    if name == "synthetic_pavia_u":
        from tfhsi.data.synthetic import synthetic_scene

        h, w = 610, 340
        scene = synthetic_scene(
            height=h, width=w, bands=103, n_classes=9, seed=0,
            unlabelled_fraction=1.0 - PAVIA_U_LABELLED / (h * w),
        )  # fmt: skip
        return scene.cube, scene.labels, scene.display_name
    try:
        from tfhsi.data.io import load_scene
    except ImportError:  # the scene loader is optional for this tool
        import numpy as np
        import scipy.io

        folder = data_dir / "indian_pines"
        cube = scipy.io.loadmat(folder / "Indian_pines_corrected.mat")["indian_pines_corrected"]
        labels = scipy.io.loadmat(folder / "Indian_pines_gt.mat")["indian_pines_gt"]
        return np.ascontiguousarray(cube), labels.astype(np.int32), name
    scene = load_scene(name, data_dir=data_dir)
    return scene.cube, scene.labels, scene.display_name


def _run_child(config: dict[str, Any]) -> dict[str, Any]:
    """Measures one configuration in this process; returns a JSON-ready row."""
    import numpy as np

    from tfhsi.data.patches import extract_patches
    from tfhsi.data.transforms import SpectralTransform

    k, method, batch = config["patch"], config["method"], config["batch_size"]
    raw, labels, display = _load_scene(config["scene"], Path(config["data_dir"]))
    labelled = labels > 0
    # Throughput benchmark: fit on all labelled pixels (a training split would be smaller).
    cube = SpectralTransform.fit(raw, labelled).apply(raw)
    del raw
    # TensorFlow after the scene: its import dominates the peak, not the loader's temporaries.
    from tfhsi._keras import tf
    from tfhsi.data.pipeline import patch_dataset

    centers = np.argwhere(labelled)
    y = (labels[labelled] - 1).astype(np.int32)
    n, bands = len(centers), cube.shape[2]
    rss_before = _current_rss_mib()

    t0 = time.perf_counter()
    if method == "baseline":
        x_all = extract_patches(cube, centers, k)  # (N, k, k, B) float32, kept like user code
        ds = tf.data.Dataset.from_tensor_slices((x_all, y)).batch(batch)
        ds = ds.prefetch(tf.data.AUTOTUNE)
    else:
        aug = method == "stream_aug"
        ds = patch_dataset(
            cube, centers, y, patch_size=k, layout="2d", batch_size=batch,
            shuffle=aug, augment=aug, seed=0,
        )  # fmt: skip
    setup_s = time.perf_counter() - t0

    epoch_s = []
    for _ in range(config["epochs"]):
        t0, seen = time.perf_counter(), 0
        for xb, _yb in ds:
            seen += int(xb.shape[0])
        epoch_s.append(time.perf_counter() - t0)
        assert seen == n, f"streamed {seen} patches, expected {n}"
    later = epoch_s[1:] or epoch_s
    steady = min(later)  # best of the later epochs (timeit's rule: others are interference)
    return {
        **{key: config[key] for key in ("scene", "patch", "method", "batch_size")},
        "scene_name": display,
        "shape": list(cube.shape),
        "patches": n,
        "bands": bands,
        "patch_array_gib": n * k * k * bands * 4 / GIB,
        "setup_s": setup_s,
        "epoch_s": epoch_s,
        "patches_per_s": n / steady,
        "patches_per_s_median": n / statistics.median(later),
        "first_epoch_patches_per_s": n / (setup_s + epoch_s[0]),
        "rss_before_mib": rss_before,
        "peak_rss_mib": _peak_rss_mib(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "status": "ok",
    }


def _mem_available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _scene_info(scene: str, data_dir: Path) -> tuple[int, int, str]:
    """(labelled pixels, bands, display name) without loading TensorFlow."""
    if scene == "synthetic_pavia_u":
        return PAVIA_U_LABELLED, 103, "synthetic:610x340x103 (SYNTHETIC)"
    cube, labels, display = _load_scene(scene, data_dir)
    return int((labels > 0).sum()), int(cube.shape[2]), display


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(next(ln for ln in f if ln.startswith("MemTotal:")).split()[1]) * 1024
    return {
        "nproc": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu": cpu,
        "mem_total_gib": round(mem / GIB, 1),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _run_config(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**config, "status": f"failed: timeout after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**config, "status": f"failed (exit {proc.returncode}): {tail[:200]}"}
    return json.loads(lines[-1])


def _fmt(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return (
            f"| {row.get('scene_name', row['scene'])} | {row['patch']} | {row['method']} | "
            f"{row.get('patches', '')} | – | – | – | – | {row['status']} |"
        )
    epochs = " / ".join(f"{s:.2f}" for s in row["epoch_s"])
    return (
        f"| {row['scene_name']} | {row['patch']} | {row['method']} | {row['patches']} | "
        f"{row['setup_s']:.2f} | {epochs} | {row['patches_per_s']:,.0f} | "
        f"{row['first_epoch_patches_per_s']:,.0f} | {row['peak_rss_mib']:,.0f} "
        f"(+{row['peak_rss_mib'] - row['rss_before_mib']:,.0f}) |"
    )


HEADER = (
    "| scene | patch | method | patches | setup s | epoch s (1 / 2 …) | patches/s (best epoch ≥ 2) "
    "| patches/s (setup + epoch 1) | peak RSS MiB (+ over RSS before setup) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=_default_data_dir())
    parser.add_argument("--scenes", nargs="+", choices=SCENES, default=list(SCENES))
    parser.add_argument("--patch-sizes", nargs="+", type=int, default=[11, 25])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per configuration")
    parser.add_argument("--force", action="store_true", help="run baselines predicted not to fit")
    parser.add_argument("--json", type=Path, help="also write the rows and machine info here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_run_child(json.loads(args.child))), flush=True)
        return 0

    from tfhsi._keras import tf  # version only; each configuration runs in a fresh process

    machine = {**_machine(), "tensorflow": tf.__version__}
    print(
        f"# {machine['date']}, {machine['nproc']} CPUs ({machine['cpu']}), "
        f"{machine['mem_total_gib']} GiB RAM, TF {machine['tensorflow']}"
    )
    print(HEADER, flush=True)
    rows = []
    for scene in args.scenes:
        n, bands, display = _scene_info(scene, args.data_dir)
        for k in args.patch_sizes:
            for method in args.methods:
                config = {
                    "scene": scene, "patch": k, "method": method, "batch_size": args.batch_size,
                    "epochs": args.epochs, "data_dir": str(args.data_dir),
                }  # fmt: skip
                need = 1.0 * GIB + BASELINE_COPIES * n * k * k * bands * 4
                avail = _mem_available_bytes()
                if method == "baseline" and not args.force and need > 0.85 * avail:
                    row = {
                        **config, "scene_name": display, "patches": n,
                        "status": f"skipped: patch array {n * k * k * bands * 4 / GIB:.1f} GiB, "
                        f"predicted peak ≈{need / GIB:.0f} GiB > 85% of {avail / GIB:.0f} GiB "
                        "available",
                    }  # fmt: skip
                else:
                    row = _run_config(config, args.timeout)
                rows.append(row)
                print(_fmt(row), flush=True)
    if args.json:
        from tfhsi.atomic import write_json

        write_json(args.json, {"machine": machine, "command": sys.argv, "rows": rows})
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
