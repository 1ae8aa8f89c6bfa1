"""Synthetic ECG sheets with exact ground truth, for testing and benchmarking.

>>> from ecgdigitize.synth import render_sheet, simulate_record, SheetStyle
>>> sheet = render_sheet(simulate_record(), "3x4+1", SheetStyle(dpi=100))
>>> sheet.truth.reference.lead("I")[:3].round(3).tolist() != []
True

:func:`render_sheet` draws a :class:`~ecgdigitize.record.ECGRecord` in one of
the standard layouts with a :class:`SheetStyle` (grid, scale, trace, text) and
optional :class:`Degradation` (rotation, perspective, blur, noise, JPEG...).
``python -m ecgdigitize.synth --help`` renders sheets from the command line.
"""

from __future__ import annotations

from .degrade import Degradation, apply_homography, degrade
from .layouts import LAYOUTS, Cell, layout_cells
from .render import RenderedSheet, SheetTruth, render_sheet
from .signals import load_record, simulate_record
from .style import GRID_COLOURS, SheetStyle

__all__ = [
    "GRID_COLOURS",
    "LAYOUTS",
    "Cell",
    "Degradation",
    "RenderedSheet",
    "SheetStyle",
    "SheetTruth",
    "apply_homography",
    "degrade",
    "layout_cells",
    "load_record",
    "render_sheet",
    "simulate_record",
]
