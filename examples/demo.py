"""The main job on bundled example data: draw a sheet, digitize it, write outputs, classify it.

Run with ``make demo`` (or ``python -m examples.demo --out out/demo``).

Steps
-----
1. Simulate a 10 s 12-lead ECG with NeuroKit2 (fixed seed) and draw it on ECG
   paper (3x4 + lead II rhythm strip, 25 mm/s, 10 mm/mV) with exact ground truth.
2. Digitize the sheet image with :func:`ecgdigitize.digitize` (no boxes, no scale given).
3. Write WFDB + CSV + an overlay PNG, and score the result against the truth
   (PhysioNet/CinC 2024 SNR).
4. Classify the sheet with the shipped reference predictor(s).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated ECG")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter quiet
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PIL import Image

    from ecgdigitize.synth import render_sheet, simulate_record

    t0 = time.perf_counter()
    record = simulate_record(duration_s=10.0, fs=500, heart_rate=72, seed=args.seed)
    sheet = render_sheet(record, layout="3x4+1", seed=args.seed)
    sheet_path = out / "example_sheet.png"
    Image.fromarray(sheet.image).save(sheet_path)
    h, w = sheet.image.shape[:2]
    print(f"[1/4] drew {sheet_path} ({w}x{h} px, layout {sheet.truth.layout}, "
          f"{sheet.truth.px_per_mm[0]:.2f} px/mm) from a simulated 12-lead ECG "
          f"in {time.perf_counter() - t0:.2f} s")

    try:
        from ecgdigitize import digitize
    except ImportError:
        print("[2/4] the digitizer is not available in this build: stopping after the sheet.")
        return 1

    t1 = time.perf_counter()
    result = digitize(sheet_path, fs=500)
    dt = time.perf_counter() - t1
    n_ok = sum(1 for q in result.quality.values() if q > 0)
    cal = result.calibration
    scale = (f"{cal.px_per_mm_x:.2f}x{cal.px_per_mm_y:.2f} px/mm from the {cal.source}"
             if cal else "no scale")
    print(f"[2/4] digitized in {dt:.2f} s: layout {result.layout}, {scale}, "
          f"rotation {result.rotation_deg:+.2f} deg, {n_ok}/{result.n_leads} leads recovered")

    wfdb_dir = out / "wfdb"
    hea = result.to_wfdb(wfdb_dir, record_name="example")
    csv = result.to_csv(out / "example.csv")
    fig = result.plot_overlay(sheet.image).figure
    overlay = out / "example_overlay.png"
    fig.savefig(overlay, dpi=100)
    from ecgdigitize.metrics import score_record

    table = score_record(sheet.truth.reference, result)
    snr = table["snr_db"].to_numpy(dtype=float)
    print(f"[3/4] wrote {hea} (+ .dat), {csv} and {overlay}; SNR against the truth "
          f"(PhysioNet/CinC 2024 definition): mean {table.attrs['mean_snr_db']:.1f} dB, "
          f"median {np.median(snr):.1f} dB, min {np.min(snr):.1f} dB over {len(snr)} leads")

    _classify(sheet_path)
    return 0


def _classify(sheet_path: Path) -> None:
    from ecgclassify import CLASS_NAMES, load_predictor

    models = sorted((Path(__file__).resolve().parents[1] / "ecgclassify" / "models").glob(
        "*.ecgmodel"))
    if not models:
        print("[4/4] no shipped predictor found in ecgclassify/models: skipping classification.")
        return
    for path in models:
        try:
            predictor = load_predictor(path)
        except Exception as exc:  # e.g. a CNN model without TensorFlow installed
            print(f"[4/4] {path.name}: cannot load ({exc})")
            continue
        proba = predictor.predict_proba([sheet_path])[0]
        k = int(np.argmax(proba))
        label = int(predictor.classes_[k])
        print(f"[4/4] {path.name} ({type(predictor).__name__}): class {label} "
              f"({CLASS_NAMES[label]}), p = {proba[k]:.2f}")
    print("      (the example is a NeuroKit2 simulation drawn in our default style, while the "
          "reference models learned one ECG machine's sheets: a smoke test, not a diagnosis)")


if __name__ == "__main__":
    sys.exit(main())
