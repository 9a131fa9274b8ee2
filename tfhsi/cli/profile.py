"""``tfhsi profile MODEL.tflite``: size, MACs, LiteRT latency, TFLite Micro arena, target fit.

Everything is measured on the file: raw and gzip bytes; MACs from the graph; LiteRT
latency (1 thread and all threads × XNNPACK on / off) cross-checked against the
``litert-benchmark`` tool; the smallest TFLM arena (searched and verified); LiteRT vs TFLM
outputs on the same inputs; accuracy on a run's test split when the model belongs to one;
and a fits / does-not-fit verdict per target profile with the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tfhsi.cli._console import console, err_console
from tfhsi.cli.data import DataDir


def profile(
    model: Annotated[Path, typer.Argument(help="The .tflite file to profile.")],
    target: Annotated[
        list[str] | None,
        typer.Option("--target", "-t", help="Target profile(s) to check (default: all)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON record here.")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="'All threads' count (default: the CPUs available).")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs per configuration.")] = 100,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs first.")] = 10,
    tflm: Annotated[
        bool, typer.Option("--tflm/--no-tflm", help="Measure the TFLite Micro arena.")
    ] = True,
    benchmark: Annotated[
        bool,
        typer.Option("--benchmark/--no-benchmark", help="Cross-check with litert-benchmark."),
    ] = True,
    run: Annotated[
        Path | None, typer.Option(help="Training run whose test split gives the accuracy.")
    ] = None,
    targets_dir: Annotated[
        Path | None,
        typer.Option(help="Extra folder of target YAML files (after $TFHSI_TARGETS_DIR)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Measure a .tflite model and check it against deployment targets."""
    from tfhsi.profile.targets import load_targets

    registry = load_targets([targets_dir] if targets_dir else [])
    chosen = [registry.get(name) for name in target] if target else [t for _, t in registry.items()]
    record = collect(
        model,
        targets=chosen,
        threads=threads,
        runs=runs,
        warmup=warmup,
        tflm=tflm,
        benchmark=benchmark,
        run=run,
        data_dir=data_dir,
    )
    if out is not None:
        from tfhsi.atomic import write_json

        write_json(out, record)
    if json_out:
        typer.echo(json.dumps(record, indent=2, default=str))
    else:
        _print(record)


