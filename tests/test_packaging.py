"""The wheel is complete: every package and data file ships, and an installed tfhsi finds them.

The slow test builds the wheel offline from a copy of the source, installs it (not editable)
into a fresh folder and runs it from outside the repository, so nothing can come from the
source tree.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfhsi.recipes.loading import shipped_recipe_dirs

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tfhsi"


def _setuptools_config() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]


def _source_packages() -> set[str]:
    return {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_pyproject_lists_every_package_of_the_source_tree() -> None:
    listed = set(_setuptools_config()["packages"])
    assert _source_packages() - listed == set()
    assert listed - _source_packages() == {"tfhsi.builtin_recipes"}


def test_every_data_file_in_the_package_is_declared_package_data() -> None:
    packages = _source_packages()
    patterns = _setuptools_config()["package-data"]
    undeclared = []
    for path in PACKAGE.rglob("*"):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        owner = next(p for p in path.parents if ".".join(p.relative_to(REPO).parts) in packages)
        name = ".".join(owner.relative_to(REPO).parts)
        relative = path.relative_to(owner).as_posix()
        if not any(fnmatch.fnmatch(relative, pat) for pat in patterns.get(name, [])):
            undeclared.append(path.relative_to(REPO).as_posix())
    assert undeclared == []


def test_shipped_recipes_are_the_top_level_recipes_folder() -> None:
    folders = shipped_recipe_dirs()
    found = {p.stem for folder in folders for p in folder.glob("*.yaml")}
    assert found == {p.stem for p in (REPO / "recipes").glob("*.yaml")}
    assert "kd_pavia" in found


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tfhsi built as a wheel offline and installed (not editable) into a fresh folder."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tfhsi", "recipes"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
        cwd=root,
        env=env,
    )
    (wheel,) = (root / "dist").glob("tfhsi-*.whl")
    site = root / "site"
    _run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], cwd=root, env=env)
    return site


@pytest.fixture(scope="module")
def installed_env(installed: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFHSI_")}
    return {**env, "PYTHONPATH": str(installed), "COLUMNS": "200", "NO_COLOR": "1"}


def _python(code: str, installed: Path, env: dict[str, str]) -> str:
    return _run([sys.executable, "-c", code], cwd=installed.parent, env=env)


@pytest.mark.slow
def test_installed_wheel_is_imported_from_the_install_folder(installed, installed_env) -> None:
    code = (
        "import json, tfhsi\n"
        "from tfhsi.recipes.loading import shipped_recipe_dirs\n"
        "print(json.dumps({'file': tfhsi.__file__, 'recipes': [str(p) for p in shipped_recipe_dirs()]}))"
    )
    found = json.loads(_python(code, installed, installed_env))
    assert Path(found["file"]).is_relative_to(installed)
    assert [Path(p) for p in found["recipes"]] == [installed / "tfhsi" / "builtin_recipes"]


@pytest.mark.slow
def test_installed_wheel_lists_and_validates_the_shipped_recipes(installed, installed_env) -> None:
    cli = [str(installed / "bin" / "tfhsi")]
    if not Path(cli[0]).is_file():
        cli = [sys.executable, "-c", "from tfhsi.cli import main; main()"]
    listing = _run([*cli, "recipe", "list"], cwd=installed.parent, env=installed_env)
    assert "kd_pavia" in listing
    assert "kd_indian_pines" in listing
    checked = _run(
        [*cli, "recipe", "validate", "kd_pavia"], cwd=installed.parent, env=installed_env
    )
    assert "kd_pavia" in checked and "variants" in checked


@pytest.mark.slow
def test_installed_wheel_ships_the_target_profiles(installed, installed_env) -> None:
    code = "from tfhsi.profile.targets import load_targets; print(load_targets().names())"
    names = _python(code, installed, installed_env)
    assert "cortex-m4" in names and "android-cpu" in names


@pytest.mark.slow
def test_installed_front_door_imports_no_tensorflow(installed, installed_env) -> None:
    code = (
        "import sys, tfhsi\n"
        "print(tfhsi.__all__)\n"
        "assert 'tensorflow' not in sys.modules, 'import tfhsi imported TensorFlow'"
    )
    assert "load_recipe" in _python(code, installed, installed_env)
