"""Speed of the synthetic sheet renderer (``ecgdigitize.synth.render_sheet``).

Renders a simulated 10 s, 500 Hz record in every layout at 200 dpi (letter
page, 2200x1700 px), in the reference style (2213x1572 px) and with the photo
and scan degradations, and reports median/p95 wall time per case.

Run: ``python -m benchmarks.bench_synth [--repeat 7]`` (about 30 s on 2 cores);
writes ``benchmarks/results/bench_synth.json``.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.runner import run_benchmark
from ecgdigitize.synth import LAYOUTS, Degradation, SheetStyle, render_sheet, simulate_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed renders per case")
    args = parser.parse_args(argv)
    record = simulate_record(seed=0)
    cases = {f"{layout} default 200dpi": (layout, SheetStyle(), None) for layout in LAYOUTS}
    cases["3x4+1 reference"] = ("3x4+1", SheetStyle.reference(), None)
    cases["3x4+1 default 300dpi"] = ("3x4+1", SheetStyle(dpi=300), None)
    cases["3x4+1 default 100dpi"] = ("3x4+1", SheetStyle(dpi=100), None)
    cases["3x4+1 reference + photo"] = ("3x4+1", SheetStyle.reference(), Degradation.photo())
    cases["3x4+1 reference + scan"] = ("3x4+1", SheetStyle.reference(), Degradation.scan())

    def render(case: tuple) -> dict[str, float]:
        layout, style, degradation = case
        sheet = render_sheet(record, layout, style, degradation, seed=0)
        h, w = sheet.image.shape[:2]
        return {"megapixels": h * w / 1e6}

    table = run_benchmark("bench_synth", cases, render, repeat=args.repeat, warmup=1,
                          notes="render_sheet wall time per sheet (s), simulated 10 s record")
    table.print()
    path = table.save()
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
