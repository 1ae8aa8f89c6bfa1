"""Stress matrix of the whole digitizer over sheet looks it was not tuned on.

Each case draws one value of every factor at random (seeded): layout, paper
speed (25/50 mm/s), gain (5/10/20 mm/mV), resolution (100-300 dpi), grid look
(red/pink/green/grey, solid/dotted, faint, none), column separators,
degradation (clean, rotation up to +-10 deg, phone photo, scan) and one
perturbation the renderer cannot make, applied with NumPy/OpenCV to the
rendered image (thicker/thinner traces, blue trace ink, uneven illumination,
a crease warp, cropped margins, extra text blocks). :func:`ecgdigitize.digitize`
runs with its defaults (nothing forced, speed and gain detected) and is
scored against the render's truth.

Reported per group: layout correct, px/mm error (%), speed and gain correct,
leads recovered (quality >= min_quality, of 12), mean SNR (dB,
:func:`ecgdigitize.metrics.score_record`), time (s). Failures are listed.

Run from the repository root::

    nice -n 10 python -m benchmarks.bench_generality [--cases 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks.runner import Table
from ecgdigitize import digitize
from ecgdigitize.errors import ECGError
from ecgdigitize.metrics import score_record
from ecgdigitize.synth import Degradation, SheetStyle, load_record, render_sheet, simulate_record
from ecgdigitize.synth.degrade import local_scale

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT.parent / "shared" / "data" / "ecg-records"
LAYOUTS = ("3x4", "3x4+1", "3x4+3", "6x2", "12x1")
LOOKS = {
    "red": {},
    "pink-dotted": {"grid_colour": "pink", "grid_pattern": "dotted"},
    "green-dotted": {"grid_colour": "green", "grid_pattern": "dotted"},
    "grey-faint": {"grid_colour": "grey", "minor_alpha": 0.3},
    "orange": {"grid_colour": (245, 160, 80)},
    "none": {"grid_colour": "none"},
}
DEGRADATIONS = ("clean", "rotated", "photo", "scan")


# --- perturbations the renderer does not make ------------------------------------------
def _dark(img: np.ndarray) -> np.ndarray:
    return img.max(axis=2) < 90


def thick(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trace ink dilated by one pixel (a heavier pen)."""
    grown = cv2.dilate(_dark(img).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    out = img.copy()
    out[grown] = np.minimum(out[grown], 20)
    return out


def thin(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trace ink lightened at its edges (a fine pen / light toner)."""
    gray = img.min(axis=2)
    light = cv2.erode(255 - gray, np.ones((2, 2), np.uint8))
    out = img.copy()
    ink = _dark(img)
    out[ink] = np.clip(255 - light[ink], 0, 255)[:, None]
    return out


def blue_ink(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Black ink printed in dark blue."""
    out = img.astype(np.float32)
    a = (1 - img.max(axis=2) / 255.0)[..., None]
    out = out * (1 - a) + a * np.array([20, 40, 150], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def illumination(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A strong light fall-off from one corner plus a soft shadow band."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    d = np.hypot(xx - cx, yy - cy) / np.hypot(w, h)
    gain = 1.0 - 0.45 * d
    band = rng.uniform(0.2, 0.8) * w
    gain *= 1.0 - 0.2 * np.exp(-((xx - band) / (0.08 * w)) ** 2)
    return np.clip(img * gain[..., None], 0, 255).astype(np.uint8)


def crease(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fold across the page: a smooth vertical warp (up to ~1.5 mm) and a shadow line."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x_fold = rng.uniform(0.3, 0.7) * w
    amp = 0.006 * h
    dy = amp * np.tanh((xx - x_fold) / (0.05 * w)) + 0.4 * amp * np.sin(2 * np.pi * yy / h)
    out = cv2.remap(img, xx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    shade = 1.0 - 0.25 * np.exp(-((xx - x_fold) / 6.0) ** 2)
    return np.clip(out * shade[..., None], 0, 255).astype(np.uint8)


def crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Margins cut off: the header and some paper on each side (grid kept)."""
    h, w = img.shape[:2]
    top, left = int(rng.uniform(0.05, 0.12) * h), int(rng.uniform(0.0, 0.02) * w)
    return img[top:h - int(0.03 * h), left:w - int(0.015 * w)].copy()


def text_blocks(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Patient data / interpretation text above the grid and a stamp on it."""
    out = img.copy()
    h, w = img.shape[:2]
    scale = h / 1700.0
    for i in range(4):
        cv2.putText(out, f"Name: DOE, JOHN  ID {1234 + i}  HR 72 bpm  QRS 96 ms  QT/QTc 380/410",
                    (int(0.05 * w), int((40 + 38 * i) * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.9 * scale, (0, 0, 0), max(1, int(2 * scale)))
    cv2.putText(out, "CONFIRMED", (int(0.55 * w), int(0.5 * h)), cv2.FONT_HERSHEY_DUPLEX,
                2.0 * scale, (40, 40, 160), max(1, int(3 * scale)))
    return out


PERTURBATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray] | None] = {
    "none": None, "thick": thick, "thin": thin, "blue-ink": blue_ink,
    "illumination": illumination, "crease": crease, "crop": crop, "text": text_blocks,
}


# --- cases ------------------------------------------------------------------------------
def draw_cases(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    cases = []
    for i in range(n):
        cases.append({
            "i": i, "layout": LAYOUTS[i % len(LAYOUTS)], "speed": pick((25.0, 25.0, 50.0)),
            "gain": pick((5.0, 10.0, 10.0, 20.0)), "dpi": pick((100, 150, 200, 300)),
            "look": pick(list(LOOKS)), "separators": pick(("tick", "full", "none")),
            "degradation": pick(DEGRADATIONS), "perturbation": pick(list(PERTURBATIONS)),
            "rotation": float(rng.uniform(-10, 10)), "seed": int(rng.integers(1 << 16)),
        })
    return cases


def _degradation(kind: str, rotation: float, dpi: float) -> Degradation:
    if kind == "rotated":
        return Degradation(rotation_deg=rotation, blur_sigma_px=0.6, gaussian_noise_std=0.02,
                           jpeg_quality=75)
    if kind == "photo":
        return Degradation.photo(rotation_deg=rotation / 3)
    if kind == "scan":  # half resolution, but not below 100 dpi
        return Degradation.scan(downscale=max(1.0, min(2.0, dpi / 100)))
    return Degradation()


def run_case(case: dict, records: list[Path]) -> dict[str, float | str]:
    rng = np.random.default_rng(case["seed"])
    if records:
        record = load_record(records[case["seed"] % len(records)])
    else:
        record = simulate_record(seed=case["seed"], heart_rate=float(rng.uniform(50, 110)))
    style = SheetStyle(dpi=case["dpi"], speed_mm_per_s=case["speed"], gain_mm_per_mv=case["gain"],
                       separators=case["separators"], **LOOKS[case["look"]])
    sheet = render_sheet(record, case["layout"], style,
                         _degradation(case["degradation"], case["rotation"], case["dpi"]), seed=case["seed"])
    img = sheet.image
    perturb = PERTURBATIONS[case["perturbation"]]
    if perturb is not None:
        img = perturb(img, rng)
    t0 = time.perf_counter()
    out: dict[str, float | str] = {"error": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = digitize(img)
    except ECGError as exc:
        out.update(layout_ok=0.0, ppm_err_pct=float("nan"), speed_ok=0.0, gain_ok=0.0,
                   leads=0.0, snr_db=float("nan"), time_s=time.perf_counter() - t0,
                   error=type(exc).__name__)
        return out
    elapsed = time.perf_counter() - t0
    t = sheet.truth
    scores = score_record(t.reference, res)
    cal = res.calibration
    # true scale of the working image: sheet -> input (truth) -> working (result)
    box = t.grid_box_px
    sx, sy = local_scale(np.asarray(res.transform) @ t.transform,
                         ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
    true_x, true_y = t.sheet_px_per_mm * sx, t.sheet_px_per_mm * sy
    out.update(
        layout_ok=float(res.layout == case["layout"]),
        ppm_err_pct=100 * max(abs(cal.px_per_mm_x / true_x - 1), abs(cal.px_per_mm_y / true_y - 1)),
        speed_ok=float(cal.speed_mm_per_s == case["speed"]),
        gain_ok=float(cal.gain_mm_per_mv == case["gain"]),
        leads=float(sum(q >= 0.35 for q in res.quality.values())),
        snr_db=float(scores.attrs["mean_snr_db"]), time_s=elapsed, error=res.layout)
    return out


def _summary(every: list[dict[str, float]]) -> None:
    """Rates over all cases (each case counted once)."""
    def rate(ok: list[bool]) -> str:
        return f"{100 * np.mean(ok):.1f} %" if ok else "-"
    err = np.array([m["ppm_err_pct"] for m in every])
    snr = np.array([m["snr_db"] for m in every])
    print(f"\n{len(every)} cases: layout correct {rate([m['layout_ok'] == 1 for m in every])}, "
          f"px/mm within 2 % {rate([bool(e <= 2) for e in err])}, "
          f"speed correct {rate([m['speed_ok'] == 1 for m in every])}, "
          f"gain correct {rate([m['gain_ok'] == 1 for m in every])}, "
          f"12 leads {rate([m['leads'] == 12 for m in every])}, "
          f"no exception {rate([bool(np.isfinite(e)) for e in err])}; "
          f"SNR median {np.nanmedian(snr):.1f} dB (p5 {np.nanpercentile(snr, 5):.1f}); "
          f"time median {np.median([m['time_s'] for m in every]):.2f} s, "
          f"p95 {np.percentile([m['time_s'] for m in every], 95):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated case indices")
    args = parser.parse_args()
    records = sorted(RECORDS.glob("*.hea")) if RECORDS.is_dir() else []
    records = [p.with_suffix("") for p in records]
    cases = draw_cases(args.cases, args.seed)
    if args.only:
        keep = {int(v) for v in args.only.split(",")}
        cases = [c for c in cases if c["i"] in keep]
    table = Table("bench_generality")
    failures, every = [], []
    for case in cases:
        m = run_case(case, records)
        note = str(m.pop("error"))
        nums = {k: float(v) for k, v in m.items()}
        every.append(nums)
        for key in ("layout", "look", "degradation", "perturbation"):
            table.add(f"{key}={case[key]}", **nums)
        table.add(f"speed={case['speed']:g}", **nums)
        table.add("all", **nums)
        bad = [k for k in ("layout_ok", "speed_ok", "gain_ok") if nums[k] < 1]
        if bad or nums["ppm_err_pct"] > 2 or nums["leads"] < 12 or not nums["snr_db"] > 10:
            failures.append((case, nums, note, bad))
    table.print()
    _summary(every)
    print(f"\n{len(failures)} of {len(cases)} cases with a failure:")
    for case, nums, note, bad in failures:
        desc = ", ".join(f"{k}={case[k]}" for k in ("i", "layout", "speed", "gain", "dpi", "look",
                                                    "separators", "degradation", "perturbation"))
        print(f"  {desc}: got {note}; {'/'.join(bad) or '-'} ppm_err={nums['ppm_err_pct']:.1f}% "
              f"leads={nums['leads']:.0f} snr={nums['snr_db']:.1f} dB")
    print("saved", table.save())


if __name__ == "__main__":
    main()
