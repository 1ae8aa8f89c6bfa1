"""Scripted scenario: an archive with broken files, a run interrupted twice, then resumed.

A folder of ``--n`` rendered sheets (default 190, from the cache of
:mod:`benchmarks.bench_batch`) plus 10 hostile files (200 inputs) is converted with
``ecgdigitize batch --jobs 2``. The run is stopped with SIGINT once a third of
the files are done, restarted and killed with SIGKILL at two thirds, then
restarted to completion. Checked at the end: exit status non-zero, one WFDB
record per readable sheet, each hostile file listed as failed with its reason,
no duplicate, partial or temporary file.

Run: ``python -m benchmarks.batch_scenario [--n 190] [--jobs 2]``; writes
``benchmarks/results/batch_scenario.json`` and a section of ``docs/results/batch.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from benchmarks.bench_batch import CACHE, ROOT, make_sheets, update_section
from benchmarks.runner import Table, command_line, machine_info
from ecgdigitize.convert import output_stem


def hostile_files(folder: Path, n_sheets: int) -> list[Path]:
    """Write the 10 hostile files into ``folder``, named to sort among ``n_sheets`` sheets."""
    folder.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)).save(
        buf, "PNG")
    png = buf.getvalue()
    white = io.BytesIO()
    Image.new("RGB", (1100, 850), "white").save(white, "PNG")
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1)).save(tiny, "PNG")
    empty_pdf = io.BytesIO()
    pdfium.PdfDocument.new().save(empty_pdf)  # well-formed, zero pages
    files = {
        "h01_empty.png": b"",
        "h02_truncated.png": png[: len(png) // 4],
        "h03_truncated.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 300,
        "h04_random.jpg": np.random.default_rng(1).bytes(30_000),
        "h05_text.png": b"not an image\n" * 100,
        "h06_dot.png": tiny.getvalue(),
        "h07_bomb.png": bomb,
        "h08_blank.png": white.getvalue(),
        "h09_empty.pdf": empty_pdf.getvalue(),
        "h10_corrupt.pdf": b"%PDF-1.7\n" + b"garbage " * 50,
    }
    paths = []
    for i, (name, data) in enumerate(files.items()):
        paths.append(folder / f"sheet{(i + 1) * n_sheets // 11:04d}_{name}")
        paths[-1].write_bytes(data)
    return paths


def _cmd(folder: Path, out: Path, jobs: int, digitizer: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "ecgdigitize", "batch", str(folder), "-o", str(out),
           "--format", "wfdb", "--jobs", str(jobs), "-q"]
    return cmd + (["--digitizer", digitizer] if digitizer else [])


def _lines(out: Path) -> int:
    manifest = out / "manifest.jsonl"
    return len(manifest.read_text().splitlines()) if manifest.exists() else 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_until(cmd: list[str], out: Path, n_lines: int, sig: signal.Signals) -> dict[str, Any]:
    """Start the batch, send ``sig`` once the manifest has ``n_lines`` lines."""
    t0 = time.perf_counter()
    # a shell starts background jobs with SIGINT ignored, and children inherit that:
    # give the batch the default disposition so that it sees the Ctrl-C sent below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    while _lines(out) < n_lines and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return {"signal": sig.name, "exit": proc.returncode, "lines": _lines(out),
            "wall_s": time.perf_counter() - t0, "tmp_left": len(list(out.glob(".ecgdigitize-tmp-*"))),
            "stderr_tail": err.strip().splitlines()[-2:]}


def check_final(out: Path, sheets: list[Path], hostile: list[Path]) -> dict[str, Any]:
    """Latest manifest state, and the invariants on the output folder."""
    latest: dict[str, dict[str, Any]] = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["status"] != "skipped":
            latest[e["input"]] = e
    ok = {k for k, e in latest.items() if e["status"] == "ok"}
    heads = sorted(p.stem for p in out.glob("*.hea"))
    return {
        "n_ok": len(ok), "n_failed": len(latest) - len(ok),
        "failures": {Path(k).name: f"{e['error_type']}: {e['error_message']}"
                     for k, e in sorted(latest.items()) if e["status"] == "failed"},
        "all_sheets_ok": {str(p.resolve()) for p in sheets} <= ok,
        "hostile_failed": sorted(Path(k).name for k in set(latest) - ok)
        == sorted(p.name for p in hostile),
        "records_match_ok_inputs": heads == sorted(output_stem(k) for k in ok),
        "dat_per_hea": sorted(p.stem for p in out.glob("*.dat")) == heads,
        "tmp_left": len(list(out.glob(".ecgdigitize-tmp-*"))),
        "other_files": sorted(p.name for p in out.iterdir()
                              if p.suffix not in (".hea", ".dat") and p.name != "manifest.jsonl"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=190,
                        help="number of sheets (190: with the 10 hostile files, 200 inputs)")
    parser.add_argument("--dpi", type=float, default=100.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--digitizer", default=None, help="MODULE:FUNCTION (default the real one)")
    args = parser.parse_args(argv)
    folder = CACHE / f"scenario_{args.n}"
    shutil.rmtree(folder, ignore_errors=True)
    sheets_src = make_sheets(CACHE / f"sheets_{args.dpi:g}dpi", args.n, args.dpi)
    folder.mkdir(parents=True)
    sheets = [Path(shutil.copy(p, folder / p.name)) for p in sheets_src]
    hostile = hostile_files(folder, len(sheets))
    out = CACHE / "scenario_out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = _cmd(folder, out, args.jobs, args.digitizer)
    total = len(sheets) + len(hostile)
    steps = [run_until(cmd, out, total // 3, signal.SIGINT),
             run_until(cmd, out, 2 * total // 3, signal.SIGKILL)]
    t0 = time.perf_counter()
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    steps.append({"signal": None, "exit": final.returncode, "lines": _lines(out),
                  "wall_s": time.perf_counter() - t0,
                  "stderr_tail": final.stderr.strip().splitlines()[-1:]})
    result = check_final(out, sheets, hostile) | {"steps": steps, "n_inputs": total}
    # the interruptions must really have cut the run short (Ctrl-C: exit 130)
    interrupted = (steps[0]["exit"] == 130 and steps[1]["exit"] == -signal.SIGKILL
                   and steps[0]["lines"] < total and steps[1]["lines"] < 2 * total)
    result["interruptions_landed"] = interrupted
    passed = (interrupted and final.returncode != 0 and result["hostile_failed"]
              and result["all_sheets_ok"]
              and result["records_match_ok_inputs"] and result["dat_per_hea"]
              and not result["tmp_left"] and not result["other_files"])
    result["passed"] = bool(passed)
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    table = Table("batch_scenario", notes=f"{len(sheets)} sheets + 10 hostile files, SIGINT, "
                                          "SIGKILL, resume")
    for i, st in enumerate(steps):
        table.add(f"step {i + 1} ({st['signal'] or 'to the end'})", wall_s=st["wall_s"],
                  manifest_lines=st["lines"], exit_status=st["exit"])
    path = table.save()
    path.write_text(json.dumps(table.to_dict() | {"result": result}, indent=1, default=str))
    write_section(result, args)
    return 0 if passed else 1


def write_section(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The scenario section of ``docs/results/batch.md``."""
    s = result["steps"]
    lines = [
        "### Interrupted run with hostile files", "",
        f"{args.n} rendered sheets + 10 hostile files, `ecgdigitize batch --jobs {args.jobs}`; "
        f"{machine_info()['description']}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"command: `{command_line()}`.", "",
        "| step | signal | exit status | manifest lines | wall s | temp folders left |",
        "|---|---|---|---|---|---|",
    ]
    for i, st in enumerate(s):
        lines.append(f"| {i + 1} | {st['signal'] or 'none (to the end)'} | {st['exit']} | "
                     f"{st['lines']} | {st['wall_s']:.1f} | {st.get('tmp_left', 0)} |")
    lines += ["", f"Final: **{result['n_ok']} records written, {result['n_failed']} failed** "
              f"(exit status {s[-1]['exit']}); one .hea/.dat pair per converted input: "
              f"{result['records_match_ok_inputs'] and result['dat_per_hea']}; temporary "
              f"files left: {result['tmp_left']}; scenario passed: {result['passed']}.", "",
              "| failed file | reason (from the manifest) |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result["failures"].items()]
    update_section(ROOT / "docs" / "results" / "batch.md", "scenario", "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