def collect(
    model: Path,
    *,
    targets: list[Any],
    threads: int | None = None,
    runs: int = 100,
    warmup: int = 10,
    tflm: bool = True,
    benchmark: bool = True,
    run: Path | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Measures ``model`` and assesses it against ``targets``; returns a JSON-ready record."""
    from tfhsi.deployment import assess_targets
    from tfhsi.env import environment
    from tfhsi.errors import UnsupportedError
    from tfhsi.export.inspect import audit
    from tfhsi.profile import latency as lat
    from tfhsi.profile.interpreter import TFLiteModel
    from tfhsi.profile.macs import count_macs
    from tfhsi.profile.mcu import KERNEL_CODE_NOTE, compare_with_litert, find_min_arena
    from tfhsi.profile.size import model_bytes, model_size

    content = model_bytes(model)
    loaded = TFLiteModel(model, xnnpack=False)
    size = model_size(content)
    macs = count_macs(loaded)
    report = audit(content)  # int8-ness and runtime verdicts: the audit of the file, only
    floats = sorted({op.name for op in report.float_ops})
    all_threads = threads or lat.all_threads()
    record: dict[str, Any] = {
        "model": str(model),
        "input": {"shape": list(loaded.input_shape), "dtype": loaded.input_dtype.name},
        "output": {"shape": list(loaded.output_shape), "dtype": loaded.output_dtype.name},
        "size": size.to_dict(),
        "macs": macs.to_dict(),
        "float_ops": floats,
        "ops": sorted({op["op_name"] for op in loaded.ops()}),
        "settings": {"runs": runs, "warmup": warmup, "all_threads": all_threads},
    }

    err_console.print(f"[dim]timing {model.name} on LiteRT ({runs} runs per configuration)…[/]")
    thread_counts = sorted({1, all_threads})
    stats = [
        lat.measure_latency(content, threads=t, xnnpack=x, warmup=warmup, runs=runs)
        for t in thread_counts
        for x in (True, False)
    ]
    record["latency"] = [s.to_dict() for s in stats]
    checks = []
    if benchmark:
        err_console.print("[dim]cross-checking with litert-benchmark…[/]")
        for t in thread_counts:
            ours = next(s for s in stats if s.threads == t and s.xnnpack)
            ref = lat.litert_benchmark(model, threads=t, runs=runs, warmup=warmup)
            checks.append(
                {"threads": t, "ours": ours.to_dict()}
                | (
                    {
                        "tool": ref.to_dict(),
                        "difference_pct": lat.percent_difference(ours, ref),
                        "tool_resolution_ms": lat.BENCHMARK_RESOLUTION_MS,
                    }
                    | dict(zip(("comparable", "why_not"), lat.comparable(ours, ref), strict=True))
                    if isinstance(ref, lat.LatencyStats)
                    else {"tool": None, "unavailable": ref.reason}
                )
            )
    record["litert_benchmark"] = checks

    arena = tflm_error = None
    if tflm:
        err_console.print("[dim]searching the smallest TFLite Micro arena…[/]")
        try:
            arena = find_min_arena(content, source=str(model))
            agreements = [
                compare_with_litert(
                    content, 16, arena_bytes=arena.min_bytes, xnnpack=x, source=str(model)
                )
                for x in (True, False)
            ]
            record["tflm"] = {
                "arena": arena.to_dict(),
                "agreement": [a.to_dict() for a in agreements],
                "kernel_code_note": KERNEL_CODE_NOTE,
            }
        except UnsupportedError as exc:
            tflm_error = str(exc).removeprefix(f"{model}: ")
            record["tflm"] = {"error": tflm_error}
    else:
        record["tflm"] = {"skipped": "--no-tflm"}

    record["accuracy"] = _accuracy(model, run, data_dir)
    record["precision"] = report.precision
    assessments = assess_targets(
        targets,
        model_bytes=size.raw_bytes,
        arena_bytes=arena.min_bytes if arena else None,
        macs=macs.per_sample,
        verdicts={name: (v.ok, list(v.reasons)) for name, v in report.verdicts.items()},
        int8=report.is_full_int8,
        tflm_error=tflm_error,
    )
    record["targets"] = [
        a.to_dict() | {"title": t.title, "ram_bytes": t.ram_bytes, "flash_bytes": t.flash_bytes}
        for t, a in zip(targets, assessments, strict=True)
    ]
    record["environment"] = environment()
    return record


def _accuracy(model: Path, run: Path | None, data_dir: Path | None) -> dict[str, Any]:
    """OA / AA / Kappa on the run's test split, through the same API as Keras models."""
    from tfhsi.errors import ConfigError, TfhsiError
    from tfhsi.experiment import evaluate_path, find_run_dir, load_run

    try:
        folder = run or find_run_dir(model)
    except ConfigError:
        return {"skipped": "not inside a run directory; pass --run RUN_DIR for test accuracy"}
    try:
        metrics = evaluate_path(model, load_run(folder, data_dir=data_dir), subset="test")
    except TfhsiError as exc:
        return {"skipped": f"cannot evaluate on {folder}: {exc}"}
    return {
        "run": str(folder),
        "subset": "test",
        "oa": metrics.oa,
        "aa": metrics.aa,
        "kappa": metrics.kappa,
    }


def _ms(value: float) -> str:
    return f"{value:.3f}" if value >= 0.01 else f"{value:.5f}"


def _kib(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:,.1f} KiB"


def _print(record: dict[str, Any]) -> None:
    size, macs = record["size"], record["macs"]
    head = Table(title=f"{record['model']}", show_header=False)
    head.add_row("input", f"{tuple(record['input']['shape'])} {record['input']['dtype']}")
    head.add_row(
        "size",
        f"{size['raw_bytes']:,} B raw, {size['gzip_bytes']:,} B gzip -9 (×{size['gzip_ratio']})",
    )
    head.add_row("MACs / inference", f"{macs['per_sample']:,}")
    head.add_row(
        "float ops", ", ".join(record["float_ops"][:6]) if record["float_ops"] else "none (integer)"
    )
    acc = record["accuracy"]
    head.add_row(
        "test accuracy",
        f"OA {100 * acc['oa']:.2f} %, AA {100 * acc['aa']:.2f} %, κ {acc['kappa']:.4f}"
        if "oa" in acc
        else f"[dim]{acc['skipped']}[/]",
    )
    console.print(head)

    table = Table(title="LiteRT latency on this host (ms, invoke only)")
    for column in (
        "threads",
        "XNNPACK",
        "median",
        "p90",
        "mean",
        "min",
        "litert-benchmark",
        "diff",
    ):
        table.add_column(column, justify="right")
    checks = {c["threads"]: c for c in record["litert_benchmark"]}
    for s in record["latency"]:
        check = checks.get(s["threads"]) if s["xnnpack"] else None
        tool = diff = ""
        if check is not None:
            if check.get("tool"):
                pct = check["difference_pct"]
                tool = f"{check['tool']['median_ms']:.2f}"
                diff = "< 0.01 ms" if pct is None else f"{pct:+.1f} %"
                if not check["comparable"]:
                    diff += " †"
            else:
                tool = "[dim]n/a[/]"
        table.add_row(
            str(s["threads"]),
            "on" if s["xnnpack"] else "off",
            _ms(s["median_ms"]),
            _ms(s["p90_ms"]),
            _ms(s["mean_ms"]),
            _ms(s["min_ms"]),
            tool,
            diff,
        )
    console.print(table)
    for check in record["litert_benchmark"]:
        if not check.get("tool"):
            console.print(f"[dim]litert-benchmark unavailable: {check['unavailable']}[/]")
        elif not check["comparable"]:
            console.print(f"[dim]† {check['threads']} threads: {check['why_not']}[/]")

    tf = record["tflm"]
    if "arena" in tf:
        a = tf["arena"]
        fail = f", fails at {a['verified_fail_at']:,} B" if a["verified_fail_at"] else ""
        console.print(
            f"TFLite Micro arena: [bold]{a['min_bytes']:,} B[/] ({_kib(a['min_bytes'])}; verified "
            f"to run at {a['verified_ok_at']:,} B{fail}; measured on {a['host']})"
        )
        for g in tf["agreement"]:
            lsb = g["max_lsb_diff"]
            shown = f"max {lsb} LSB" if lsb is not None else f"max |diff| {g['max_abs_diff']:.3g}"
            console.print(
                f"LiteRT (XNNPACK {'on' if g['xnnpack'] else 'off'}) vs TFLM: {shown} over "
                f"{g['logits']} logits of {g['samples']} inputs ({g['differing_logits']} differ)"
            )
        console.print(
            "[dim]TFLM shares LiteRT's built-in integer arithmetic (expect <= 1 LSB); XNNPACK "
            "requantises in fp32, so 1-2 LSB there are rounding, not a bug[/]"
        )
        console.print(f"[dim]{tf['kernel_code_note']}[/]")
    else:
        console.print(f"TFLite Micro: {tf.get('error') or tf.get('skipped')}")

    fit = Table(title="targets")
    for column in ("target", "verdict", "RAM need / have", "flash need / have", "est. latency"):
        fit.add_column(column)
    for t in record["targets"]:
        colour = {"fits": "green", "does not fit": "red"}.get(t["verdict"], "yellow")
        latency = t["estimated_latency_ms"]
        fit.add_row(
            t["target"],
            f"[{colour}]{t['verdict']}[/]",
            f"{_kib(t['ram_needed_bytes'])} / {_kib(t['ram_bytes'])}",
            f"{_kib(t['flash_needed_bytes'])} / {_kib(t['flash_bytes'])}",
            f"~{latency:,.1f} ms (estimate)" if latency is not None else "–",
        )
    console.print(fit)
    if record.get("audit_note"):
        console.print(f"[dim]{record['audit_note']}[/]")
    for t in record["targets"]:
        console.print(f"[bold]{t['target']}[/] ({t['title']}): {t['verdict']}")
        for reason in t["reasons"]:
            console.print(f"  {reason}", highlight=False, soft_wrap=True)
