"""Accuracy and speed of ``ecgdigitize.digitize`` on renders of the 51 real records.

Every record of ``../shared/data/ecg-records`` is rendered as a 3x4+1 sheet at
200 dpi (2200x1700 px) in four variants, digitized, and scored against the
render's truth with :func:`ecgdigitize.metrics.score_record`:

- ``clean``: red solid grid;
- ``degraded``: red grid, rotated by a random angle in [-5, 5] degrees, blur
  sigma 1 px, Gaussian noise 2 %, JPEG quality 70;
- ``dotted``: pink dotted grid; ``grey``: grey solid grid.

Reported per sheet: mean SNR over the 12 leads (dB, capped as in
``mean_snr_db``), leads recovered (of 12), total time and every stage's time, and
the process's peak resident memory so far (MiB; rendering included).
``--truth-panels`` skips grid/geometry/layout and traces the render's own
panels (non-rotated variants only), isolating the trace and calibration stages.

Run: ``python -m benchmarks.bench_digitize [--n 51] [--variants clean,degraded,dotted,grey]
[--dpi 200]``
(about 1 s per sheet on one core); writes ``benchmarks/results/bench_digitize.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.runner import Table, timer
from ecgdigitize import digitize, digitize_panels
from ecgdigitize._workers import peak_rss_mb
from ecgdigitize.errors import ECGError
from ecgdigitize.metrics import score_record
from ecgdigitize.result import Calibration
from ecgdigitize.synth import Degradation, SheetStyle, render_sheet
from ecgdigitize.synth.signals import load_record

RECORDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg-records"
STAGES = ("load", "grid", "geometry", "layout", "traces", "calibrate", "clean")


def variant(name: str, rng: np.random.Generator, dpi: float = 200.0
            ) -> tuple[SheetStyle, Degradation | None]:
    """Style and degradation of one benchmark variant."""
    if name == "clean":
        return SheetStyle(dpi=dpi), None
    if name == "degraded":
        return SheetStyle(dpi=dpi), Degradation(rotation_deg=float(rng.uniform(-5, 5)),
                                         blur_sigma_px=1.0, gaussian_noise_std=0.02,
                                         jpeg_quality=70)
    if name == "dotted":
        return SheetStyle(dpi=dpi, grid_colour="pink", grid_pattern="dotted"), None
    if name == "grey":
        return SheetStyle(dpi=dpi, grid_colour="grey"), None
    raise SystemExit(f"unknown variant {name!r}")


def run_one(sheet, truth_panels: bool) -> dict[str, float]:
    """Digitize one rendered sheet; SNR, leads recovered and times."""
    t = sheet.truth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with timer() as clock:
            try:
                if truth_panels:
                    cal = Calibration(*t.px_per_mm, t.speed_mm_per_s, t.gain_mm_per_mv)
                    res = digitize_panels(sheet.image, t.panels, cal)
                else:
                    res = digitize(sheet.image)
            except ECGError:
                return {"snr_db": 0.0, "leads_recovered": 0.0, "time_s": clock.elapsed_s,
                        "failed": 1.0}
    scores = score_record(t.reference, res)
    recovered = sum(bool(np.isfinite(res.lead(lead)).any() and res.quality.get(lead, 0) > 0)
                    for lead in res.lead_names)
    row = {"snr_db": float(scores.attrs["mean_snr_db"]), "leads_recovered": float(recovered),
           "time_s": clock.elapsed_s, "failed": 0.0}
    row.update({f"{s}_s": float(res.stage_times_s.get(s, 0.0)) for s in STAGES})
    row["peak_rss_mb"] = peak_rss_mb()   # of the whole process so far: the largest sheet's
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=51, help="number of records")
    parser.add_argument("--variants", default="clean,degraded,dotted,grey")
    parser.add_argument("--truth-panels", action="store_true",
                        help="trace the render's own panels (no grid/geometry/layout)")
    parser.add_argument("--name", default=None, help="results file stem")
    parser.add_argument("--dpi", type=float, default=200.0, help="render resolution")
    args = parser.parse_args(argv)
    if not RECORDS.is_dir():
        print(f"records not found: {RECORDS}", file=sys.stderr)
        return 1
    paths = sorted(RECORDS.glob("*.hea"))[: args.n]
    table = Table(args.name or ("bench_digitize_truth_panels" if args.truth_panels
                                else "bench_digitize"),
                  notes=f"3x4+1 renders at {args.dpi:g} dpi of the shared records; snr_db = mean over "
                        "12 leads (score_record), times in s")
    for name in args.variants.split(","):
        if args.truth_panels and name == "degraded":
            continue
        rng = np.random.default_rng(0)
        for path in paths:
            style, degradation = variant(name, rng, args.dpi)
            sheet = render_sheet(load_record(path.with_suffix("")), "3x4+1", style,
                                 degradation, seed=0)
            table.add(name, **run_one(sheet, args.truth_panels))
    table.print()
    table.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
