"""A small harness for benchmarks: collect values per case, print median/p95, write JSON.

Every benchmark reports the **median and the 95th percentile with n**, never
one number, and stores the raw values with the date (UTC), the machine, the
Python/NumPy versions and the command line in ``benchmarks/results/<name>.json``.

Examples
--------
Time a function on a few cases (each case is called ``warmup`` times untimed,
then ``repeat`` times timed; if the function returns a dict of numbers, those
are recorded too)::

    from benchmarks.runner import run_benchmark
    from ecgdigitize.synth import render_sheet, simulate_record

    rec = simulate_record()
    table = run_benchmark("render", {"3x4+1": "3x4+1", "12x1": "12x1"},
                          lambda layout: render_sheet(rec, layout), repeat=5)
    table.print()
    table.save()          # -> benchmarks/results/render.json

Or fill a table by hand (any metrics, any number of rows per case)::

    from benchmarks.runner import Table, timer

    table = Table("digitize_synth")
    for name, sheet in cases:
        with timer() as t:
            result = digitize(sheet.image)
        table.add(name, time_s=t.elapsed_s, snr_db=score(result))
    table.print()
    table.save()

Run benchmark scripts as modules from the repository root, e.g.
``python -m benchmarks.bench_synth``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RESULTS_DIR", "Table", "Timer", "machine_info", "run_benchmark", "summarize", "timer"]

#: Where :meth:`Table.save` writes by default.
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Timer:
    """Elapsed wall time of a ``with timer()`` block.

    Attributes
    ----------
    elapsed_s : float
        Wall time, s; NaN until the block ends.

    Examples
    --------
    >>> Timer().elapsed_s
    nan
    """

    elapsed_s: float = float("nan")


@contextmanager
def timer() -> Iterator[Timer]:
    """Measure the wall time of a block with :func:`time.perf_counter`.

    Yields
    ------
    Timer
        Its ``elapsed_s`` is set when the block exits (also on an exception).

    Examples
    --------
    >>> with timer() as t:
    ...     _ = sum(range(1000))
    >>> t.elapsed_s >= 0
    True
    """
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.elapsed_s = time.perf_counter() - start


def summarize(values: Iterable[float]) -> dict[str, float]:
    """n, median, p95, p5, mean, min and max of the finite values (inf/NaN counted apart).

    Parameters
    ----------
    values : iterable of float
        Measurements, in any unit (the summary keeps it).

    Returns
    -------
    dict of str to float
        ``n`` (all values), ``n_nonfinite``, and ``median``, ``p95``, ``p5``,
        ``mean``, ``min``, ``max`` of the finite ones (NaN when there are none).

    Examples
    --------
    >>> s = summarize(range(1, 101))
    >>> s["n"], s["median"], round(s["p95"], 2)
    (100, 50.5, 95.05)
    """
    arr = np.asarray(list(values), dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    out: dict[str, float] = {"n": int(arr.size), "n_nonfinite": int(arr.size - finite.size)}
    if finite.size == 0:
        return out | {k: math.nan for k in ("median", "p95", "p5", "mean", "min", "max")}
    return out | {"median": float(np.median(finite)), "p95": float(np.percentile(finite, 95)),
                  "p5": float(np.percentile(finite, 5)), "mean": float(np.mean(finite)),
                  "min": float(np.min(finite)), "max": float(np.max(finite))}


def machine_info() -> dict[str, Any]:
    """Platform, CPU count, Python and NumPy versions, and a one-line description.

    Returns
    -------
    dict of str to Any
        ``description`` (e.g. ``"2-core CPU, no GPU"``), ``platform``,
        ``machine``, ``processor``, ``cpu_count``, ``python``, ``numpy``.

    Examples
    --------
    >>> info = machine_info()
    >>> info["cpu_count"] > 0, "CPU" in info["description"]
    (True, True)
    """
    cpus = os.cpu_count() or 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    has_gpu = os.path.exists("/dev/nvidia0") if visible is None else visible not in ("", "-1")
    gpu = "GPU" if has_gpu else "no GPU"
    return {"description": f"{cpus}-core CPU, {gpu}", "platform": platform.platform(),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": cpus, "python": platform.python_version(), "numpy": np.__version__}


@dataclass
class Table:
    """Rows of ``(case, {metric: value})`` with median/p95 summaries.

    Parameters
    ----------
    name : str
        Benchmark name; also the JSON file stem.
    notes : str, optional
        Free text saved with the results (what was measured, settings...).

    Attributes
    ----------
    rows : list of dict
        One dict per measurement: ``case`` plus the metric values.

    Examples
    --------
    >>> t = Table("demo")
    >>> for ms in (10.0, 12.0, 11.0):
    ...     t.add("sheet", time_s=ms / 1000)
    >>> round(t.summary()["time_s"]["median"], 3)
    0.011
    """

    name: str
    notes: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: str, **values: float) -> None:
        """Record one measurement of ``case`` (metric names as keywords)."""
        self.rows.append({"case": str(case), **{k: _number(v) for k, v in values.items()}})

    @property
    def metrics(self) -> list[str]:
        """Metric names in order of first appearance."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(k for k in row if k != "case"))
        return list(seen)

    def values(self, metric: str, case: str | None = None) -> list[float]:
        """All recorded values of ``metric`` (optionally of one case)."""
        return [r[metric] for r in self.rows
                if metric in r and (case is None or r["case"] == case)]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: :func:`summarize` over every row."""
        return {m: summarize(self.values(m)) for m in self.metrics}

    def case_summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per case, per metric: :func:`summarize` over that case's rows."""
        cases = list(dict.fromkeys(r["case"] for r in self.rows))
        return {c: {m: summarize(self.values(m, c)) for m in self.metrics if self.values(m, c)}
                for c in cases}

    def format(self, *, per_case: bool = True) -> str:
        """The summary as a Markdown table (and one per case when several rows share a case)."""
        info = machine_info()
        lines = [f"## {self.name}", "",
                 f"{_utc_now()}, {info['description']} ({info['platform']}), "
                 f"Python {info['python']}, NumPy {info['numpy']}", f"command: `{command_line()}`",
                 "", "| metric | n | median | p95 | min | max |", "|---|---|---|---|---|---|"]
        for m, s in self.summary().items():
            lines.append(f"| {m} | {s['n']} | {_fmt(s['median'])} | {_fmt(s['p95'])} "
                         f"| {_fmt(s['min'])} | {_fmt(s['max'])} |")
        by_case = self.case_summary()
        if per_case and 1 < len(by_case) <= 40:
            metrics = self.metrics
            lines += ["", "| case | " + " | ".join(f"{m} median (p95)" for m in metrics) + " |",
                      "|---|" + "---|" * len(metrics)]
            for case, per in by_case.items():
                cells = [f"{_fmt(per[m]['median'])} ({_fmt(per[m]['p95'])})" if m in per else ""
                         for m in metrics]
                lines.append(f"| {case} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def print(self, *, per_case: bool = True) -> None:
        """Write :meth:`format` to stdout."""
        sys.stdout.write(self.format(per_case=per_case) + "\n")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready results: metadata, summaries and raw rows."""
        return {"name": self.name, "date_utc": _utc_now(), "machine": machine_info(),
                "command": command_line(), "notes": self.notes, "summary": self.summary(),
                "by_case": self.case_summary(), "rows": self.rows}

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON (default ``benchmarks/results/<name>.json``).

        Non-finite numbers are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``.
        """
        out = Path(path) if path is not None else RESULTS_DIR / f"{self.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_finite(self.to_dict()), indent=1, default=_json_default))
        return out


def run_benchmark(name: str, cases: Mapping[str, Any] | Iterable[tuple[str, Any]],
                  func: Callable[[Any], Any], *, repeat: int = 5, warmup: int = 1,
                  notes: str = "") -> Table:
    """Time ``func(case)`` for every case and collect what it returns.

    Parameters
    ----------
    name : str
        Benchmark name (JSON file stem).
    cases : mapping or iterable of (name, value)
        The inputs; ``func`` receives the value.
    func : callable
        The code under test. If it returns a mapping, its numeric values are
        recorded next to ``time_s``.
    repeat : int, default 5
        Timed calls per case.
    warmup : int, default 1
        Untimed calls per case before timing (imports, caches).
    notes : str, optional
        Saved with the results.

    Returns
    -------
    Table
        One row per timed call: ``time_s`` plus the returned metrics.

    Examples
    --------
    >>> t = run_benchmark("demo", {"small": 10, "big": 1000}, lambda n: {"total": sum(range(n))},
    ...                   repeat=3, warmup=0)
    >>> len(t.rows), t.values("total", "small")
    (6, [45.0, 45.0, 45.0])
    """
    table = Table(name, notes=notes)
    items = cases.items() if isinstance(cases, Mapping) else cases
    for case, value in items:
        for _ in range(warmup):
            func(value)
        for _ in range(repeat):
            with timer() as t:
                out = func(value)
            extra = {k: v for k, v in out.items() if _is_number(v)} if isinstance(out, Mapping) else {}
            table.add(case, time_s=t.elapsed_s, **extra)
    return table


def command_line() -> str:
    """The command that is running, as a shell string (interpreter shown as ``python``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and "python" in Path(argv[0]).name:
        argv[0] = "python"
    return shlex.join(argv)


def load_fold_records(path: Path) -> dict[str, Any]:
    """A resumable study's results file, or a new one (this machine, this command, no runs).

    The file holds ``{"machine", "command", "runs": [one record per fit]}``; studies append
    a record as each fit ends (:func:`save_fold_records`), so an interrupted run resumes.
    """
    if path.is_file():
        return dict(json.loads(path.read_text()))
    return {"machine": machine_info(), "command": command_line(), "runs": []}


def save_fold_records(path: Path, res: dict[str, Any], *, indent: int | None = 1) -> None:
    """Write ``res`` to ``path`` atomically (a killed run leaves the previous file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=indent))
    os.replace(tmp, path)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _number(v: Any) -> float:
    return float(v)


def _fmt(x: float) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    ax = abs(x)
    if ax == 0 or 0.01 <= ax < 10_000:
        return f"{x:.3g}" if ax < 1 else f"{x:.4g}"
    return f"{x:.3e}"


def _finite(o: Any) -> Any:
    """Replace inf/NaN floats by the strings "inf", "-inf", "nan" (strict JSON)."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 90) -> Path:
    """Lay out a Matplotlib figure, write it to ``path`` (folders made) and say so."""
    out = Path(path)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    print(f"wrote {out}")
    return out
