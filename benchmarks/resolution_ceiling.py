"""The SNR an ideal digitizer could reach at a given scan resolution.

A sheet printed at 25 mm/s and scanned at ``dpi`` holds one pixel column per
``1 / (25 * dpi / 25.4)`` s (197 columns per second at 200 dpi) and one pixel
row per ``1 / (10 * dpi / 25.4)`` mV at 10 mm/mV. This script point-samples
each of the 51 shared records once per pixel column, rounds to pixel rows,
interpolates back to the record's rate (linear and cubic spline) and scores the
result against the record with :func:`ecgdigitize.metrics.snr_db` (no
alignment). It tells how much of a digitizer's shortfall is the resolution of
the sheet itself. A second family of cases, ``200 dpi blur S px``, smooths the
record along time by a Gaussian of ``S`` pixel columns (no sampling, no
rounding): the SNR left by a reading whose only fault is to average the trace
over a fraction of a pixel, as a line's width and a column's centroid do. Writes ``docs/results/resolution_ceiling.md`` and
``benchmarks/results/resolution_ceiling.json``.

Run: ``python -m benchmarks.resolution_ceiling`` (about 30 s; needs ../shared/data).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

from benchmarks.runner import Table
from ecgdigitize.metrics import snr_db
from ecgdigitize.synth import load_record

RECORDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg-records"
SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0
SNR_CAP_DB = 60.0


def ideal_readout(signal_mv: np.ndarray, fs: float, dpi: float, method: str) -> np.ndarray:
    """Sample once per pixel column, round to pixel rows, interpolate back to ``fs``.

    Parameters
    ----------
    signal_mv : ndarray of shape (n_samples,)
        One lead in mV.
    fs : float
        Sampling rate of ``signal_mv`` in Hz.
    dpi : float
        Scan resolution in dots per inch.
    method : {"linear", "cubic"}
        Interpolation from the column samples back to ``fs``.

    Returns
    -------
    ndarray of shape (n_samples,)
        What an ideal digitizer of that sheet would return, in mV.

    Examples
    --------
    >>> t = np.arange(5000) / 500
    >>> out = ideal_readout(np.sin(2 * np.pi * t), 500.0, 200.0, "cubic")
    >>> float(np.max(np.abs(out - np.sin(2 * np.pi * t)))) < 0.01
    True
    """
    px_per_mm = dpi / 25.4
    px_per_s = SPEED_MM_PER_S * px_per_mm
    px_per_mv = GAIN_MM_PER_MV * px_per_mm
    t = np.arange(signal_mv.size) / fs
    t_col = np.arange(0.0, t[-1], 1.0 / px_per_s)
    rows = np.round(np.interp(t_col, t, signal_mv) * px_per_mv) / px_per_mv
    if method == "cubic":
        return np.asarray(CubicSpline(t_col, rows)(t))
    return np.interp(t, t_col, rows)


def main() -> int:
    """Score the ideal readout on every shared record at 100-400 dpi."""
    heads = sorted(RECORDS.glob("*.hea"))
    if not heads:
        print(f"no records found in {RECORDS}", file=sys.stderr)
        return 1
    table = Table("resolution_ceiling", notes=(
        "ideal digitizer (one point per pixel column, rounded to pixel rows) on the 51 shared "
        "records; snr_db = mean over 12 leads (cap 60 dB), no alignment"))
    for head in heads:
        rec = load_record(head.with_suffix(""))
        sig = rec.signal[: int(10 * rec.fs)]
        for dpi in (100, 150, 200, 300, 400):
            for method in ("linear", "cubic"):
                snrs = [min(snr_db(sig[:, k], ideal_readout(sig[:, k], rec.fs, dpi, method),
                                   rec.fs, max_shift_s=0.0, max_offset_mv=0.0), SNR_CAP_DB)
                        for k in range(sig.shape[1])]
                table.add(f"{dpi} dpi {method}", snr_db=float(np.mean(snrs)))
        px_per_sample = SPEED_MM_PER_S * 200 / 25.4 / rec.fs
        for sigma_px in (0.25, 0.5, 0.75):
            blurred = gaussian_filter1d(sig, sigma_px / px_per_sample, axis=0)
            snrs = [min(snr_db(sig[:, k], blurred[:, k], rec.fs, max_shift_s=0.0,
                               max_offset_mv=0.0), SNR_CAP_DB) for k in range(sig.shape[1])]
            table.add(f"200 dpi blur {sigma_px:g} px", snr_db=float(np.mean(snrs)))
    table.print()
    path = table.save()
    from benchmarks.study import json_table_markdown

    md = Path(__file__).resolve().parents[1] / "docs" / "results" / "resolution_ceiling.md"
    md.write_text(json_table_markdown(json.loads(path.read_text())), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
