"""Look of a synthetic ECG sheet: :class:`SheetStyle` and its presets.

Every length is in millimetres of paper (``*_mm``) or in pixels of the
rendered image (``*_px``); colours are RGB tuples of 0-255 integers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigurationError

__all__ = ["GRID_COLOURS", "SheetStyle"]

RGB = tuple[int, int, int]

#: Grid colour presets: major-line colour; minor lines use ``minor_alpha`` of it.
GRID_COLOURS: dict[str, RGB | None] = {
    "red": (232, 90, 90),
    "pink": (240, 150, 160),
    "green": (90, 180, 110),
    "grey": (150, 150, 150),
    "none": None,
}

_US_LETTER_LANDSCAPE_MM = (279.4, 215.9)


@dataclass(frozen=True)
class SheetStyle:
    """How a sheet is drawn (scale, page, grid, trace, text).

    Parameters
    ----------
    speed_mm_per_s : float, default 25
        Paper speed (25 or 50 mm/s). The page widens when 10 s do not fit.
    gain_mm_per_mv : float, default 10
        Amplitude scale (5, 10 or 20 mm/mV).
    dpi : float, default 200
        Resolution; ``px_per_mm = dpi / 25.4``. 100 to 600.
    page_mm : (float, float), default (279.4, 215.9)
        Page width and height in mm (US letter, landscape: 2200x1700 px at 200 dpi).
    margins_mm : (float, float, float, float), default (6, 30, 6, 14)
        Left, top, right, bottom margins around the grid area, mm.
    grid_colour : str or (int, int, int), default "red"
        A key of :data:`GRID_COLOURS` ("red", "pink", "green", "grey", "none") or RGB.
    grid_pattern : {"solid", "dotted"}, default "solid"
        Solid lines, or dots at 1 mm intersections with dotted 5 mm lines.
    minor_line_px, major_line_px : float, default 1.0 and 2.0
        Grid line widths (solid pattern) or dot sizes (dotted pattern), px.
    dot_spacing_mm : float, default 0.5
        Spacing of the dots along the 5 mm lines of the dotted pattern, mm.
    minor_alpha : float, default 0.5
        Opacity of the 1 mm lines relative to the 5 mm lines.
    grid_frame : bool, default False
        Draw a rectangle (grid colour, ``frame_px`` wide) around the grid area.
    frame_px : float, default 3.0
        Width of that rectangle, px.
    trace_colour : (int, int, int), default black
        Colour of traces and calibration pulses.
    trace_width_px : float, default 2.0
        Trace width in px (ignored when ``trace_width_mm`` is set).
    trace_width_mm : float or None, default None
        Trace width in mm of paper.
    calibration_pulse : bool, default True
        Draw a 1 mV pulse at the start of each row.
    pulse_width_s : float, default 0.2
        Duration of the pulse's top, s.
    lead_in_mm : float, default 12.0
        Blank space before the first column, holding the pulse, mm.
    lead_labels : bool, default True
        Print the lead name at the start of each panel.
    label_size_mm : float, default 3.5
        Height of the label font, mm.
    separators : {"tick", "full", "none"}, default "tick"
        Short bars across the baseline between columns, full-height thin lines
        (as on the reference sheets) or nothing.
    header_text, footer_text : str or None
        Text above and below the grid. ``footer_text=None`` prints the scale,
        e.g. ``"25mm/s  10mm/mV"``; ``""`` prints nothing. The first header
        line is a centred title; a double rule follows the header.
    footer_right_text : str, default ""
        Text at the right end of the footer line (e.g. a date).
    font : {"sans", "serif"}, default "sans"
        DejaVu font family shipped with matplotlib.
    text_colour, background : RGB
        Colour of text/separators and of the paper.
    baseline_frac : float, default 0.55
        Position of the 0 mV line inside its row, from the top (0..1).
    row_pitch_mm : float or None, default None
        Height of each row, mm; None shares the grid height equally between rows.
    supersample : int, default 2
        Traces are drawn on a canvas this many times larger and averaged down
        (anti-aliasing with sub-pixel accuracy).

    Examples
    --------
    >>> style = SheetStyle(dpi=100, grid_colour="green")
    >>> round(style.px_per_mm, 3)
    3.937
    >>> SheetStyle.reference().image_size_px
    (2213, 1572)
    """

    speed_mm_per_s: float = 25.0
    gain_mm_per_mv: float = 10.0
    dpi: float = 200.0
    page_mm: tuple[float, float] = _US_LETTER_LANDSCAPE_MM
    margins_mm: tuple[float, float, float, float] = (6.0, 30.0, 6.0, 14.0)
    grid_colour: str | RGB = "red"
    grid_pattern: str = "solid"
    minor_line_px: float = 1.0
    major_line_px: float = 2.0
    dot_spacing_mm: float = 0.5
    minor_alpha: float = 0.5
    grid_frame: bool = False
    frame_px: float = 3.0
    trace_colour: RGB = (0, 0, 0)
    trace_width_px: float = 2.0
    trace_width_mm: float | None = None
    calibration_pulse: bool = True
    pulse_width_s: float = 0.2
    lead_in_mm: float = 12.0
    lead_labels: bool = True
    label_size_mm: float = 3.5
    separators: str = "tick"
    header_text: str = ""
    footer_text: str | None = None
    footer_right_text: str = ""
    font: str = "sans"
    text_colour: RGB = (0, 0, 0)
    background: RGB = (255, 255, 255)
    baseline_frac: float = 0.55
    row_pitch_mm: float | None = None
    supersample: int = 2

    def __post_init__(self) -> None:
        _check(self.speed_mm_per_s > 0, "speed_mm_per_s must be > 0", self.speed_mm_per_s)
        _check(self.gain_mm_per_mv > 0, "gain_mm_per_mv must be > 0", self.gain_mm_per_mv)
        _check(50 <= self.dpi <= 1200, "dpi must be within 50..1200", self.dpi)
        _check(self.grid_pattern in ("solid", "dotted"),
               "grid_pattern must be 'solid' or 'dotted'", self.grid_pattern)
        _check(self.separators in ("tick", "full", "none"),
               "separators must be 'tick', 'full' or 'none'", self.separators)
        _check(self.font in ("sans", "serif"), "font must be 'sans' or 'serif'", self.font)
        _check(1 <= int(self.supersample) <= 4, "supersample must be 1..4", self.supersample)
        _check(0.0 < self.baseline_frac < 1.0, "baseline_frac must be in (0, 1)",
               self.baseline_frac)
        if isinstance(self.grid_colour, str):
            _check(self.grid_colour in GRID_COLOURS,
                   f"grid_colour must be one of {sorted(GRID_COLOURS)} or RGB", self.grid_colour)

    # --- derived values ------------------------------------------------------
    @property
    def px_per_mm(self) -> float:
        """Pixels per mm of paper (``dpi / 25.4``)."""
        return self.dpi / 25.4

    @property
    def image_size_px(self) -> tuple[int, int]:
        """``(width, height)`` of the page in px, before any widening for 10 s."""
        return (round(self.page_mm[0] * self.px_per_mm), round(self.page_mm[1] * self.px_per_mm))

    @property
    def grid_rgb(self) -> RGB | None:
        """Major grid colour as RGB, or None for no grid."""
        if isinstance(self.grid_colour, str):
            return GRID_COLOURS[self.grid_colour]
        return tuple(int(c) for c in self.grid_colour)  # type: ignore[return-value]

    @property
    def trace_px(self) -> float:
        """Trace width in px."""
        if self.trace_width_mm is not None:
            return float(self.trace_width_mm) * self.px_per_mm
        return float(self.trace_width_px)

    def replace(self, **changes: Any) -> SheetStyle:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    # --- presets -------------------------------------------------------------
    @classmethod
    def reference(cls, **changes: Any) -> SheetStyle:
        """Imitate the "ECG Images dataset of Cardiac Patients" sheets.

        2213x1572 px at 200 dpi (7.87 px/mm), dotted pink grid with denser
        dotted 5 mm lines inside a pink frame at x = 68-2176, y = 283-1517 px,
        black 3 px traces, thin full-height column separators, serif labels,
        an "ECG REPORT" header and the machine's footer line.
        """
        ppm = 200 / 25.4
        page = (2213 / ppm, 1572 / ppm)
        margins = (68 / ppm, 283 / ppm, page[0] - 2176 / ppm, page[1] - 1517 / ppm)
        base = cls(
            dpi=200.0, page_mm=page, margins_mm=margins, grid_colour="pink",
            grid_pattern="dotted", minor_line_px=1.4, major_line_px=1.0, minor_alpha=1.0,
            dot_spacing_mm=0.25,
            grid_frame=True, frame_px=3.0, trace_width_px=3.0, pulse_width_s=0.07,
            lead_in_mm=10.7, label_size_mm=2.8, separators="full", font="serif",
            header_text=_REFERENCE_HEADER,
            footer_text="0.67~25Hz  AC50  25mm/s  10mm/mV  4*2.5s+1r  \u266570  SE-3 V1.0  "
                        "SEMIP V1.7",
            footer_right_text="2020-08-05   11:02:38 PM",
            baseline_frac=0.6, row_pitch_mm=301 / ppm,
        )
        return base.replace(**changes) if changes else base


_REFERENCE_HEADER = (
    "ECG REPORT\n"
    "ID : 000000        Years      Male       cm        kg        /     mmHg     "
    "Race:Unknown     Room No.:        Department:\n"
    "Exam.Room:      Medication:"
)


def _check(ok: bool, message: str, value: object) -> None:
    if not ok:
        raise ConfigurationError(f"{message}; got {value!r}")
