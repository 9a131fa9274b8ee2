"""``tfhsi data``: list, inspect, download and verify scenes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tfhsi.cli._console import console, err_console

if TYPE_CHECKING:
    import numpy as np

    from tfhsi.data.scene_file import SceneFileSpec

app = typer.Typer(
    help="List, inspect, download and verify hyperspectral scenes.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="TFHSI_DATA_DIR",
        help="Data directory (default: $TFHSI_DATA_DIR, else the per-user cache).",
        show_default=False,
    ),
]
SceneName = Annotated[
    str,
    typer.Argument(help="Scene name (see `tfhsi data list`) or a scene file NAME.yaml."),
]


@app.command("list")
def list_scenes(data_dir: DataDir = None) -> None:
    """List the known scenes and which files are present in the data directory."""
    from tfhsi.data.download import find_file, resolve_data_dir
    from tfhsi.data.scenes import SCENES

    root = resolve_data_dir(data_dir)
    table = Table(title=f"Scenes (data directory: {root})")
    table.add_column("name", no_wrap=True)
    table.add_column("scene")
    table.add_column("sensor")
    table.add_column("H×W×B", no_wrap=True)
    table.add_column("classes", justify="right")
    table.add_column("labelled", justify="right")
    table.add_column("on disk")
    for name, scene in SCENES.items():
        present = [f.filename for f in scene.files if find_file(scene, f, root)]
        status = (
            "cube + labels"
            if len(present) == 2
            else ("labels only" if scene.labels.filename in present else "-")
        )
        table.add_row(
            name,
            scene.title,
            scene.sensor,
            "×".join(map(str, scene.shape)),
            str(scene.n_classes),
            f"{scene.labelled_pixels:,}",
            status,
        )
    console.print(table)
    console.print(
        "Your own files (ENVI, TIFF/GeoTIFF, NPY/NPZ, MAT): describe them in a scene YAML and "
        "pass its path wherever a scene name goes, e.g. `tfhsi data info my_scene.yaml`."
    )


@app.command("info")
def info(scene: SceneName, data_dir: DataDir = None) -> None:
    """Show a scene's metadata, files, shape and per-class pixel counts."""
    from tfhsi.data.download import find_file, resolve_data_dir, short_sha
    from tfhsi.data.io import load_labels, read_mat_array
    from tfhsi.data.scene_data import class_counts
    from tfhsi.data.scene_file import is_scene_file
    from tfhsi.data.scenes import get_scene

    if is_scene_file(scene):
        _info_scene_file(scene)
        return
    meta = get_scene(scene)
    root = resolve_data_dir(data_dir)
    console.print(f"[bold]{meta.title}[/] ({meta.name}) — {meta.sensor}")
    console.print(f"cite: {meta.citation}")
    console.print(f"data directory: {root}")
    cube_path = find_file(meta, meta.cube, root)
    labels_path = find_file(meta, meta.labels, root)
    files = Table(show_header=True, box=None, pad_edge=False)
    for column in ("file", "key", "sha256", "on disk"):
        files.add_column(column, overflow="fold")
    for file, path in ((meta.cube, cube_path), (meta.labels, labels_path)):
        files.add_row(
            file.filename,
            file.key,
            short_sha(file.sha256),
            str(path) if path else "[red]missing[/]",
        )
    console.print(files)

    if cube_path:
        cube = read_mat_array(cube_path, meta.cube.key, ndim=3, scene=meta.name)
        console.print(f"cube: {cube.shape[0]}×{cube.shape[1]}×{cube.shape[2]} {cube.dtype}")
    else:
        h, w, b = meta.shape
        console.print(
            f"cube: not present (published shape {h}×{w}×{b}). To get it: "
            f"`tfhsi data download {meta.name} --data-dir {root}`, or download {meta.cube.url} "
            f"into {root / meta.folder}"
            + (f" (sha256 {meta.cube.sha256})." if meta.cube.sha256 else ".")
        )
    if labels_path is None:
        console.print(f"labels: not present. `tfhsi data download {meta.name}` fetches them.")
        return
    labels, _, _ = load_labels(meta.name, data_dir=root, verify=False)
    counts = class_counts(labels, meta.n_classes)
    _print_classes(labels.shape, meta.class_names, counts, meta.class_ids)


