"""Report files from a fake run record: what is written and what a reader sees in them."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fake_run import write_fake_run

from tfhsi.report.build import build_report, compare_runs, write_compare


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    run = tmp_path_factory.mktemp("run")
    write_fake_run(run, seeds=(0, 1), synthetic=True, quick=True)
    return run, build_report(run)


def test_build_writes_every_report_file(built) -> None:
    run, written = built
    expected = {
        "report.md", "report.html", "results.csv", "plots/pareto_size.png",
        "plots/pareto_latency.png", "plots/per_class.png",
        "plots/confusion_teacher_keras.png", "plots/confusion_kd_student_int8.png",
    }  # fmt: skip
    assert set(written) == expected
    for name in expected:
        assert (run / name).is_file() and (run / name).stat().st_size > 0
    assert (run / "plots/per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_has_one_line_per_row_with_flat_columns(built) -> None:
    run, _ = built
    with open(run / "results.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 2 * 8  # 2 seeds × (6 variant/formats + 2 that may fail)
    failed = [line for line in lines if line["error"]]
    assert len(failed) == 3 and all(line["oa"] == "" for line in failed)
    assert {"fits_cortex-m4", "est_latency_ms_cortex-m7", "acc_1_alfalfa"} <= set(lines[0])
    assert lines[0]["synthetic"] == "true" and float(lines[0]["oa"]) < 1


def test_markdown_carries_warnings_seeds_split_command_and_mean_std(built) -> None:
    run, _ = built
    md = (run / "report.md").read_text()
    sections = md.count("\n## ")
    assert md.count("QUICK RUN — not for publication") >= sections  # under every heading
    assert "SYNTHETIC DATA" in md
    assert "Random splits leak" in md and "random:0.1" in md
    assert "**seeds:** 0, 1" in md
    assert "tfhsi recipe run kd_indian_pines --quick" in md
    assert re.search(r"\| teacher \| hamida3d \| keras \| 2 \| \d+\.\d\d ± \d\.\d\d \|", md)
    assert "failed: RuntimeError: int16x8 conversion" in md  # a group that failed on every seed
    assert "1 (1 failed)" in md  # a group that failed on one seed
    assert "![kd_student/int8 (seed 0)](seed_0/kd_student/map_int8.png)" in md


def test_html_is_self_contained_and_embeds_plots_and_maps(built) -> None:
    run, _ = built
    html = (run / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 5 + 2  # 5 plots + 2 classification maps
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in html and "<link" not in html
    assert html.count("QUICK RUN — not for publication") >= html.count("<section")
    assert 'class="badge">SYNTHETIC DATA' in html
    assert "Random splits leak" in html and "tfhsi recipe run kd_indian_pines --quick" in html


def test_real_full_run_has_no_warning_stamps(tmp_path: Path) -> None:
    write_fake_run(tmp_path, with_maps=False, synthetic=False, quick=False, failed=False)
    written = build_report(tmp_path, out_dir=tmp_path / "out")
    md = written["report.md"].read_text()
    assert "QUICK RUN" not in md and "SYNTHETIC" not in md and "failed" not in md
    assert "Classification maps" not in md


def test_compare_sets_two_runs_side_by_side(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_fake_run(a, with_maps=False, quick=True)
    write_fake_run(
        b, with_maps=False, quick=False, synthetic=False, seeds=(0, 1, 2), recipe="other"
    )
    table = compare_runs([a, b])
    runs = {row.cells[0] for row in table.rows}
    assert runs == {"kd_indian_pines [SYNTHETIC, QUICK]", "other"}
    assert len(table.rows) == 2 * 8
    seeds = {row.cells[0]: row.cells[3] for row in table.rows if row.cells[1] == "teacher/keras"}
    assert seeds == {"kd_indian_pines [SYNTHETIC, QUICK]": "2", "other": "3"}
    written = write_compare([a, b], tmp_path / "cmp")
    md = written["compare.md"].read_text()
    assert "kd_indian_pines: SYNTHETIC DATA · QUICK RUN" in md
    assert f"| other | Indian Pines | random:0.1 | 0, 1, 2 | random split | {b} |" in md
    assert written["compare.html"].read_text().count("<table>") == 2


def test_report_modules_never_import_tensorflow() -> None:
    code = (
        "import sys, pkgutil, importlib, tfhsi.report as r\n"
        "for m in pkgutil.iter_modules(r.__path__): importlib.import_module('tfhsi.report.' + m.name)\n"
        "import tfhsi.cli.report\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')\n"
        "             or m in ('tfhsi._keras',) or m.split('.')[:2] in (['tfhsi', n] for n in\n"
        "             ('data', 'models', 'train', 'compress', 'export', 'profile')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"seed": 0, "variant": "kd", "format": "-", "error": "RecipeError: bad step"}],
        [
            {
                "seed": 0,
                "variant": "teacher",
                "format": "keras",
                "oa": 0.5,
                "per_class_accuracy": [0.5, None],
            }
        ],
    ],
)
def test_sparse_records_still_give_a_report(tmp_path: Path, rows: list) -> None:
    record = {"recipe": "r", "dataset": {"name": "d"}, "class_names": ["a", "b"], "rows": rows}
    (tmp_path / "results.json").write_text(json.dumps(record))
    written = build_report(tmp_path)
    md = written["report.md"].read_text()
    assert "## Headline results" in md and "## Reproduce" in md
    assert "No .tflite sizes or latencies were recorded." in md
    if rows and rows[0].get("error"):
        assert "failed: RecipeError: bad step" in md
