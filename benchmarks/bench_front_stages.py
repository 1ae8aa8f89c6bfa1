"""Accuracy and speed of the digitizer's front stages: grid, geometry, layout.

Two parts:

- **renders**: sheets drawn by :func:`ecgdigitize.synth.render_sheet` from the
  shared WFDB records, every layout, four grid looks, clean and degraded
  (rotation up to +-10 deg, blur, noise, JPEG). Reported per case: px/mm
  error (%), rotation error (deg), layout name correct (0/1), largest panel
  edge error (px) and 0 mV line error (px, in the working frame), stage times.
- **reference**: every distinct sheet of ``data/ecg-images`` must give
  "3x4+1" with 13 panels and 4 pulses, at 25 mm/s (detected); stage times.

Run from the repository root::

    python -m benchmarks.bench_front_stages [--records 6] [--reference-limit 0]

(``--reference-limit 0`` = all 418 sheets). Writes
``benchmarks/results/bench_front_stages.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np

from benchmarks.runner import Table
from ecgdigitize.geometry import detect_page_orientation, rectify
from ecgdigitize.grid import detect_grid
from ecgdigitize.io import load_image
from ecgdigitize.layout import find_layout
from ecgdigitize.synth import Degradation, SheetStyle, apply_homography, load_record, render_sheet

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT.parent / "shared" / "data" / "ecg-records"
IMAGES = ROOT / "data" / "ecg-images"
LOOKS = {
    "red": SheetStyle(),
    "pink-dotted": SheetStyle(grid_colour="pink", grid_pattern="dotted", separators="full"),
    "grey": SheetStyle(grid_colour="grey", minor_alpha=0.4),
    "green-dotted": SheetStyle(grid_colour="green", grid_pattern="dotted"),
}
LAYOUTS = ("3x4", "3x4+1", "3x4+3", "6x2", "12x1")


def front(image: np.ndarray) -> tuple[dict[str, float], object, object, object]:
    """Run the three stages as the pipeline does; return stage times (wall) and results."""
    t0 = time.perf_counter()
    grid = detect_grid(image)
    t1 = time.perf_counter()
    orientation = detect_page_orientation(image, grid=grid)
    t2 = time.perf_counter()
    rect = rectify(image, orientation=orientation, grid=grid)
    t3 = time.perf_counter()
    layout = find_layout(rect.image, grid)
    t4 = time.perf_counter()
    times = {"grid_s": t1 - t0, "orientation_s": t2 - t1, "rectify_s": t3 - t2,
             "layout_s": t4 - t3, "total_s": t4 - t0}
    return times, grid, rect, (layout, orientation)


def bench_renders(table: Table, n_records: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = sorted(p.stem for p in RECORDS.glob("*.hea"))[:n_records]
    for i, name in enumerate(names):
        record = load_record(RECORDS / name)
        for look, style in LOOKS.items():
            layout = LAYOUTS[(i + len(look)) % len(LAYOUTS)]
            for degraded in (False, True):
                rot = float(rng.uniform(-10, 10)) if degraded else 0.0
                deg = (Degradation(rotation_deg=rot, blur_sigma_px=0.8, gaussian_noise_std=0.02,
                                   jpeg_quality=70) if degraded else Degradation())
                sheet = render_sheet(record, layout, style, deg, seed=i)
                times, grid, rect, (found, orientation) = front(sheet.image)
                table.add(f"{look}-{'degraded' if degraded else 'clean'}", **times,
                          **_accuracy(sheet, grid, rect, found, orientation, rot, layout))


def _accuracy(sheet, grid, rect, found, orientation, rot, layout) -> dict[str, float]:
    to_working = rect.transform @ sheet.truth.transform
    true = {(p.lead, p.is_rhythm): p for p in sheet.truth.panels}
    edge_err, base_err = [], []
    for p in found.panels:
        t = true.get((p.lead, p.is_rhythm))
        if t is None:
            continue
        pts = apply_homography(to_working, np.array([[t.box_px[0], t.baseline_y_px],
                                                     [t.box_px[2], t.baseline_y_px]]))
        edge_err.append(max(abs(p.box_px[0] - pts[0, 0]), abs(p.box_px[2] - pts[1, 0])))
        base_err.append(abs(p.baseline_y_px - pts[0, 1]))
    return {
        "ppm_err_pct": 100 * max(abs(grid.px_per_mm_x / sheet.truth.px_per_mm[0] - 1),
                                 abs(grid.px_per_mm_y / sheet.truth.px_per_mm[1] - 1)),
        "rot_err_deg": abs(rect.rotation_deg - rot),
        "layout_ok": float(found.name == layout and orientation == 0),
        "speed_ok": float(found.speed_mm_per_s == sheet.truth.speed_mm_per_s),
        "edge_err_px": max(edge_err) if edge_err else float("nan"),
        "baseline_err_px": max(base_err) if base_err else float("nan"),
    }


def bench_reference(table: Table, limit: int) -> None:
    seen: set[str] = set()
    paths = []
    for path in sorted(IMAGES.glob("*/*.jpg")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            paths.append(path)
    for path in paths[:limit or None]:
        times, grid, _, (found, orientation) = front(load_image(path))
        ok = found.name == "3x4+1" and len(found.panels) == 13 and orientation == 0
        table.add("reference", **times, layout_ok=float(ok), pulses=float(len(found.pulses)),
                  speed_ok=float(found.speed_mm_per_s == 25.0),
                  px_per_mm=grid.px_per_mm_x,
                  rhythm_is_III=float(any(p.is_rhythm and p.lead == "III" for p in found.panels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=6)
    parser.add_argument("--reference-limit", type=int, default=0, help="0 = all sheets")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    table = Table("bench_front_stages")
    if RECORDS.is_dir():
        bench_renders(table, args.records)
    if IMAGES.is_dir() and not args.skip_reference:
        bench_reference(table, args.reference_limit)
    table.print()
    print("saved", table.save())


if __name__ == "__main__":
    main()
