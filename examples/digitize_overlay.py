"""Digitize one sheet and draw the recovered traces over it.

Without an argument a simulated 12-lead ECG is drawn on a 3x4+1 sheet (with
its exact truth, so the SNR is printed too); with a path, your own sheet is
digitized. Writes ``digitize_overlay.png`` (the recovered signal drawn back on
the sheet, and lead II as a plot) to ``--out`` and ``<name>.hea/.dat`` (WFDB) to ``--work``.

Run: ``python -m examples.digitize_overlay [SHEET] [--out docs/img/examples]`` (a few seconds).
"""

from __future__ import annotations

import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, sample_sheet, save_figure


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("sheet", nargs="?", help="a sheet image or PDF (default: a rendered sheet)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    from ecgdigitize import digitize, load_image

    truth = None
    if args.sheet:
        image, name = load_image(args.sheet), "sheet"
    else:
        sheet = sample_sheet(seed=7, dpi=150)
        image, name, truth = sheet.image, "rendered", sheet.truth.reference
    t0 = time.perf_counter()
    result = digitize(image, fs=500)
    dt = time.perf_counter() - t0
    cal = result.calibration
    print(f"digitized in {dt:.2f} s: layout {result.layout}, {cal.px_per_mm_x:.2f} x "
          f"{cal.px_per_mm_y:.2f} px/mm from the {cal.source}, {cal.speed_mm_per_s:g} mm/s, "
          f"{cal.gain_mm_per_mv:g} mm/mV, rotation {result.rotation_deg:+.2f} deg")
    for w in result.warnings:
        print(f"  warning: {w}")

    fig, ax = plt.subplots(2, 1, figsize=(12, 12.5), gridspec_kw={"height_ratios": [3.1, 1]})
    result.plot_overlay(image, ax=ax[0], colour="#0057ff")
    ax[0].set_title("recovered signal drawn back over the input (lead name and quality 0-1)")
    ax[1].plot(result.time_s, result.lead("II"), color="tab:blue", lw=0.9, label="digitized")
    title = "lead II"
    if truth is not None:
        from ecgdigitize.metrics import score_record

        table = score_record(truth, result)
        ax[1].plot(truth.time_s, truth.lead("II"), color="black", lw=0.7, alpha=0.7,
                   label="truth")
        title += (f": SNR {table.loc['II', 'snr_db']:.1f} dB, mean over 12 leads "
                  f"{table.attrs['mean_snr_db']:.1f} dB")
        print(f"SNR against the truth: mean {table.attrs['mean_snr_db']:.1f} dB, median "
              f"{np.median(table['snr_db']):.1f} dB over {len(table)} leads")
    ax[1].set_title(title)
    ax[1].set_xlabel("time, s")
    ax[1].set_ylabel("mV")
    ax[1].legend(loc="upper right", fontsize=8)
    png = save_figure(fig, args.out / "digitize_overlay.png")
    hea = result.to_wfdb(args.work, record_name=name)
    print(f"wrote {png} ({png.stat().st_size // 1024} KB) and {hea}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
