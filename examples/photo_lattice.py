"""A phone photo of a folded sheet, digitized with and without the grid-lattice step.

Renders a simulated ECG as a 3x4+1 sheet at 150 dpi, photographs it
(:meth:`ecgdigitize.synth.Degradation.photo`: tilt, perspective, shading,
blur, noise, JPEG) and adds a fold across the page (a 1.2 mm step of the
paper over about 12 mm). Digitizes it twice with :func:`ecgdigitize.digitize`:
with the default ``DigitizeConfig(lattice_min_mm=0.25)`` and with the
lattice step switched off (``lattice_min_mm=None``), scores both against the
render's truth and draws the input beside the rhythm strip read both ways.

Run: ``python -m examples.photo_lattice [--out docs/img/examples]`` (about 5 s).
"""

from __future__ import annotations

import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import cv2
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, save_figure


def folded_photo(seed: int = 3):
    """The photographed, folded sheet (RGB) and its rendered truth."""
    from ecgdigitize.synth import Degradation, SheetStyle, render_sheet, simulate_record

    record = simulate_record(duration_s=10.0, fs=500.0, heart_rate=72.0, seed=seed)
    sheet = render_sheet(record, "3x4+1", SheetStyle(dpi=150),
                         Degradation.photo(rotation_deg=1.5, perspective=0.04), seed=seed)
    img = sheet.image
    h, w = img.shape[:2]
    ppm = 150 / 25.4
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy = 0.6 * ppm * np.tanh((xx - 0.58 * w) / (6.0 * ppm))
    folded = cv2.remap(img, xx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return folded, sheet.truth


def main(argv: list[str] | None = None) -> int:
    from ecgdigitize import DigitizeConfig, digitize
    from ecgdigitize.metrics import score_record

    args = parser(__doc__).parse_args(argv)
    img, truth = folded_photo()
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, cfg in (("with the lattice step", DigitizeConfig()),
                           ("without it", DigitizeConfig(lattice_min_mm=None))):
            res = digitize(img, config=cfg)
            results[label] = (res, score_record(truth.reference, res))
    fit = results["with the lattice step"][0].extras["lattice"]
    for label, (res, table) in results.items():
        print(f"{label}: layout {res.layout}, mean SNR {table.attrs['mean_snr_db']:.1f} dB")
    if fit is not None:
        print(f"lattice fit: grid moved by up to {fit.deviation_mm:.2f} mm (perspective) "
              f"and {fit.bend_mm:.2f} mm (fold); {fit.n_tiles} tiles, rms {fit.residual_mm:.3f} mm")

    fig, ax = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.35]})
    ax[0].imshow(img)
    ax[0].set_title("input: a photo of a folded sheet (fold at 58 % of the width)", fontsize=10)
    ax[0].set_axis_off()
    lead = "II"
    t = np.arange(truth.reference.n_samples) / truth.reference.fs
    keep = (t >= 5.5) & (t <= 8.5)
    ax[1].plot(t[keep], truth.reference.lead(lead)[keep], color="k", lw=1.6, label="truth")
    for (label, (res, table)), colour in zip(results.items(), ("tab:blue", "tab:red"),
                                             strict=True):
        sig = res.lead(lead)
        ax[1].plot(t[keep], sig[keep] - np.nanmedian(sig - truth.reference.lead(lead)),
                   color=colour, lw=1.0,
                   label=f"{label}: {table.loc[lead, 'snr_db']:.1f} dB "
                         f"(12-lead mean {table.attrs['mean_snr_db']:.1f} dB)")
    ax[1].set_xlabel("time, s")
    ax[1].set_ylabel("mV")
    ax[1].set_title(f"rhythm strip, lead {lead}, around the fold", fontsize=10)
    ax[1].legend(loc="upper right", fontsize=8)
    path = save_figure(fig, args.out / "photo_lattice.png")
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
