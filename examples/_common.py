"""Helpers shared by the example scripts: output folder, compact PNG figures, sample sheets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Default output folder of the examples: the figures the documentation shows.
DOCS_IMG = ROOT / "docs" / "img" / "examples"
#: One real reference sheet (git-ignored data; the examples skip it when absent).
REFERENCE_SHEET = (ROOT / "data" / "ecg-images" / "Normal Person ECG Images (284x12=3408)"
                   / "Normal(1).jpg")


#: Default folder of the examples' working files (sheets, records, caches, models); git-ignored.
WORK = ROOT / "out" / "examples"


def parser(doc: str | None, default_out: Path = DOCS_IMG) -> argparse.ArgumentParser:
    """An argument parser with the ``--out`` (figures) and ``--work`` (other files) folders."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    p.add_argument("--out", type=Path, default=default_out,
                   help=f"folder of the figures (default {default_out.relative_to(ROOT)})")
    p.add_argument("--work", type=Path, default=WORK,
                   help=f"folder of the working files (default {WORK.relative_to(ROOT)})")
    return p


def save_figure(fig: Any, path: Path, *, dpi: int = 90, colours: int = 96) -> Path:
    """Save a Matplotlib figure as a small palette PNG (docs figures stay well under 500 KB)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)
    buf.seek(0)
    im = Image.open(buf).convert("RGB")
    im = im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)
    return path


def sample_sheet(seed: int = 3, *, layout: str = "3x4+1", dpi: float = 200.0,
                 rotation_deg: float = 0.0, heart_rate: float = 70.0) -> Any:
    """A rendered sheet of a simulated 10 s 12-lead ECG, with its exact truth.

    A degraded scan when ``rotation_deg`` is not 0: skew, blur (1 px), noise (2 %) and
    JPEG (quality 70), the "degraded" variant of ``benchmarks/bench_digitize.py``.
    """
    from ecgdigitize.synth import Degradation, SheetStyle, render_sheet, simulate_record

    record = simulate_record(duration_s=10.0, fs=500.0, heart_rate=heart_rate, seed=seed)
    degradation = None
    if rotation_deg:
        degradation = Degradation(rotation_deg=rotation_deg, blur_sigma_px=1.0,
                                  gaussian_noise_std=0.02, jpeg_quality=70)
    return render_sheet(record, layout, SheetStyle(dpi=dpi), degradation, seed=seed)


def warp_to_working(image: np.ndarray, result: Any) -> np.ndarray:
    """The input image seen in the working frame of a :class:`DigitizedECG` (its rectified image)."""
    import cv2

    h, w = result.working_shape
    return cv2.warpPerspective(np.ascontiguousarray(image[..., :3]),
                               np.asarray(result.transform, float), (w, h),
                               borderValue=(255, 255, 255))
