"""The run record: round trip, clear errors naming the field, aggregation over seeds, Pareto fronts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fake_run import fake_results

from tfhsi.errors import DataFormatError
from tfhsi.report.aggregate import MeanStd, aggregate_rows, best_int8, teacher_reference
from tfhsi.report.pareto import pareto_front
from tfhsi.report.results import ResultRow, load_results, write_results


def test_written_record_loads_back_equal(tmp_path: Path) -> None:
    results = fake_results()
    path = write_results(tmp_path, results)
    assert path == tmp_path / "results.json"
    assert load_results(tmp_path) == results
    assert load_results(path) == results


def test_unknown_keys_survive_a_round_trip(tmp_path: Path) -> None:
    data = fake_results().to_dict()
    data["future_field"] = {"x": 1}
    data["rows"][0]["new_metric"] = 0.5
    (tmp_path / "results.json").write_text(json.dumps(data))
    again = load_results(tmp_path).to_dict()
    assert again["future_field"] == {"x": 1}
    assert again["rows"][0]["new_metric"] == 0.5


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["rows"][2].__setitem__("oa", "high"), "rows[2].oa"),
        (lambda d: d["rows"][1].__setitem__("oa", 95.1), "rows[1].oa"),
        (lambda d: d["rows"][0].pop("variant"), "rows[0].variant"),
        (
            lambda d: d["rows"][3]["targets"]["cortex-m4"].__setitem__("fits", "yes"),
            "rows[3].targets.cortex-m4.fits",
        ),
        (
            lambda d: d["rows"][0].__setitem__("per_class_accuracy", [0.5]),
            "rows[0].per_class_accuracy",
        ),
        (lambda d: d["dataset"].__setitem__("synthetic", "no"), "dataset.synthetic"),
        (lambda d: d.__setitem__("rows", {}), "rows"),
        (lambda d: d["rows"][0].__setitem__("confusion", [[1, 2], [3]]), "rows[0].confusion"),
    ],
)
def test_malformed_record_names_the_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    data = fake_results().to_dict()
    mutate(data)
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as info:
        load_results(tmp_path)
    message = str(info.value)
    assert f"'{field}'" in message
    assert str(tmp_path / "results.json") in message


def test_missing_and_invalid_json_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no run record"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_results(tmp_path)


def _row(seed: int, oa: float | None, **kw) -> ResultRow:
    return ResultRow(
        seed=seed, variant=kw.pop("variant", "s"), format=kw.pop("format", "int8"), oa=oa, **kw
    )


def test_aggregate_gives_mean_and_sample_std_over_seeds() -> None:
    rows = [
        _row(0, 0.90, size_bytes=1000, per_class_accuracy=[0.8, None]),
        _row(1, 0.92, size_bytes=1000, per_class_accuracy=[0.9, 0.5]),
        _row(2, 0.94, size_bytes=1000, per_class_accuracy=[1.0, 0.7]),
        _row(3, None, error="boom"),
        _row(0, 0.5, variant="t", format="keras", stage="teacher"),
    ]
    student, teacher = aggregate_rows(rows)
    assert student.label == "s/int8" and teacher.label == "t/keras"
    assert student.n == 3 and student.failures == ((3, "boom"),)
    assert student.oa.mean == pytest.approx(0.92)
    assert student.oa.std == pytest.approx(0.02)  # ddof=1
    assert student.size_bytes == 1000
    assert student.per_class[0].mean == pytest.approx(0.9)
    assert student.per_class[1].mean == pytest.approx(0.6) and student.per_class[1].n == 2
    assert teacher.oa == MeanStd(0.5, 0.0, 1)
    assert teacher_reference([student, teacher]) is teacher
    assert best_int8([student, teacher]) is student


def test_group_whose_every_seed_failed_is_kept_as_failed() -> None:
    (row,) = aggregate_rows([_row(0, None, error="a"), _row(1, None, error="b")])
    assert row.all_failed and row.oa is None and row.n == 0


def test_mean_std_formats_percent_and_drops_std_for_one_value() -> None:
    assert MeanStd(0.95123, 0.00345, 3).format() == "95.12 ± 0.34"
    assert MeanStd(0.95, 0.0, 1).format() == "95.00"
    assert MeanStd.of([None, math.nan]) is None


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(10, 0.90), (5, 0.85), (20, 0.95), (12, 0.88), (5, 0.80), (30, 0.95), (1, 0.5)]
    assert pareto_front(points) == [6, 1, 0, 2]


def test_pareto_front_keeps_ties_and_skips_nan() -> None:
    assert pareto_front([(1, 0.9), (1, 0.9), (math.nan, 1.0), (2, 0.9)]) == [0, 1]
    assert pareto_front([]) == []


def test_columns_holding_only_dashes_are_dropped_but_spanning_failures_kept() -> None:
    from tfhsi.report.tables import Column, Table, TableRow

    table = Table(
        "t",
        [Column("name", "left"), Column("oa"), Column("sparsity"), Column("size")],
        [
            TableRow(["a", "90", "—", "1 KiB"]),
            TableRow(["b", "91", "—", "—"]),
            TableRow(["c", "failed: x"], "failed"),
        ],
    )
    slim = table.without_empty_columns()
    assert [c.name for c in slim.columns] == ["name", "oa", "size"]
    assert [r.cells for r in slim.rows] == [
        ["a", "90", "1 KiB"],
        ["b", "91", "—"],
        ["c", "failed: x"],
    ]


def _record(rows: list[dict]) -> dict:
    return {"recipe": "r", "dataset": {"name": "d"}, "seeds": [0], "rows": rows}


def test_old_records_are_read_with_today_s_export_names(tmp_path: Path) -> None:
    """Older versions named the Conv3D-lowered file ``int8-lowered`` and the converter's
    mixed result ``int8``: a report picks the former as today's int8."""
    old = [
        {"seed": 0, "variant": "ptq", "format": "keras", "oa": 0.97},
        {"seed": 0, "variant": "ptq", "format": "int8", "precision": "mixed", "oa": 0.97,
         "full_int8": False},
        {"seed": 0, "variant": "ptq", "format": "int8-lowered", "precision": "int8", "oa": 0.95,
         "full_int8": True},
        {"seed": 0, "variant": "ptq", "format": "int16x8-lowered", "precision": "int16x8",
         "oa": 0.96, "full_int8": True},
        {"seed": 0, "variant": "s2d", "format": "int8", "precision": "int8", "oa": 0.9,
         "full_int8": True},
    ]  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(_record(old)))
    results = load_results(tmp_path)
    formats = [(r.variant, r.format, r.precision) for r in results.rows]
    assert formats == [
        ("ptq", "keras", None),
        ("ptq", "int8-mixed", "mixed"),
        ("ptq", "int8", "int8"),
        ("ptq", "int16x8", "int16x8"),
        ("s2d", "int8", "int8"),
    ]
    best = best_int8(aggregate_rows(results.rows))
    assert best is not None and best.label == "ptq/int8" and best.oa.mean == 0.95  # type: ignore[union-attr]


def test_report_tables_show_the_precision_the_audit_found() -> None:
    from tfhsi.report.results import RunResults
    from tfhsi.report.tables import headline_table, seeds_table

    rows = [
        {"seed": 0, "variant": "teacher", "format": "keras", "oa": 0.97},
        {"seed": 0, "variant": "ptq", "format": "int8", "precision": "int8", "oa": 0.95},
        {"seed": 0, "variant": "ptq", "format": "int8-mixed", "precision": "mixed", "oa": 0.96},
    ]
    results = RunResults.from_dict(_record(rows))
    for table in (headline_table(results, aggregate_rows(results.rows)), seeds_table(results)):
        names = [c.name for c in table.columns]
        fmt, precision = names.index("format"), names.index("precision")
        shown = {(r.cells[fmt], r.cells[precision]) for r in table.rows}
        assert {("int8", "int8"), ("int8-mixed", "mixed")} <= shown, table.title