def _print_classes(
    shape: tuple[int, ...],
    names: tuple[str, ...],
    counts: np.ndarray,
    file_ids: tuple[int, ...] | None,
) -> None:
    """The per-class table; ``file_ids`` adds the label id each class has in the file."""
    values = [int(c) for c in counts]
    console.print(
        f"{len(names)} classes, {sum(values):,} labelled pixels ({shape[0]}×{shape[1]}):",
        highlight=False,
    )
    table = Table()
    table.add_column("id", justify="right")
    if file_ids is not None:
        table.add_column("id in file", justify="right")
    table.add_column("class")
    table.add_column("pixels", justify="right")
    for index, (name, count) in enumerate(zip(names, values, strict=True), start=1):
        ids = (str(index), str(file_ids[index - 1])) if file_ids is not None else (str(index),)
        table.add_row(*ids, name, f"{count:,}")
    table.add_section()
    table.add_row(*([""] * (2 if file_ids is not None else 1)), "total", f"{sum(values):,}")
    console.print(table)


def _cube_present(scene_file: Path, spec: SceneFileSpec) -> tuple[bool, Path]:
    from tfhsi.data.readers import envi_files, format_of

    path = Path(spec.cube.path).expanduser()
    path = path if path.is_absolute() else scene_file.parent / path
    if format_of(path) == "envi":
        header, data = envi_files(path)
        return header.is_file() and data is not None, path
    return path.is_file(), path


def _missing_cube(scene_file: Path, path: Path) -> str:
    """Why the cube of a scene YAML cannot be found, with the fix."""
    from tfhsi.data.readers import read_raster
    from tfhsi.errors import DatasetNotFoundError

    fix = f"put it there or fix `cube:` in {scene_file.name} (relative paths are read from its folder)."
    try:
        read_raster(path, role="cube", fix=fix)
    except DatasetNotFoundError as exc:
        return str(exc)
    return f"{path} not found; {fix}"  # pragma: no cover - it appeared meanwhile


def _info_scene_file(ref: str) -> None:
    """``tfhsi data info NAME.yaml``: what the YAML describes, read and checked."""
    from tfhsi.data.download import sha256_file
    from tfhsi.data.scene_data import class_counts
    from tfhsi.data.scene_file import open_scene_file, read_scene_labels, read_scene_spec

    scene_file, spec = read_scene_spec(ref)
    console.print(f"[bold]{spec.name}[/] — scene file {scene_file}", highlight=False)
    if spec.description:
        console.print(spec.description, highlight=False)
    present, cube_path = _cube_present(scene_file, spec)
    if present:
        scene = open_scene_file(scene_file)
        labels, sources = scene.labels, scene.sources
        h, w, b = scene.shape
        console.print(
            f"cube: {h}×{w}×{b} {scene.cube.dtype} ({scene.layouts['cube']})", highlight=False
        )
        console.print(f"labels: {scene.layouts['labels']}", highlight=False)
        if scene.wavelengths:
            console.print(
                f"wavelengths: {min(scene.wavelengths):g}–{max(scene.wavelengths):g} "
                f"({len(scene.wavelengths)} bands)"
            )
        console.print(f"rgb bands (0-based): {', '.join(map(str, scene.rgb_bands))}")
    else:
        labels, raster = read_scene_labels(scene_file, spec)
        sources = {scene_file.name: sha256_file(scene_file)}
        sources |= {f.name: sha256_file(f) for f in raster.files}
        console.print(f"cube: {_missing_cube(scene_file, cube_path)}", highlight=False)
    files = Table(show_header=True, box=None, pad_edge=False)
    files.add_column("file", overflow="fold")
    files.add_column("sha256", no_wrap=True)
    for name, digest in sources.items():
        files.add_row(name, digest)
    console.print(files)
    counts = class_counts(labels, len(spec.names))
    _print_classes(labels.shape, spec.names, counts, spec.class_ids)


