"""Where the trace stage loses accuracy: error energy by kind of stretch, on renders.

Each of the first ``--n`` shared records is rendered as a 3x4+1 sheet at
200 dpi (red grid, or ``--variant``) and traced with the render's own panels
and scale (:func:`ecgdigitize.digitize_panels`: grid, geometry and layout
skipped). Every grid panel's digitized polyline is compared with the render's
truth polyline in pixels (vertical error at each true sample), and the squared
error of the panel is split between:

- ``edge``: samples beyond the first or last traced column (the panel's ends,
  filled by holding the end value);
- ``gross``: errors over 6 px that no horizontal shift of 1.5 px explains
  (wrong ink followed: a crossing trace, a label);
- ``steep_small`` / ``steep_mid`` / ``steep_big``: samples on strokes steeper
  than 2 px per px, by the horizontal error that would explain them (<= 0.3,
  0.3-1, > 1 px);
- ``peak``: samples near a sharp apex or nadir;
- ``rest``: everything else (flat stretches).

Reported per panel: its SNR in pixel space (dB, mean removed), and for every
kind the share of the error energy and the gain in dB if that kind's error
were zero. Rows are grouped by kind (``case``). Run:
``python -m benchmarks.trace_errors [--n 6] [--variant clean|dotted|grey]``
(about 1 s per sheet); writes ``benchmarks/results/trace_errors.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from benchmarks.runner import Table
from ecgdigitize import digitize_panels
from ecgdigitize.result import Calibration
from ecgdigitize.synth import SheetStyle, load_record, render_sheet

RECORDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg-records"
STYLES = {"clean": SheetStyle(), "dotted": SheetStyle(grid_colour="pink", grid_pattern="dotted"),
          "grey": SheetStyle(grid_colour="grey")}


def error_kinds(xs: np.ndarray, ys: np.ndarray, est_x: np.ndarray, est_y: np.ndarray
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Vertical error (px) of a digitized polyline at the true samples, and their kinds.

    Parameters
    ----------
    xs, ys : ndarray
        True polyline, one point per sample, px (finite).
    est_x, est_y : ndarray
        Digitized polyline, px (``est_x`` increasing; NaN ``est_y`` ignored).

    Returns
    -------
    error : ndarray
        Digitized minus true ``y`` at ``xs``, px.
    kinds : dict of str to ndarray of bool
        Disjoint masks over the samples (see the module docstring).

    Examples
    --------
    >>> xs = np.arange(0.0, 50.0); ys = np.where(np.abs(xs - 25) < 3, 10.0, 40.0)
    >>> err, kinds = error_kinds(xs, ys, xs, ys + 0.5)
    >>> float(err.mean()), sorted(kinds)[:3]
    (0.5, ['edge', 'gross', 'peak'])
    """
    ok = np.isfinite(est_y)
    err = np.interp(xs, est_x[ok], est_y[ok]) - ys
    slope = np.gradient(ys, xs)
    dx = -err / np.where(slope == 0, 1e-9, slope)
    edge = (xs < est_x[ok][0] - 0.5) | (xs > est_x[ok][-1] + 0.5)
    gross = (np.abs(err) > 6) & (np.abs(dx) > 1.5) & ~edge
    steep = (np.abs(slope) > 2) & ~gross & ~edge
    extreme = (ys == maximum_filter1d(ys, 7)) | (ys == minimum_filter1d(ys, 7))
    sharp = extreme & (np.abs(np.gradient(slope, xs)) > 1)
    peak = (np.convolve(sharp, np.ones(5), "same") > 0) & ~gross & ~edge & ~steep
    kinds = {"edge": edge, "gross": gross,
             "steep_small": steep & (np.abs(dx) <= 0.3),
             "steep_mid": steep & (np.abs(dx) > 0.3) & (np.abs(dx) <= 1),
             "steep_big": steep & (np.abs(dx) > 1), "peak": peak,
             "rest": ~(edge | gross | steep | peak)}
    return err, kinds


def main(argv: list[str] | None = None) -> int:
    """Digitize ``--n`` renders with their true panels and tabulate the error kinds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="number of records")
    parser.add_argument("--variant", default="clean", choices=sorted(STYLES))
    parser.add_argument("--name", default="trace_errors", help="results file stem")
    args = parser.parse_args(argv)
    paths = sorted(RECORDS.glob("*.hea"))[: args.n]
    if not paths:
        print(f"records not found: {RECORDS}", file=sys.stderr)
        return 1
    table = Table(args.name, notes=f"3x4+1 {args.variant} renders at 200 dpi, true panels; per "
                                   "grid panel: px-space SNR (dB), error share and dB gained "
                                   "if that kind of error were removed")
    for path in paths:
        sheet = render_sheet(load_record(path.with_suffix("")), "3x4+1", STYLES[args.variant],
                             seed=0)
        t = sheet.truth
        cal = Calibration(*t.px_per_mm, t.speed_mm_per_s, t.gain_mm_per_mv)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traces = digitize_panels(sheet.image, t.panels, cal).extras["traces"]
        for i, panel in enumerate(t.panels):
            xs, ys = t.traces[i]
            keep = np.isfinite(ys)
            tr = traces.traces[i]
            if panel.is_rhythm or not np.isfinite(tr.y_px).any():
                continue
            err, kinds = error_kinds(xs[keep], ys[keep], tr.x_px, tr.y_px)
            level = ys[keep] - ys[keep].mean()
            total = float(np.sum(err**2))
            for kind, mask in kinds.items():
                part = float(np.sum(err[mask] ** 2))
                table.add(kind, panel_snr_db=10 * np.log10(np.sum(level**2) / total),
                          share=part / total,
                          gain_db=10 * np.log10(total / max(total - part, 1e-9 * total)))
    table.print()
    table.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
