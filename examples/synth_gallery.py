"""Render the docs' sheet gallery: record E07500 in several layouts and styles beside a real sheet.

Run: ``python -m examples.synth_gallery`` (needs ../shared/data; writes PNGs to docs/img/synth/).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from ecgdigitize.synth import Degradation, SheetStyle, load_record, render_sheet

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT.parent / "shared" / "data" / "ecg-records" / "E07500"
REAL = ROOT / "data" / "ecg-images" / "Normal Person ECG Images (284x12=3408)" / "Normal(1).jpg"
OUT = ROOT / "docs" / "img" / "synth"


def _save(im: Image.Image, name: str, width: int, colours: int) -> None:
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS).convert("RGB")
    im = im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path = OUT / name
    im.save(path, optimize=True)
    print(path, im.size, path.stat().st_size // 1024, "KB")


def main() -> int:
    if not RECORD.with_suffix(".hea").exists():
        print(f"record not found: {RECORD}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    rec = load_record(RECORD)
    ref = Image.fromarray(render_sheet(rec, "3x4+1", SheetStyle.reference()).image)
    _save(ref, "E07500_3x4p1_reference_style.png", 1200, 64)
    green = SheetStyle(grid_colour="green", grid_pattern="solid")
    _save(Image.fromarray(render_sheet(rec, "6x2", green).image), "E07500_6x2_green.png", 1200, 64)
    grey = SheetStyle(grid_colour="grey")
    _save(Image.fromarray(render_sheet(rec, "12x1", grey).image), "E07500_12x1_grey.png", 1200, 64)
    photo = render_sheet(rec, "3x4+1", SheetStyle.reference(), Degradation.photo(rotation_deg=3.0),
                         seed=3).image
    _save(Image.fromarray(photo), "E07500_3x4p1_photo.png", 1100, 40)
    if REAL.exists():
        real = Image.open(REAL).convert("RGB")
        _save(real, "real_reference_sheet.png", 1100, 32)
        a = real.resize((600, round(600 * real.height / real.width)), Image.LANCZOS)
        both = Image.new("RGB", (1200, a.height), "white")
        both.paste(a, (0, 0))
        both.paste(ref.resize(a.size, Image.LANCZOS), (600, 0))
        _save(both, "real_vs_synthetic.png", 1200, 64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
