"""Figure for the docs: one QRS complex read column by column and by the fit to the ink.

Renders a shared record as a clean 3x4+1 sheet at 200 dpi, traces one lead inside
its true panel twice (``DigitizeConfig(fit_ink=False)`` and the default, which fits a
drawn line to the ink) and draws both polylines and the true one over a crop of the
ink around the tallest QRS, with each reading's RMS error (px) in the crop.

Run: ``python -m benchmarks.ink_fit_figure [--record A0689] [--lead V2]``; writes
``docs/img/ink_fit.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.runner import save_figure
from ecgdigitize.config import DigitizeConfig
from ecgdigitize.synth import SheetStyle, load_record, render_sheet
from ecgdigitize.traces import extract_traces, ink_darkness, ink_mask

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT.parent / "shared" / "data" / "ecg-records"
OUT = ROOT / "docs" / "img" / "ink_fit.png"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", default="A0689")
    ap.add_argument("--lead", default="V2")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not (RECORDS / f"{args.record}.hea").exists():
        print(f"record {args.record} not found in {RECORDS}", file=sys.stderr)
        return 1
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sheet = render_sheet(load_record(RECORDS / args.record), "3x4+1", SheetStyle(), seed=0)
    t = sheet.truth
    img = np.asarray(sheet.image)
    ppm = float(np.mean(t.px_per_mm))
    dark = ink_darkness(img, px_per_mm=ppm)
    mask = ink_mask(img, px_per_mm=ppm, darkness=dark)
    panel = next(p for p in t.panels if p.lead == args.lead and not p.is_rhythm)
    px_per_s = t.px_per_mm[0] * t.speed_mm_per_s
    px_per_mv = t.px_per_mm[1] * t.gain_mm_per_mv
    lead = t.reference.signal[:, t.reference.lead_names.index(args.lead)]
    idx = np.flatnonzero(np.isfinite(lead))
    tx = panel.box_px[0] + (idx / t.reference.fs - panel.t0_s) * px_per_s
    ty = panel.baseline_y_px - lead[idx] * px_per_mv
    inside = (tx > panel.box_px[0] + 10) & (tx < panel.box_px[2] - 10)
    peak = tx[inside][np.argmax(np.abs(ty[inside] - panel.baseline_y_px))]
    x0, x1 = int(peak - 14), int(peak + 18)
    win = (tx >= x0) & (tx <= x1)
    y0, y1 = int(ty[win].min() - 6), int(ty[win].max() + 6)
    fig, axes = plt.subplots(1, 2, figsize=(9, 6), sharey=True)
    for ax, fit in zip(axes, (False, True), strict=True):
        tr = extract_traces(mask, [panel], row_pitch_px=float(abs(np.diff(
            sorted({p.baseline_y_px for p in t.panels}))).min()), darkness=dark,
            config=DigitizeConfig(fit_ink=fit)).traces[0]
        err = np.interp(tx[win], tr.x_px, tr.y_px) - ty[win]
        rms = float(np.sqrt(np.nanmean(err**2)))
        ax.imshow(img[y0:y1, x0:x1], extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5),
                  interpolation="nearest")
        ax.plot(tx[win], ty[win], "-", color="#1b9e77", lw=2.2, label="true polyline")
        sel = (tr.x_px >= x0) & (tr.x_px <= x1)
        ax.plot(tr.x_px[sel], tr.y_px[sel], ".-", color="#d95f02" if fit else "#386cb0",
                lw=1.0, ms=3, label="fitted to the ink" if fit else "read column by column")
        ax.set_title(f"{'fit to the ink' if fit else 'column reading'}: RMS {rms:.2f} px")
        ax.set_xlabel("x (px)")
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("y (px)")
    fig.suptitle(f"{args.record} lead {args.lead}, clean render at 200 dpi (pen 2 px)")
    save_figure(fig, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
