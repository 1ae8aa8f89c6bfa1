"""Command line: render synthetic ECG sheets with their ground truth.

Examples
--------
Render one record in the reference style, tilted and compressed::

    python -m ecgdigitize.synth ../shared/data/ecg-records/E07500 --layout 3x4+1 \\
        --style reference --rotate 3 --noise 0.02 --jpeg 60 -o out.png --truth out.json

Render a simulated record (``sim`` or ``sim:SEED``) in every layout and with
every degradation, one sheet each::

    python -m ecgdigitize.synth sim:0 --gallery gallery/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ECGError
from ..record import ECGRecord
from .degrade import Degradation
from .layouts import LAYOUTS
from .render import RenderedSheet, render_sheet
from .signals import load_record, simulate_record
from .style import GRID_COLOURS, SheetStyle

#: One sheet per defect in ``--gallery``.
GALLERY_DEGRADATIONS: dict[str, Degradation] = {
    "rotation": Degradation(rotation_deg=3.0),
    "perspective": Degradation(perspective=0.04),
    "blur": Degradation(blur_sigma_px=1.5),
    "noise": Degradation(gaussian_noise_std=0.05),
    "salt_pepper": Degradation(salt_pepper_fraction=0.01),
    "jpeg": Degradation(jpeg_quality=25),
    "shading": Degradation(shading=0.5),
    "colour_cast": Degradation(colour_cast=0.3),
    "downscale": Degradation(downscale=2.0),
    "photo": Degradation.photo(),
    "scan": Degradation.scan(),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ecgdigitize.synth``."""
    p = argparse.ArgumentParser(
        prog="python -m ecgdigitize.synth",
        description="Render a 12-lead record as a paper ECG sheet (PNG/JPEG) and write its "
                    "exact ground truth (px/mm, panels, layout, transform) as JSON.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("record", help="WFDB record path (with or without .hea), or 'sim[:SEED]' "
                                  "for a NeuroKit2-simulated record")
    p.add_argument("--layout", default="3x4+1", help=f"one of {', '.join(LAYOUTS)}")
    p.add_argument("--rhythm", default=None, help="comma-separated rhythm leads, e.g. II or II,V1,V5")
    p.add_argument("--style", choices=("default", "reference"), default="default",
                   help="base style: plain red grid, or imitation of the reference sheets")
    p.add_argument("--grid", choices=sorted(GRID_COLOURS), default=None, help="grid colour")
    p.add_argument("--pattern", choices=("solid", "dotted"), default=None, help="grid pattern")
    p.add_argument("--speed", type=float, default=None, help="paper speed, mm/s (25 or 50)")
    p.add_argument("--gain", type=float, default=None, help="amplitude scale, mm/mV (5, 10, 20)")
    p.add_argument("--dpi", type=float, default=None, help="resolution, dots per inch")
    p.add_argument("--trace-width", type=float, default=None, help="trace width, px")
    g = p.add_argument_group("degradations (all off by default)")
    g.add_argument("--preset", choices=("photo", "scan"), default=None,
                   help="start from a preset degradation")
    g.add_argument("--rotate", type=float, default=None, help="rotation, degrees CCW")
    g.add_argument("--perspective", type=float, default=None, help="max corner shift, fraction")
    g.add_argument("--blur", type=float, default=None, help="Gaussian blur sigma, px")
    g.add_argument("--noise", type=float, default=None, help="Gaussian noise std, fraction of 255")
    g.add_argument("--salt-pepper", type=float, default=None, help="fraction of pixels")
    g.add_argument("--jpeg", type=int, default=None, help="JPEG quality 1-100")
    g.add_argument("--shading", type=float, default=None, help="uneven lighting strength 0-1")
    g.add_argument("--colour-cast", type=float, default=None, help="colour cast strength 0-1")
    g.add_argument("--downscale", type=float, default=None, help="shrink factor (2 = half size)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("-o", "--output", default="sheet.png", help="image to write")
    p.add_argument("--truth", default=None, help="ground-truth JSON to write")
    p.add_argument("--truth-traces", action="store_true", help="include trace polylines in JSON")
    p.add_argument("--gallery", default=None, metavar="DIR",
                   help="render every layout and every degradation into DIR instead")
    return p


def _record(spec: str) -> ECGRecord:
    if spec == "sim" or spec.startswith("sim:"):
        return simulate_record(seed=int(spec[4:] or 0) if ":" in spec else 0)
    return load_record(spec)


def _style(args: argparse.Namespace) -> SheetStyle:
    style = SheetStyle.reference() if args.style == "reference" else SheetStyle()
    changes = {"grid_colour": args.grid, "grid_pattern": args.pattern,
               "speed_mm_per_s": args.speed, "gain_mm_per_mv": args.gain, "dpi": args.dpi,
               "trace_width_px": args.trace_width}
    return style.replace(**{k: v for k, v in changes.items() if v is not None})


def _degradation(args: argparse.Namespace) -> Degradation:
    base = {"photo": Degradation.photo(), "scan": Degradation.scan()}.get(args.preset,
                                                                           Degradation())
    changes = {"rotation_deg": args.rotate, "perspective": args.perspective,
               "blur_sigma_px": args.blur, "gaussian_noise_std": args.noise,
               "salt_pepper_fraction": args.salt_pepper, "jpeg_quality": args.jpeg,
               "shading": args.shading, "colour_cast": args.colour_cast,
               "downscale": args.downscale}
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


def write_sheet(sheet: RenderedSheet, image_path: str | Path, truth_path: str | Path | None,
                *, include_traces: bool = False) -> None:
    """Write a rendered sheet's image and (optionally) its truth JSON."""
    from PIL import Image

    image_path = Path(image_path)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet.image).save(image_path)
    if truth_path is not None:
        payload = sheet.truth.to_dict(include_traces=include_traces)
        payload["record"] = sheet.truth.reference.name
        Path(truth_path).write_text(json.dumps(payload, indent=1))


def _gallery(record: ECGRecord, out_dir: Path, style: SheetStyle, seed: int) -> list[Path]:
    written = []
    for layout in LAYOUTS:
        path = out_dir / f"layout_{layout.replace('+', 'p')}.png"
        write_sheet(render_sheet(record, layout, style, seed=seed), path,
                    path.with_suffix(".json"))
        written.append(path)
    for name, deg in GALLERY_DEGRADATIONS.items():
        path = out_dir / f"degrade_{name}.png"
        write_sheet(render_sheet(record, "3x4+1", style, deg, seed=seed), path,
                    path.with_suffix(".json"))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        record = _record(args.record)
        style = _style(args)
        if args.gallery:
            paths = _gallery(record, Path(args.gallery), style, args.seed)
            sys.stdout.write(f"wrote {len(paths)} sheets to {args.gallery}\n")
            return 0
        rhythm = tuple(args.rhythm.split(",")) if args.rhythm else None
        sheet = render_sheet(record, args.layout, style, _degradation(args), seed=args.seed,
                             rhythm_leads=rhythm)
        write_sheet(sheet, args.output, args.truth, include_traces=args.truth_traces)
    except ECGError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
