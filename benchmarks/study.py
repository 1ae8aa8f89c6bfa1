"""The reproducible study: rerun every benchmark and regenerate every table and figure of the docs.

One command reruns, in order, the digitization benchmarks (rendered sheets
with truth, the real reference sheets, the front stages, the renderer),
batch throughput and the interrupted-batch scenario, the header shortcut,
the classical-feature and CNN comparisons and CNN speed, then the example
scripts that draw the documentation's figures, and finally renders the
runner's JSON results without a table of their own into ``docs/results/``.
Each step is the ``main()`` of an existing script (``benchmarks/*.py``,
``examples/*.py``), called in this process; a step whose script is absent is
skipped, one that fails is reported and the study goes on.

``--quick`` runs every step on a few inputs (minutes instead of hours): a
smoke test of the whole chain. Its outputs are moved to ``out/study-quick/``
and the files it touched under ``docs/`` and ``benchmarks/results/`` are
restored from a copy taken at its start, so a quick run never replaces the
real tables. (Do not run it while another benchmark writes its results: a
file written meanwhile would be restored too.)

Run from the repository root (2-core CPU, no GPU: the full study takes hours,
mostly the CNN cross-validation)::

    nice -n 10 .venv/bin/python -m benchmarks.study            # everything
    nice -n 10 .venv/bin/python -m benchmarks.study --quick    # smoke run
    .venv/bin/python -m benchmarks.study --only tables         # JSON -> Markdown only
    .venv/bin/python -m benchmarks.study --list                # the steps

Writes ``benchmarks/results/study.json`` (``study-partial.json`` after
``--only``/``--skip``): every step with its command, status, wall time and
the files it wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import json
import shutil
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.runner import machine_info

ROOT = Path(__file__).resolve().parents[1]
#: Folders whose files the steps write; watched for the summary, restored after --quick.
OUTPUT_DIRS = (ROOT / "docs" / "results", ROOT / "benchmarks" / "results", ROOT / "docs" / "img")
QUICK_OUT = ROOT / "out" / "study-quick"
#: Runner JSON results (``benchmarks.runner.Table``) rendered into docs/results/<name>.md.
JSON_TABLES = ("bench_digitize", "bench_digitize_truth_panels", "bench_reference_sheets",
               "bench_front_stages", "bench_generality", "bench_synth", "bench_cnn",
               "bench_cnn_signal", "feature_extraction")


@dataclass(frozen=True)
class Step:
    """One step of the study: a script's ``main()`` with its full and quick arguments.

    Attributes
    ----------
    name : str
        Short name (``--only``/``--skip`` use it).
    module : str
        Module whose ``main`` is called (``benchmarks.bench_digitize``...).
    args, quick_args : tuple of str
        Command-line arguments of the full and the ``--quick`` run.
    what : str
        What the step measures or draws, for the summary.
    """

    name: str
    module: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    what: str = ""


STEPS: tuple[Step, ...] = (
    Step("digitize", "benchmarks.bench_digitize", (), ("--n", "3", "--variants", "clean,degraded"),
         "SNR and speed of digitize() on renders of the 51 records"),
    Step("digitize_truth_panels", "benchmarks.bench_digitize",
         ("--truth-panels",), ("--truth-panels", "--n", "3", "--variants", "clean"),
         "trace + calibration stages alone (true panels)"),
    Step("reference_sheets", "benchmarks.bench_reference_sheets", (),
         ("--limit", "5", "--overlays", "1"), "digitizer self-consistency on the real sheets"),
    Step("front_stages", "benchmarks.bench_front_stages", (),
         ("--records", "1", "--reference-limit", "5"), "grid, geometry, layout accuracy"),
    Step("generality", "benchmarks.bench_generality", (), ("--cases", "4"),
         "stress matrix: layouts, speeds, gains, dpi, grids, perturbations"),
    Step("synth", "benchmarks.bench_synth", (), ("--repeat", "1"), "renderer speed"),
    Step("batch", "benchmarks.bench_batch", (), ("--n", "6"), "batch throughput, local vs Dask"),
    Step("batch_scenario", "benchmarks.batch_scenario", (), ("--n", "12"),
         "interrupted, resumed batch with hostile files"),
    Step("header_shortcut", "benchmarks.header_shortcut", (), (),
         "accuracy from the printed ID alone"),
    Step("near_duplicates", "benchmarks.near_duplicates", (), ("--limit", "12", "--controls", "1"),
         "the same ECG saved twice in different bytes: signal search over all sheets"),
    Step("features", "benchmarks.compare_features", (), ("--limit", "4", "--folds", "2"),
         "feature models, grouped vs leaky CV"),
    Step("features_fusion", "benchmarks.feature_fusion_ablation", (),
         ("--limit", "4", "--seeds", "1", "--folds", "2"),
         "feature models with limb-lead fusion on and off"),
    Step("cnn", "benchmarks.compare_cnn", (), ("--report",), "CNN models, grouped vs leaky CV"),
    Step("signal_cnn", "benchmarks.signal_cnn_study", (), ("--report",),
         "1-D CNN on the digitized leads vs the feature model (3 fold seeds), and both fused"),
    Step("signal_cnn_variants", "benchmarks.signal_cnn_variants", (), ("--report",),
         "1-D CNN: other seeds, seed ensembles, test-time shifts, ablations (seed-0 folds)"),
    Step("signal_cnn_screen", "benchmarks.signal_cnn_screen", (), ("--report",),
         "1-D CNN: training recipes (mixup, 250 Hz, stretch, ...) on 15 folds"),
    Step("id_grouped", "benchmarks.id_grouped", (), ("--report",),
         "1-D CNN and feature model with the sheets grouped by printed ID (3 fold seeds)"),
    Step("hard_sheets", "benchmarks.hard_sheets", (), (),
         "the sheets nearly every 1-D CNN gets wrong, and the feature model on them"),
    Step("cnn_summary", "benchmarks.cnn_summary", (), (),
         "every CNN measured (CPU and GPU) and the best feature model in one table"),
    Step("cnn_speed", "benchmarks.bench_cnn", (),
         ("--sheets", "8", "--repeat", "2", "--skip-training"), "CNN training/inference speed"),
    Step("cnn_speed_signal", "benchmarks.bench_cnn", ("--signal",),
         ("--signal", "--sheets", "32", "--repeat", "2"),
         "1-D CNN: Keras vs TFLite inference speed and agreement"),
    Step("fig_stages", "examples.stages", (), (), "docs figures: the digitization stages"),
    Step("fig_overlay", "examples.digitize_overlay", (), (), "docs figure: digitize + overlay"),
    Step("fig_batch", "examples.batch_to_wfdb", ("--fresh",), ("--fresh",),
         "docs figure: batch to WFDB"),
    Step("fig_features", "examples.feature_table", (), (), "docs figure: feature table"),
    Step("fig_compare", "examples.compare_predictors", ("--fresh",),
         ("--fresh", "--per-class", "4", "--folds", "2"),
         "docs figure: predictors on a tiny rendered set"),
    Step("fig_tflite", "examples.tflite_inference", (), ("--epochs", "2"),
         "docs figure: TFLite inference"),
    Step("tables", "benchmarks.study", ("--only", "tables"), ("--only", "tables"),
         "runner JSON -> docs/results/*.md"),
)


@dataclass
class Outcome:
    """What one step did (a row of the summary and of ``study.json``)."""

    step: str
    command: str
    status: str = "skipped"
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    error: str = ""


def _snapshot() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for d in OUTPUT_DIRS if d.is_dir()
            for p in d.rglob("*") if p.is_file()}


def _changed(before: dict[Path, int]) -> list[Path]:
    return sorted(p for p, m in _snapshot().items() if before.get(p) != m)


@contextlib.contextmanager
def _argv(argv: Sequence[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        yield
    finally:
        sys.argv = saved


def call_main(module: str, argv: Sequence[str]) -> int:
    """Call ``module.main`` with ``argv`` (as a list, or as ``sys.argv`` when it takes none).

    Returns
    -------
    int
        Its exit status (``None`` counts as 0).
    """
    main = importlib.import_module(module).main
    try:
        with _argv(argv):
            takes_argv = bool(inspect.signature(main).parameters)
            rc = main(list(argv)) if takes_argv else main()
    except SystemExit as exc:  # argparse errors, sys.exit() inside main
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return int(rc or 0)


def run_step(step: Step, quick: bool) -> Outcome:
    """Run one step, time it, and list the files it wrote."""
    argv = step.quick_args if quick else step.args
    out = Outcome(step.name, " ".join(["python -m", step.module, *argv]))
    if importlib.util.find_spec(step.module) is None:
        out.error = "script not present"
        return out
    before = _snapshot()
    t0 = time.perf_counter()
    try:
        if step.module == "benchmarks.study":  # the last step: tables from the JSON results
            write_json_tables()
            rc = 0
        else:
            rc = call_main(step.module, argv)
        out.status = "ok" if rc == 0 else f"exit {rc}"
    except Exception as exc:  # a failed benchmark must not stop the study
        out.status = "failed"
        out.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    out.seconds = round(time.perf_counter() - t0, 1)
    out.files = [str(p.relative_to(ROOT)) for p in _changed(before)]
    return out


def json_table_markdown(data: dict[str, Any]) -> str:
    """A runner result (``Table.to_dict()`` JSON) as a Markdown section: provenance, summary, cases.

    Parameters
    ----------
    data : dict
        The JSON object: ``name``, ``date_utc``, ``machine``, ``command``, ``summary``,
        optionally ``notes`` and ``by_case``.

    Returns
    -------
    str
        Markdown: date, machine and command, then median/p95 tables.

    Examples
    --------
    >>> md = json_table_markdown({"name": "x", "date_utc": "2026-01-01 00:00 UTC",
    ...     "machine": {"description": "2-core CPU, no GPU"}, "command": "python -m x",
    ...     "summary": {"time_s": {"n": 3, "median": 1.0, "p95": 2.0, "min": 0.5, "max": 2.1}}})
    >>> "| time_s | 3 | 1 | 2 | 0.5 | 2.1 |" in md
    True
    """
    machine = data.get("machine", {})
    desc = machine.get("description", "") if isinstance(machine, dict) else str(machine)
    plat = machine.get("platform", "") if isinstance(machine, dict) else ""
    lines = [f"**{data.get('name', '')}**: {data.get('notes', '')}".rstrip(": "), "",
             f"- date: {data.get('date_utc', '?')}",
             f"- machine: {desc}" + (f" ({plat})" if plat else ""),
             f"- command: `{data.get('command', '?')}`", "",
             "| metric | n | median | p95 | min | max |", "|---|---|---|---|---|---|"]
    for metric, s in data.get("summary", {}).items():
        lines.append(f"| {metric} | {s.get('n', '')} | " + " | ".join(
            _fmt(s.get(k)) for k in ("median", "p95", "min", "max")) + " |")
    cases = data.get("by_case") or {}
    if 1 < len(cases) <= 60:
        metrics = list(dict.fromkeys(m for per in cases.values() for m in per))
        lines += ["", "Per case, median (p95):", "",
                  "| case | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for case, per in cases.items():
            cells = [f"{_fmt(per[m].get('median'))} ({_fmt(per[m].get('p95'))})" if m in per
                     else "" for m in metrics]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value) if value is not None else ""
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:.4g}"


def write_json_tables(names: Sequence[str] = JSON_TABLES) -> list[Path]:
    """Render each runner JSON of ``benchmarks/results`` named in ``names`` to ``docs/results``.

    Parameters
    ----------
    names : sequence of str
        JSON stems to render (absent ones and JSON in another format are skipped).

    Returns
    -------
    list of Path
        The Markdown files written.
    """
    written = []
    for name in names:
        src = ROOT / "benchmarks" / "results" / f"{name}.json"
        if not src.is_file():
            continue
        data = json.loads(src.read_text("utf-8"))
        if not isinstance(data, dict) or "summary" not in data or "command" not in data:
            continue
        dest = ROOT / "docs" / "results" / f"{name}.md"
        dest.write_text(json_table_markdown(data), encoding="utf-8")
        written.append(dest)
    return written


def _restore_quick(touched: list[str], backup: Path) -> None:
    """Move the quick run's outputs to QUICK_OUT and put the previous files back."""
    for rel in touched:
        path, saved = ROOT / rel, backup / rel
        if path.is_file():
            (QUICK_OUT / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, QUICK_OUT / rel)
        if saved.is_file():
            shutil.copy2(saved, path)
        elif path.is_file():
            path.unlink()


