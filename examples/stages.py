"""Figures of every digitization stage, drawn from the real pipeline's diagnostics.

Digitizes two sheets with :func:`ecgdigitize.digitize` and draws what each
stage found, from the returned :class:`~ecgdigitize.result.DigitizedECG`
(``extras["grid"]``, ``transform``, ``panels``, ``extras["traces"]``,
``calibration``) and the stage functions themselves (``grid_mask``,
``ink_mask``): 1 grid and scale, 2 deskew, 3 panels, 4 traces, 5 overlay.

- ``rendered``: a simulated ECG drawn on a 3x4+1 sheet and skewed by 3 degrees
  (with shading, blur and JPEG); its truth gives the SNR shown in figure 5.
- ``reference``: a real reference sheet (``data/ecg-images``; skipped if absent).

Run: ``python -m examples.stages [--out docs/img/stages]`` (about 20 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import (
    REFERENCE_SHEET,
    ROOT,
    parser,
    sample_sheet,
    save_figure,
    warp_to_working,
)


def figure_grid(rgb: np.ndarray, result: Any) -> Any:
    """Grid mask (zoomed) and its 2-D power spectrum with the 1 mm period found."""
    from ecgdigitize.grid import grid_mask

    mask = grid_mask(rgb)
    grid = result.extras.get("grid")
    ppm = float(np.sqrt(grid.px_per_mm_x * grid.px_per_mm_y)) if grid else float("nan")
    spec = np.fft.fftshift(np.abs(np.fft.fft2(mask.astype(np.float32) - mask.mean())) ** 2)
    h, w = spec.shape
    half = max(8, int(2.6 * max(h, w) / ppm)) if np.isfinite(ppm) else min(h, w) // 8
    cy, cx = h // 2, w // 2
    hx, hy = min(half, cx - 1), min(half * h // max(h, w), cy - 1)  # same cycles/px both ways
    fy, fx = np.fft.fftshift(np.fft.fftfreq(h)), np.fft.fftshift(np.fft.fftfreq(w))
    sub = np.log1p(spec[cy - hy: cy + hy + 1, cx - hx: cx + hx + 1])
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    y0, x0 = rgb.shape[0] // 3, rgb.shape[1] // 3
    zoom = round(25 * ppm) if np.isfinite(ppm) else 200
    ax[0].imshow(mask[y0:y0 + zoom, x0:x0 + zoom], cmap="gray_r", interpolation="nearest")
    ax[0].set_title(f"grid_mask(), a {zoom}x{zoom} px crop (about 25 mm)")
    ext = [fx[cx - hx], fx[cx + hx], fy[cy + hy], fy[cy - hy]]
    ax[1].imshow(sub, cmap="magma", extent=ext, aspect="equal",
                 vmin=np.percentile(sub, 50), vmax=sub.max())
    if np.isfinite(ppm):
        circle = plt.Circle((0, 0), 1 / ppm, fill=False, color="cyan", lw=1, ls="--")
        ax[1].add_patch(circle)
    ax[1].set_xlabel("cycles / px (x)")
    ax[1].set_ylabel("cycles / px (y)")
    title = "power spectrum of the mask"
    if grid is not None:
        title += (f"\nfound {grid.px_per_mm_x:.2f} x {grid.px_per_mm_y:.2f} px/mm "
                  f"({grid.kind}, source {grid.source}, skew {grid.rotation_deg:+.2f} deg); "
                  "dashed: 1 mm")
    ax[1].set_title(title, fontsize=9)
    return fig


def figure_deskew(rgb: np.ndarray, result: Any) -> Any:
    """Input beside the working image (``result.transform`` applied)."""
    working = warp_to_working(rgb, result)
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.6))
    ax[0].imshow(rgb)
    ax[0].set_title(f"input {rgb.shape[1]}x{rgb.shape[0]} px")
    ax[1].imshow(working)
    ax[1].set_title(f"working image {working.shape[1]}x{working.shape[0]} px, "
                    f"rotation {result.rotation_deg:+.2f} deg removed")
    for a, img in zip(ax, (rgb, working), strict=True):
        for frac in (0.3, 0.6):
            a.axhline(frac * img.shape[0], color="tab:blue", lw=0.8, ls=":")
        a.set_axis_off()
    return fig


def figure_panels(rgb: np.ndarray, result: Any) -> Any:
    """Panels found: boxes, lead names and 0 mV baselines on the working image."""
    working = warp_to_working(rgb, result)
    fig, ax = plt.subplots(figsize=(12, 8.2))
    ax.imshow(working)
    for p in result.panels:
        x0, y0, x1, y1 = p.box_px
        colour = "tab:orange" if p.is_rhythm else "tab:green"
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2, ec=colour))
        ax.plot([x0, x1], [p.baseline_y_px] * 2, color="tab:blue", lw=0.7, ls="--")
        ax.text(x0 + 4, y0 + 4, f"{p.lead} {p.t0_s:g}-{p.t1_s:g} s", color=colour, fontsize=8,
                va="top", fontweight="bold")
    ax.set_title(f"layout {result.layout}: {len(result.panels)} panels (green), rhythm strips "
                 "(orange), 0 mV baselines (dashed)")
    ax.set_axis_off()
    return fig


def _zoom_box(result: Any) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` working px around the first panel and half of the next one."""
    first = min(result.panels, key=lambda p: (p.is_rhythm, p.row, p.col))
    x0, y0, x1, y1 = first.box_px
    h, w = result.working_shape
    box = (x0, first.baseline_y_px - 0.75 * (y1 - y0), x0 + 1.5 * (x1 - x0),
           first.baseline_y_px + 0.45 * (y1 - y0))
    return (max(0, int(box[0])), max(0, int(box[1])), min(w, int(box[2])), min(h, int(box[3])))


