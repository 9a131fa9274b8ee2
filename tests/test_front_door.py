"""``import tfhsi`` is light; its verbs resolve lazily from one table; typos get suggestions."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tfhsi


def test_all_is_the_verb_table_and_the_version() -> None:
    assert set(tfhsi.__all__) == {*tfhsi._VERBS, "__version__"}
    assert len(tfhsi.__all__) == len(set(tfhsi.__all__))


@pytest.mark.parametrize("name", sorted(tfhsi._VERBS))
def test_every_verb_resolves_to_its_target(name: str) -> None:
    import importlib

    module_name, _, attribute = tfhsi._VERBS[name].partition(":")
    expected = importlib.import_module(module_name)
    for part in attribute.split("."):
        expected = getattr(expected, part)
    assert getattr(tfhsi, name) == expected
    assert callable(expected) or name in ("keras", "tf")


def test_keras_handle_is_tf_keras_not_keras3() -> None:
    from tfhsi import keras, tf

    assert keras.__name__ == "tf_keras"
    assert keras.__version__.startswith("2.")
    assert tf.keras.Model is keras.Model


def test_dir_lists_the_verbs() -> None:
    assert set(tfhsi._VERBS) <= set(dir(tfhsi))


def test_import_and_all_load_no_tensorflow() -> None:
    code = (
        "import sys, tfhsi\n"
        "names = list(tfhsi.__all__) + dir(tfhsi)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'tensorflow_model_optimization', 'keras'))\n"
        "assert not heavy, heavy\n"
        "print(len(names))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_light_verbs_load_no_tensorflow() -> None:
    code = (
        "import sys, tfhsi\n"
        "tfhsi.load_scene, tfhsi.list_scenes, tfhsi.list_models, tfhsi.load_recipe, tfhsi.audit\n"
        "assert 'tensorflow' not in sys.modules\n"
        "assert 'indian_pines' in tfhsi.list_scenes() and 'hybridsn' in tfhsi.list_models()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_attribute_suggests_the_close_verb() -> None:
    with pytest.raises(AttributeError, match=r"'buil_model'.*Did you mean 'build_model'"):
        tfhsi.buil_model  # noqa: B018


def test_unknown_attribute_without_close_match_is_a_plain_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'zzz'") as caught:
        tfhsi.zzz  # noqa: B018
    assert "Did you mean" not in str(caught.value)
    assert not hasattr(tfhsi, "zzz")


def test_no_verb_is_shadowed_by_a_subpackage_or_module_of_the_same_name() -> None:
    """``import tfhsi.train`` would set ``tfhsi.train`` to the package and hide a verb."""
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(tfhsi.__path__)}
    assert sorted(set(tfhsi.__all__) & modules) == []