def select(steps: Sequence[Step], only: str | None, skip: str | None) -> list[Step]:
    """The steps named by ``--only`` (all by default) minus those named by ``--skip``."""
    keep = set(only.split(",")) if only else {s.name for s in steps}
    drop = set(skip.split(",")) if skip else set()
    unknown = (keep | drop) - {s.name for s in steps}
    if unknown:
        raise SystemExit(f"unknown step(s) {sorted(unknown)}; see --list")
    return [s for s in steps if s.name in keep and s.name not in drop]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="every step on a few inputs (minutes)")
    p.add_argument("--only", help="comma-separated step names")
    p.add_argument("--skip", help="comma-separated step names")
    p.add_argument("--list", action="store_true", help="print the steps and exit")
    args = p.parse_args(argv)
    steps = select(STEPS, args.only, args.skip)
    if args.list:
        for s in STEPS:
            print(f"{s.name:17s} python -m {s.module} {' '.join(s.args)}   # {s.what}")
        return 0
    backup = QUICK_OUT.with_name("study-quick-backup")
    if args.quick:
        shutil.rmtree(backup, ignore_errors=True)
        for d in OUTPUT_DIRS:
            if d.is_dir():
                shutil.copytree(d, backup / d.relative_to(ROOT), dirs_exist_ok=True)
    t0 = time.perf_counter()
    outcomes = []
    for i, step in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {step.name}: {step.what}", flush=True)
        outcomes.append(run_step(step, args.quick))
        o = outcomes[-1]
        print(f"=== {step.name}: {o.status} in {o.seconds:.1f} s, {len(o.files)} files written"
              + (f" ({o.error})" if o.error else ""), flush=True)
    total = time.perf_counter() - t0
    report = _report(outcomes, total, args.quick)
    print("\n" + report)
    stem = "study" if steps == list(STEPS) else "study-partial"  # a full run is the record
    dest = (QUICK_OUT if args.quick else ROOT / "benchmarks" / "results") / f"{stem}.json"
    if args.quick:
        _restore_quick(sorted({f for o in outcomes for f in o.files}), backup)
        shutil.rmtree(backup, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
        "command": " ".join(["python -m benchmarks.study", *(argv or sys.argv[1:])]),
        "quick": args.quick, "total_s": round(total, 1),
        "steps": [asdict(o) for o in outcomes]}, indent=1), encoding="utf-8")
    print(f"wrote {dest}" + (f"; quick outputs in {QUICK_OUT}, docs restored"
                             if args.quick else ""))
    return 0 if all(o.status in ("ok", "skipped") for o in outcomes) else 1


def _report(outcomes: Sequence[Outcome], total_s: float, quick: bool) -> str:
    lines = [f"Study {'(quick) ' if quick else ''}finished in {total_s / 60:.1f} min on "
             f"{machine_info()['description']}", "",
             "| step | status | time s | files written |", "|---|---|---|---|"]
    for o in outcomes:
        files = ", ".join(Path(f).name for f in o.files[:4]) + (
            f" +{len(o.files) - 4}" if len(o.files) > 4 else "")
        lines.append(f"| {o.step} | {o.status}{' (' + o.error + ')' if o.error else ''} "
                     f"| {o.seconds:.1f} | {files} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