def _polylines(result: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(x_px, y_px)`` of every traced line (``extras["traces"]``: Trace objects or tuples)."""
    out = []
    for item in result.extras.get("traces", ()):
        if hasattr(item, "x_px"):
            out.append((np.asarray(item.x_px), np.asarray(item.y_px)))
        else:
            out.append((np.asarray(item[-2]), np.asarray(item[-1])))
    return out


def _image_rows(images: list[np.ndarray], titles: list[str], width_in: float = 12.0,
                extra_rows: int = 0) -> tuple[Any, Any]:
    """A figure of images stacked vertically, each as wide as the figure (plus plot rows)."""
    ratios = [im.shape[0] / im.shape[1] for im in images] + [0.3] * extra_rows
    fig, ax = plt.subplots(len(ratios), 1,
                           figsize=(width_in, 0.96 * width_in * sum(ratios) + 0.35 * len(ratios)),
                           gridspec_kw={"height_ratios": ratios})
    fig.subplots_adjust(left=0.02, right=0.98, top=0.97, bottom=0.03, hspace=0.12)
    ax = np.atleast_1d(ax)
    for a, im, title in zip(ax, images, titles, strict=False):
        a.imshow(im, cmap="gray_r" if im.ndim == 2 else None, interpolation="antialiased")
        a.set_title(title, fontsize=10)
        a.set_axis_off()
    return fig, ax


def figure_traces(rgb: np.ndarray, result: Any) -> Any:
    """Ink mask of the working image with the traced centre lines, full and zoomed."""
    import cv2

    from ecgdigitize.traces import ink_mask

    working = warp_to_working(rgb, result)
    cal = result.calibration
    mask = ink_mask(working, px_per_mm=float(np.sqrt(cal.px_per_mm_x * cal.px_per_mm_y)))
    shown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))  # survives downscaling
    zx0, zy0, zx1, zy1 = _zoom_box(result)
    fig, ax = _image_rows(
        [shown, mask[zy0:zy1, zx0:zx1]],
        ["ink_mask() of the working image (black) and the traced centre lines (red)",
         "zoom on the first panel (line width "
         f"{result.extras.get('line_width_px', float('nan')):.1f} px)"])
    for xs, ys in _polylines(result):
        ax[0].plot(xs, ys, color="tab:red", lw=0.9)
        ax[1].plot(np.asarray(xs) - zx0, np.asarray(ys) - zy0, color="tab:red", lw=1.2)
    ax[1].set_xlim(0, zx1 - zx0)
    ax[1].set_ylim(zy1 - zy0, 0)
    return fig


def figure_overlay(rgb: np.ndarray, result: Any, truth: Any = None) -> Any:
    """Recovered signal drawn back on the input (``result.plot_overlay``); with a truth, lead II."""
    zx0, zy0, zx1, zy1 = _zoom_box(result)
    inv = np.linalg.inv(np.asarray(result.transform, float))
    corners = np.array([[zx0, zy0, 1.0], [zx1, zy0, 1.0], [zx0, zy1, 1.0], [zx1, zy1, 1.0]]) @ inv.T
    cx, cy = corners[:, 0] / corners[:, 2], corners[:, 1] / corners[:, 2]
    q = np.array(list(result.quality.values()))
    zoom = rgb[max(0, int(cy.min())):int(cy.max()), max(0, int(cx.min())):int(cx.max())]
    fig, ax = _image_rows(
        [rgb, zoom],
        [f"result.plot_overlay(): the recovered signal drawn back over the input, {np.sum(q > 0)}/"
         f"{len(q)} leads recovered, median quality {np.median(q):.2f}",
         "zoom: the blue line should cover the black trace (labels: lead, quality 0-1)"],
        extra_rows=int(truth is not None))
    for a in ax[:2]:  # redraw both rows with the library's overlay, keeping the row sizes
        title = a.get_title()
        a.cla()
        result.plot_overlay(rgb, ax=a, linewidth=0.8, colour="#0057ff")
        for text in a.texts:  # lead labels outside the zoom must not widen the figure
            text.set_clip_on(True)
        a.set_title(title, fontsize=10)
    ax[1].set_xlim(cx.min(), cx.max())
    ax[1].set_ylim(cy.max(), cy.min())
    if truth is not None:
        from ecgdigitize.metrics import score_record

        table = score_record(truth, result)
        lead = "II"
        ax[2].plot(truth.time_s, truth.lead(lead), color="black", lw=1.0, label="truth")
        ax[2].plot(result.time_s, result.lead(lead), color="tab:red", lw=0.9, ls="--",
                   label="digitized")
        ax[2].set_xlabel("time, s")
        ax[2].set_ylabel("mV")
        ax[2].legend(loc="upper right", fontsize=8)
        ax[2].set_title(f"lead {lead} (rhythm strip): SNR {table.loc[lead, 'snr_db']:.1f} dB; "
                        f"mean over 12 leads {table.attrs['mean_snr_db']:.1f} dB "
                        "(PhysioNet/CinC 2024 definition)", fontsize=10)
    return fig


def stage_figures(name: str, rgb: np.ndarray, out: Path, truth: Any = None) -> list[Path]:
    """Digitize ``rgb`` and write the five stage figures ``<name>_<k>_<stage>.png``."""
    from ecgdigitize import digitize

    t0 = time.perf_counter()
    result = digitize(rgb)
    print(f"{name}: digitized in {time.perf_counter() - t0:.2f} s, layout {result.layout}, "
          f"{result.calibration.px_per_mm_x:.2f} px/mm ({result.calibration.source}), "
          f"rotation {result.rotation_deg:+.2f} deg")
    figs = {"1_grid": figure_grid(rgb, result), "2_deskew": figure_deskew(rgb, result),
            "3_panels": figure_panels(rgb, result), "4_traces": figure_traces(rgb, result),
            "5_overlay": figure_overlay(rgb, result, truth)}
    return [save_figure(fig, out / f"{name}_{key}.png", dpi=72 if key == "5_overlay" else 90,
                        colours=64) for key, fig in figs.items()]


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, ROOT / "docs" / "img" / "stages").parse_args(argv)
    sheet = sample_sheet(seed=3, rotation_deg=3.0)
    written = stage_figures("rendered", sheet.image, args.out, sheet.truth.reference)
    if REFERENCE_SHEET.exists():
        from ecgdigitize import load_image

        written += stage_figures("reference", load_image(REFERENCE_SHEET), args.out)
    else:
        print(f"reference sheet not found ({REFERENCE_SHEET}): skipped")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
