"""The layering rule of DESIGN.md, held by a test, plus lint.

cli → recipes, search (beside recipes, using its machinery), report → composition (experiment,
deployment, methods) → {data, models, train, compress, export, profile} (siblings that never import each other) → {_keras, errors,
registry, atomic, env, plugins}. Only ``tfhsi/_keras.py`` imports TensorFlow, tf_keras or
TF-MOT; ``report`` never imports TensorFlow at all.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfhsi"
SIBLINGS = ("data", "models", "train", "compress", "export", "profile")
COMPOSITION = ("experiment", "deployment", "methods", "api")
"""Top-level modules and packages that compose the siblings for the CLI, recipes and API."""
BASE = (
    "_keras", "errors", "registry", "atomic", "env", "plugins", "native", "tflite_file",
    "layouts", "keras_checks", "fast_conv3d", "conv_axes",
)  # fmt: skip
TF_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_keras_module_imports_tensorflow() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in _modules()
        if path.name != "_keras.py" or path.parent != PACKAGE
        for name in _imports(path)
        if name.split(".")[0] in TF_MODULES
    ]
    assert offenders == []


@pytest.mark.parametrize("package", SIBLINGS)
def test_sibling_packages_do_not_import_each_other(package: str) -> None:
    folder = PACKAGE / package
    if not folder.is_dir():
        pytest.skip(f"tfhsi.{package} does not exist yet")
    others = {f"tfhsi.{name}" for name in SIBLINGS if name != package} | {
        "tfhsi.recipes",
        "tfhsi.search",
        "tfhsi.report",
        "tfhsi.cli",
        *(f"tfhsi.{name}" for name in COMPOSITION),
    }
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in folder.rglob("*.py")
        for name in _imports(path)
        if any(name == other or name.startswith(other + ".") for other in others)
    ]
    assert offenders == []


def _sources(name: str) -> list[Path]:
    folder = PACKAGE / name
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{name}.py"]


@pytest.mark.parametrize("module", COMPOSITION)
def test_composition_modules_never_import_recipes_report_or_cli(module: str) -> None:
    upper = ("tfhsi.recipes", "tfhsi.search", "tfhsi.report", "tfhsi.cli")
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in _sources(module)
        for name in _imports(path)
        if any(name == up or name.startswith(up + ".") for up in upper)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("recipes", ("tfhsi.search", "tfhsi.cli")), ("search", ("tfhsi.cli",))],
)
def test_recipes_and_search_import_no_layer_above_them(
    module: str, forbidden: tuple[str, ...]
) -> None:
    """``search`` sits beside ``recipes`` (its trials are generated recipe variants): it may
    use the recipe machinery, never the other way round; neither imports the CLI."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in _sources(module)
        for name in _imports(path)
        if any(name == up or name.startswith(up + ".") for up in forbidden)
    ]
    assert offenders == []


@pytest.mark.parametrize("module", BASE)
def test_base_modules_import_no_other_tfhsi_layer(module: str) -> None:
    allowed = {f"tfhsi.{name}" for name in BASE}
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in _sources(module)
        if path.exists()
        for name in _imports(path)
        if name.startswith("tfhsi.") and name not in allowed
    ]
    assert offenders == []


def test_report_never_imports_tensorflow() -> None:
    folder = PACKAGE / "report"
    if not folder.is_dir():
        pytest.skip("tfhsi.report does not exist yet")
    offenders = [
        str(path)
        for path in folder.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in TF_MODULES or name.startswith("tfhsi._keras")
    ]
    assert offenders == []


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    root = PACKAGE.parent
    result = subprocess.run(
        [ruff, "check", "tfhsi", "tests", "tools"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    root = PACKAGE.parent
    result = subprocess.run([str(mypy), "tfhsi"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
