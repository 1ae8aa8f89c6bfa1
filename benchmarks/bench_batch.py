"""Throughput of ``ecgdigitize batch``: 1 worker, 2 local workers, a 2-worker Dask LocalCluster.

Renders ``--n`` synthetic sheets (default 200: simulated records, the five
layouts, half of them mildly degraded like a scan; cached in
``cache/bench_batch/``), then converts them with the real command line, each
configuration into a fresh output folder, and reads the manifest: sheets/s,
speed-up over one worker, per-sheet time (median, p95) and the peak resident
memory of each worker process (``getrusage`` maxrss, as the manifest records).

Run: ``python -m benchmarks.bench_batch [--n 200] [--dpi 100]`` from the
repository root; writes ``benchmarks/results/bench_batch.json`` and
``docs/results/batch.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import Table, command_line, machine_info, summarize

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "cache" / "bench_batch"
CONFIGS = (("1 worker (local)", 1, "local"), ("2 workers (processes)", 2, "processes"),
           ("Dask LocalCluster, 2 workers", 2, "dask"))


def make_sheets(folder: Path, n: int, dpi: float) -> list[Path]:
    """Render ``n`` sheets into ``folder`` (kept between runs)."""
    from PIL import Image

    from ecgdigitize.synth import LAYOUTS, Degradation, SheetStyle, render_sheet, simulate_record

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"sheet{i:04d}.png" for i in range(n)]
    records: dict[int, Any] = {}
    for i, path in enumerate(paths):
        if path.exists():
            continue
        seed = i % 20
        if seed not in records:
            records[seed] = simulate_record(seed=seed, heart_rate=55 + 2 * seed)
        deg = Degradation(rotation_deg=float(np.random.default_rng(i).uniform(-2, 2)),
                          gaussian_noise_std=3.0) if i % 2 else None
        sheet = render_sheet(records[seed], LAYOUTS[i % len(LAYOUTS)], SheetStyle(dpi=dpi),
                             deg, seed=i)
        Image.fromarray(sheet.image).save(path)
    return paths


def run_batch(folder: Path, out: Path, jobs: int, scheduler: str,
              digitizer: str | None) -> tuple[float, list[dict[str, Any]], str]:
    """Run the CLI once into a fresh ``out``; return wall time, manifest entries, stderr."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "ecgdigitize", "batch", str(folder), "-o", str(out),
           "--format", "wfdb", "--jobs", str(jobs), "--scheduler", scheduler, "-q"]
    if digitizer:
        cmd += ["--digitizer", digitizer]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    entries = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return wall, entries, res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of sheets (200)")
    parser.add_argument("--dpi", type=float, default=100.0, help="sheet resolution (100)")
    parser.add_argument("--digitizer", default=None, help="MODULE:FUNCTION (default the real one)")
    parser.add_argument("--configs", default="0,1,2", help="which configurations (0,1,2)")
    args = parser.parse_args(argv)
    folder = CACHE / f"sheets_{args.n}_{args.dpi:g}dpi"
    paths = make_sheets(folder, args.n, args.dpi)
    table = Table("bench_batch", notes=f"ecgdigitize batch on {len(paths)} rendered sheets at "
                                       f"{args.dpi:g} dpi, WFDB output")
    runs = []
    for idx in (int(c) for c in args.configs.split(",")):
        name, jobs, scheduler = CONFIGS[idx]
        load_before = _load()
        wall, entries, last = run_batch(folder, CACHE / "out", jobs, scheduler, args.digitizer)
        per_worker: dict[str, float] = {}
        for e in entries:
            w = e.get("worker") or "?"
            per_worker[w] = max(per_worker.get(w, 0.0), e.get("peak_rss_mb") or 0.0)
        n_done = sum(e["status"] in ("ok", "failed") for e in entries)
        for e in entries:
            table.add(name, sheet_time_s=e["time_s"])
        run = {"config": name, "jobs": jobs, "scheduler": scheduler, "wall_s": wall,
               "sheets_per_s": n_done / wall, "n_ok": sum(e["status"] == "ok" for e in entries),
               "n_failed": sum(e["status"] == "failed" for e in entries),
               "workers": len(per_worker), "max_worker_rss_mb": max(per_worker.values()),
               "worker_rss_mb": sorted(per_worker.values()),
               "sheet_time": summarize(e["time_s"] for e in entries),
               "load_before": load_before, "load_after": _load(), "summary_line": last}
        runs.append(run)
        sys.stdout.write(f"{name}: {wall:.1f} s, {run['sheets_per_s']:.2f} sheets/s, "
                         f"workers {run['worker_rss_mb']} MiB, load {load_before} -> "
                         f"{run['load_after']}; {last}\n")
    base = runs[0]["sheets_per_s"] if runs and runs[0]["jobs"] == 1 else float("nan")
    for run in runs:
        run["speedup"] = run["sheets_per_s"] / base
        table.add(f"{run['config']} [run]", wall_s=run["wall_s"],
                  sheets_per_s=run["sheets_per_s"], speedup=run["speedup"],
                  max_worker_rss_mb=run["max_worker_rss_mb"])
    table.print()
    data = table.to_dict() | {"runs": runs, "n_sheets": len(paths), "dpi": args.dpi}
    out = table.save()
    out.write_text(json.dumps(data, indent=1, default=str))
    write_markdown(ROOT / "docs" / "results" / "batch.md", runs, len(paths), args.dpi)
    sys.stdout.write(f"wrote {out} and docs/results/batch.md\n")
    return 0


def write_markdown(path: Path, runs: list[dict[str, Any]], n: int, dpi: float) -> None:
    """The results page: one row per configuration, with the machine and its load."""
    info = machine_info()
    lines = [
        "## Throughput", "",
        f"`ecgdigitize batch` on {n} rendered sheets ({dpi:g} dpi letter pages, five layouts, "
        "half with a small rotation and noise), WFDB output, each configuration into a fresh "
        "output folder.", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {info['description']} ({info['platform']}), Python {info['python']}; "
        "shared with other jobs: the load average (1, 5, 15 min) before and after each run "
        "is given",
        f"- command: `{command_line()}`", "",
        "| configuration | wall s | sheets/s | speed-up | per-sheet s median (p95) "
        "| peak MiB per worker | ok / failed | load before -> after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        st = r["sheet_time"]
        rss = ", ".join(f"{v:.0f}" for v in r["worker_rss_mb"])
        lines.append(f"| {r['config']} | {r['wall_s']:.1f} | {r['sheets_per_s']:.2f} | "
                     f"{r['speedup']:.2f}x | {st['median']:.2f} ({st['p95']:.2f}) | {rss} | "
                     f"{r['n_ok']} / {r['n_failed']} | {r['load_before']} -> "
                     f"{r['load_after']} |")
    update_section(path, "throughput", "\n".join(lines))


def update_section(path: Path, key: str, text: str) -> None:
    """Replace the ``key`` section of the results page (kept between HTML comment markers)."""
    begin, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    old = path.read_text() if path.exists() else "# Batch conversion\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


if __name__ == "__main__":
    raise SystemExit(main())
