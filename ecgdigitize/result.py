"""Typed results of digitization: panels, calibration and :class:`DigitizedECG`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .record import ECGRecord

__all__ = ["Calibration", "DigitizedECG", "Panel"]


@dataclass(frozen=True)
class Panel:
    """One printed lead segment on the sheet.

    Attributes
    ----------
    lead : str
        Lead name (``"II"``...).
    box_px : tuple of float
        ``(x0, y0, x1, y1)`` of the panel in *working* image pixels (the
        rectified image, see :attr:`DigitizedECG.transform`).
    t0_s, t1_s : float
        Time window of the panel in record time, s.
    baseline_y_px : float
        Row of the 0 mV line in working pixels.
    row, col : int
        Position in the layout grid (0-based); rhythm strips have ``col = 0``.
    is_rhythm : bool
        True for a full-length rhythm strip.

    Examples
    --------
    >>> p = Panel("II", (10.0, 20.0, 410.0, 120.0), 0.0, 2.5, 70.0, row=1, col=0)
    >>> p.t1_s - p.t0_s, p.is_rhythm
    (2.5, False)
    """

    lead: str
    box_px: tuple[float, float, float, float]
    t0_s: float
    t1_s: float
    baseline_y_px: float
    row: int
    col: int
    is_rhythm: bool = False


@dataclass(frozen=True)
class Calibration:
    """Scale of the sheet.

    Attributes
    ----------
    px_per_mm_x, px_per_mm_y : float
        Pixels per millimetre of paper, horizontally and vertically, px/mm.
    speed_mm_per_s : float, default 25
        Paper speed (25 or 50 mm/s).
    gain_mm_per_mv : float, default 10
        Amplitude scale (5, 10 or 20 mm/mV).
    source : str, default "grid"
        Where the scale came from: ``"grid"``, ``"pulse"`` or ``"page"``.

    Examples
    --------
    >>> c = Calibration(8.0, 8.0, speed_mm_per_s=25.0, gain_mm_per_mv=10.0)
    >>> c.px_per_s, c.px_per_mv, c.source
    (200.0, 80.0, 'grid')
    """

    px_per_mm_x: float
    px_per_mm_y: float
    speed_mm_per_s: float = 25.0
    gain_mm_per_mv: float = 10.0
    source: str = "grid"

    @property
    def px_per_s(self) -> float:
        """Horizontal pixels per second."""
        return self.px_per_mm_x * self.speed_mm_per_s

    @property
    def px_per_mv(self) -> float:
        """Vertical pixels per millivolt."""
        return self.px_per_mm_y * self.gain_mm_per_mv


@dataclass(frozen=True, eq=False, repr=False)
class DigitizedECG(ECGRecord):
    """An :class:`~ecgdigitize.record.ECGRecord` plus how it was found on the sheet.

    Attributes
    ----------
    layout : str
        Detected layout: ``"3x4"``, ``"3x4+1"``, ``"3x4+3"``, ``"6x2"`` or ``"12x1"``.
    calibration : Calibration or None
        Scale found (px/mm in x and y, paper speed, gain).
    rotation_deg : float
        Rotation removed from the input, degrees counter-clockwise.
    transform : ndarray of shape (3, 3)
        Homography from input pixel coordinates to working pixel coordinates.
    working_shape : tuple of int
        ``(height, width)`` of the working (rectified) image in px.
    panels : tuple of Panel
        Every lead segment found.
    quality : mapping of str to float
        Per-lead quality score in [0, 1] (0 = not recovered).
    stage_times_s : mapping of str to float
        Wall time of each pipeline stage, s.
    warnings : tuple of str
        Problems met (lead not recovered, scale from fallback...).
    source : str or None
        Path of the input, when it was a file.
    extras : mapping of str to object
        Further stage-specific diagnostics.

    Examples
    --------
    >>> import numpy as np
    >>> ecg = DigitizedECG(np.zeros((5000, 12)), fs=500, layout="3x4",
    ...                    calibration=Calibration(8.0, 8.0), quality={"II": 0.9})
    >>> ecg.duration_s, ecg.layout, ecg.px_per_mm
    (10.0, '3x4', (8.0, 8.0))
    >>> type(ecg.to_record()).__name__
    'ECGRecord'
    """

    layout: str = "unknown"
    calibration: Calibration | None = None
    rotation_deg: float = 0.0
    transform: np.ndarray = field(default_factory=lambda: np.eye(3))
    working_shape: tuple[int, int] = (0, 0)
    panels: tuple[Panel, ...] = ()
    quality: Mapping[str, float] = field(default_factory=dict)
    stage_times_s: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def px_per_mm(self) -> tuple[float, float]:
        """``(x, y)`` pixels per millimetre, NaN if unknown."""
        if self.calibration is None:
            return (float("nan"), float("nan"))
        return (self.calibration.px_per_mm_x, self.calibration.px_per_mm_y)

    def plot_overlay(self, image: Any, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the recovered traces over ``image`` (see :func:`ecgdigitize.overlay.plot_overlay`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .overlay import plot_overlay

        return plot_overlay(image, self, ax, **kwargs)

    def to_record(self) -> ECGRecord:
        """Drop the diagnostics and return a plain :class:`ECGRecord`."""
        return ECGRecord(self.signal, self.fs, self.lead_names, self.name,
                         self.lead_info, self.comments)
