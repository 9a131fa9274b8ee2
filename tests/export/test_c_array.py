"""The C array export: bytes round-trip, alignment, labels, and it compiles."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tfhsi.errors import ConfigError, DataFormatError
from tfhsi.export import write_c_array

# A minimal valid-looking flatbuffer header is enough for the writer; real models below.
FAKE = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 3


def _array_bytes(source: str, name: str) -> bytes:
    body = re.search(rf"{name}\[\] = \{{(.*?)\}};", source, re.S)
    assert body is not None
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body.group(1)))


def test_cc_bytes_parse_back_to_the_model_bytes(converted, tmp_path):
    data = converted("student2d", "int8")
    header, source = write_c_array(data, tmp_path / "model_data")
    assert (header.name, source.name) == ("model_data.h", "model_data.cc")
    text = source.read_text()
    assert _array_bytes(text, "g_model") == data
    assert "alignas(16) const unsigned char g_model[]" in text
    assert f"const unsigned int g_model_len = {len(data)};" in text
    assert '#include "model_data.h"' in text
    h = header.read_text()
    assert "extern const unsigned char g_model[];" in h
    assert "extern const unsigned int g_model_len;" in h
    assert h.count("#ifndef MODEL_DATA_H_") == 1


def test_name_alignment_and_labels_are_written(tmp_path):
    header, source = write_c_array(
        FAKE, tmp_path / "net", name="hsi_net", alignment=64, class_names=['Corn "notill"', "é"]
    )
    text = source.read_text()
    assert "alignas(64) const unsigned char hsi_net[]" in text
    assert _array_bytes(text, "hsi_net") == FAKE
    assert r'"Corn \"notill\""' in text and r'"\303\251"' in text
    assert "hsi_net_num_labels = 2;" in text
    assert "extern const char* const hsi_net_labels[];" in header.read_text()


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"name": "9lives"}, "C identifier"), ({"alignment": 24}, "power of two")]
)
def test_bad_name_or_alignment_is_a_config_error(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        write_c_array(FAKE, tmp_path / "m", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_non_tflite_bytes_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match="TFL3"):
        write_c_array(b"\x89HDF\r\n\x1a\n....", tmp_path / "m")


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_generated_sources_compile_and_hold_the_aligned_model(converted, tmp_path):
    data = converted("student2d", "int8")
    write_c_array(data, tmp_path / "model_data", class_names=["a", "b", "c", "d"])
    (tmp_path / "main.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main() {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model) % 16 != 0) return 3;\n"
        "  std::fwrite(g_model, 1, g_model_len, stdout);\n"
        "  return g_model_num_labels == 4 ? 0 : 4;\n}\n"
    )
    exe = tmp_path / "check"
    subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", "-o", str(exe), "main.cc", "model_data.cc"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    run = subprocess.run([str(exe)], capture_output=True, check=False)
    assert run.returncode == 0
    assert run.stdout == data