@app.command("download")
def download(
    scene: SceneName,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if present.")] = False,
) -> None:
    """Download a scene's files from the official URLs, verifying their sha256."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

    from tfhsi.data.download import download_file, resolve_data_dir, sha256_file
    from tfhsi.data.scene_file import is_scene_file
    from tfhsi.data.scenes import get_scene
    from tfhsi.errors import SceneFileError

    if is_scene_file(scene):
        raise SceneFileError(
            f"{scene} describes your own files; there is nothing to download. "
            f"`tfhsi data info {scene}` reads and checks them."
        )
    meta = get_scene(scene)
    root = resolve_data_dir(data_dir)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
    ) as bar:
        for file in meta.files:
            task = bar.add_task(file.filename, total=file.size)

            def report(done: int, total: int | None, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            path = download_file(meta, file, root, force=force, progress=report)
            note = (
                "verified" if file.sha256 else f"no published checksum; sha256 {sha256_file(path)}"
            )
            bar.console.print(f"[green]✓[/] {path} ({note})")


@app.command("verify")
def verify(
    scene: Annotated[
        str | None, typer.Argument(help="Scene to verify (default: every scene on disk).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check the sha256 of scene files on disk against the published checksums."""
    from tfhsi.data.download import (
        check_file,
        mismatch_message,
        missing_file_error,
        resolve_data_dir,
    )
    from tfhsi.data.scene_file import is_scene_file
    from tfhsi.data.scenes import SCENES, get_scene

    if scene and is_scene_file(scene):
        _verify_scene_file(scene)
        return
    root = resolve_data_dir(data_dir)
    scenes = [get_scene(scene)] if scene else [s for _, s in SCENES.items()]
    failures: list[str] = []
    checked = 0
    for meta in scenes:
        for file in meta.files:
            result = check_file(meta, file, root)
            if result.status == "missing":
                if scene:  # a named scene must be complete
                    failures.append(str(missing_file_error(meta, file, root)))
                    console.print(f"[red]✗ missing[/]  {meta.name}: {file.filename}")
                continue
            checked += 1
            assert result.path is not None and result.sha256 is not None
            if result.status == "ok":
                console.print(f"[green]✓ ok[/]       {meta.name}: {result.path}")
            elif result.status == "unverifiable":
                console.print(
                    f"[yellow]? no sum[/]   {meta.name}: {result.path} sha256 {result.sha256}"
                )
            else:
                console.print(f"[red]✗ mismatch[/] {meta.name}: {result.path}")
                failures.append(mismatch_message(meta, file, result.path, result.sha256))
    if not scene and checked == 0:
        console.print(f"no scene files in {root}; `tfhsi data download SCENE` fetches one.")
    for failure in failures:
        err_console.print(f"[bold red]error:[/] {failure}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)


def _verify_scene_file(ref: str) -> None:
    """Reads every file of a scene YAML with all checks and prints their sha256."""
    from tfhsi.data.scene_file import open_scene_file

    scene = open_scene_file(ref)
    for name, digest in scene.sources.items():
        console.print(f"[green]✓ readable[/] {scene.name}: {name} sha256 {digest}", highlight=False)
    console.print(
        f"{scene.name}: {scene.shape[0]}×{scene.shape[1]}×{scene.shape[2]}, "
        f"{scene.n_classes} classes, {int(scene.class_counts().sum()):,} labelled pixels. "
        "Your own files have no published checksum; run records keep these sums."
    )


@app.command("split")
def split(
    scene: SceneName,
    spec: Annotated[
        str,
        typer.Option("--split", help="random:F | random:N | disjoint:F | mask:TRAIN[,TEST[,VAL]]"),
    ] = "random:0.1",
    patch: Annotated[
        int, typer.Option(help="Patch size of the model (guard band and leakage).")
    ] = 11,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    val: Annotated[float, typer.Option(help="Share of each class for validation.")] = 0.0,
    save: Annotated[Path | None, typer.Option(help="Write the masks to this .npz.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Make a train/val/test split and report per-class counts and spatial leakage."""
    from tfhsi.data.io import load_labels
    from tfhsi.data.scene_file import is_scene_file, read_scene_labels, read_scene_spec
    from tfhsi.data.scenes import get_scene
    from tfhsi.data.splits import make_split

    if is_scene_file(scene):
        scene_file, scene_spec = read_scene_spec(scene)
        labels, _ = read_scene_labels(scene_file, scene_spec)
        title, class_names = scene_spec.name, scene_spec.names
    else:
        meta = get_scene(scene)
        labels, _, _ = load_labels(meta.name, data_dir=data_dir)
        title, class_names = meta.title, meta.class_names
    result = make_split(
        labels, spec, seed=seed, patch_size=patch, val_fraction=val, class_names=class_names
    )
    table = Table(title=f"{title}: {spec}, patch {patch}, seed {seed}")
    for column in ("class", "labelled", "train", "val", "test", "train %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    totals = dict.fromkeys(("labelled", "train", "val", "test"), 0)
    for row in result.summary(labels, class_names):
        for key in totals:
            totals[key] += int(row[key])  # type: ignore[call-overload]
        table.add_row(
            str(row["name"]),
            *(f"{int(row[k]):,}" for k in ("labelled", "train", "val", "test")),  # type: ignore[call-overload]
            f"{100 * float(row['train_fraction']):.1f}",  # type: ignore[arg-type]
        )
    table.add_section()
    table.add_row(
        "total",
        *(f"{totals[k]:,}" for k in ("labelled", "train", "val", "test")),
        f"{100 * totals['train'] / max(1, totals['labelled']):.1f}",
    )
    console.print(table)
    console.print(
        f"leakage: {100 * result.leakage():.1f} % of test pixels lie inside a {patch}×{patch} training patch"
        + (" (spatially disjoint: none)" if result.leakage() == 0 else "")
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if save:
        console.print(f"saved: {result.save(save)}")
