"""Self-consistency and speed of ``ecgdigitize.digitize`` on the real reference sheets.

The sheets of ``data/ecg-images`` (ECG Images dataset of Cardiac Patients,
3x4+1, 25 mm/s, 10 mm/mV) have no ground-truth signal, so two physiological
identities are checked instead, on every distinct sheet (one per sha256):

- **Einthoven**: in column 1 (0-2.5 s) lead II = I + III. Reported as the
  SNR of ``I + III`` against ``II`` (no shift, no offset allowed beyond the
  mean), dB.
- **Rhythm strip**: the 10 s strip (lead II on 334 of the 418 sheets, III on
  84: read from its label, checked against the grid panels) against the
  column-1 panel of the same lead over 0-2.5 s, dB. Rows are grouped by it.

Also: leads recovered (of 12), total and per-stage time. Five overlays
(recovered traces drawn over the sheet, <= 1400 px wide, < 500 KB) are written
to ``docs/img/overlays/``.

Run: ``python -m benchmarks.bench_reference_sheets [--limit N] [--overlays 5]``
(about 1 s per sheet on one core); writes
``benchmarks/results/bench_reference_sheets.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.runner import Table, timer
from ecgdigitize import digitize
from ecgdigitize.calibrate import trace_to_samples
from ecgdigitize.errors import ECGError
from ecgdigitize.result import DigitizedECG

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "data" / "ecg-images"
MANIFEST = ROOT.parent / "shared" / "data" / "ecg-images-cardiac-patients" / "manifest.csv"
OVERLAYS = ROOT / "docs" / "img" / "overlays"
STAGES = ("load", "grid", "geometry", "layout", "traces", "calibrate", "clean")
COL1_S = 2.5


def distinct_sheets(limit: int | None) -> list[Path]:
    """One file per distinct content (sha256), in manifest order, spread over classes."""
    if MANIFEST.exists():
        seen: set[str] = set()
        paths = []
        with MANIFEST.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["sha256"] not in seen:
                    seen.add(row["sha256"])
                    paths.append(IMAGES / row["original_relative_path"])
        paths = [p for p in paths if p.exists()]
    else:
        paths = sorted(IMAGES.glob("*/*.jpg"))
    if limit is not None and limit < len(paths):
        idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in idx]
    return paths


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SNR of ``estimate`` against ``reference`` over common finite samples, means removed."""
    ok = np.isfinite(reference) & np.isfinite(estimate)
    if ok.sum() < 100:
        return float("nan")
    ref = reference[ok] - reference[ok].mean()
    err = estimate[ok] - estimate[ok].mean() - ref
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-12)))


def panel_samples(res: DigitizedECG, lead: str, rhythm: bool) -> np.ndarray:
    """One panel's samples over column 1 (0-2.5 s), NaN elsewhere."""
    out = np.full(round(COL1_S * res.fs), np.nan)
    for tr in res.extras["traces"]:
        if tr.lead == lead and tr.panel.is_rhythm == rhythm and res.calibration is not None:
            idx, mv = trace_to_samples(tr, res.calibration, res.fs)
            keep = idx < out.size
            out[idx[keep]] = mv[keep]
    return out


def consistency(res: DigitizedECG) -> dict[str, float]:
    """Einthoven and rhythm-strip SNRs of one digitized sheet."""
    # the column-1 grid panels (the assembled leads may hold the rhythm strip there)
    i, ii, iii = (panel_samples(res, k, rhythm=False) for k in ("I", "II", "III"))
    strip = [p.lead for p in res.panels if p.is_rhythm]
    out = {"einthoven_snr_db": snr(ii, i + iii)}
    if strip:
        lead = strip[0]
        out["rhythm_snr_db"] = snr(panel_samples(res, lead, rhythm=False),
                                   panel_samples(res, lead, rhythm=True))
        out["rhythm_is_ii"] = float(lead == "II")
    return out


def save_overlay(path: Path, res: DigitizedECG, out: Path) -> None:
    """Overlay PNG, 1400 px wide at most, palette-quantised to stay under 500 KB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from ecgdigitize.io import load_image

    grey = load_image(path).mean(axis=2)
    faded = np.repeat((150 + 0.4 * grey)[..., None], 3, axis=2).astype(np.uint8)
    h, w = faded.shape[:2]
    scale = min(1.0, 1400 / w)
    fig = plt.figure(figsize=(w * scale / 100, h * scale / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    res.plot_overlay(faded, ax=ax, linewidth=0.8, colour="#d62828")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    for colours in (32, 16, 8):
        Image.open(buf).convert("RGB").quantize(colors=colours).save(out, optimize=True)
        if out.stat().st_size < 500_000:
            break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="sheets (spread evenly)")
    parser.add_argument("--overlays", type=int, default=5, help="overlay PNGs to write")
    parser.add_argument("--name", default="bench_reference_sheets")
    args = parser.parse_args(argv)
    paths = distinct_sheets(args.limit)
    if not paths:
        print(f"no sheets under {IMAGES}", file=sys.stderr)
        return 1
    table = Table(args.name, notes="real 3x4+1 reference sheets (one per sha256); "
                                   "SNRs in dB, times in s")
    picks = set(np.linspace(0, len(paths) - 1, args.overlays).round().astype(int).tolist()
                if args.overlays else [])
    for k, path in enumerate(paths):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with timer() as clock:
                try:
                    res = digitize(path)
                except ECGError as err:
                    print(f"{path.name}: {err}", file=sys.stderr)
                    table.add("failed", failed=1.0, time_s=clock.elapsed_s)
                    continue
        recovered = sum(res.quality.get(lead, 0.0) > 0 and bool(np.isfinite(res.lead(lead)).any())
                        for lead in res.lead_names)
        row = {"leads_recovered": float(recovered), "time_s": clock.elapsed_s, "failed": 0.0,
               **consistency(res)}
        row.update({f"{s}_s": float(res.stage_times_s.get(s, 0.0)) for s in STAGES})
        strip = [p.lead for p in res.panels if p.is_rhythm]
        table.add(f"strip {strip[0]}" if strip else "no strip", **row)
        if k in picks:
            save_overlay(path, res, OVERLAYS / f"{path.stem.replace('(', '_').replace(')', '')}.png")
    table.print()
    table.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
