"""The one configuration object of the digitizer: :class:`DigitizeConfig`.

Every tunable parameter of :func:`ecgdigitize.digitize` lives here, with its
unit and default, and is passed down to the stages (never as ``**kwargs``).

Examples
--------
>>> from ecgdigitize.config import DigitizeConfig
>>> cfg = DigitizeConfig(fs=250, notch_hz=60)
>>> cfg.fs, cfg.speed_mm_per_s, cfg.notch_hz
(250.0, None, 60.0)
>>> cfg.replace(fs=500).fs
500.0
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import ConfigurationError
from .io import DEFAULT_MAX_PIXELS

__all__ = ["FITTED_SMOOTH_PX", "KNOWN_GAINS_MM_PER_MV", "KNOWN_LAYOUTS", "KNOWN_SPEEDS_MM_PER_S",
           "SMOOTH_PX", "DigitizeConfig"]

#: Paper speeds the digitizer recognises, mm/s.
KNOWN_SPEEDS_MM_PER_S: tuple[float, ...] = (25.0, 50.0)
#: Amplitude scales the digitizer recognises, mm/mV.
KNOWN_GAINS_MM_PER_MV: tuple[float, ...] = (5.0, 10.0, 20.0)
#: Layout names the digitizer recognises.
KNOWN_LAYOUTS: tuple[str, ...] = ("3x4", "3x4+1", "3x4+3", "6x2", "12x1")
_PEAK_MODES = ("hybrid", "midpoint")

#: Reconstruction low-pass of the calibration stage, Gaussian sigma in pixels of the time
#: axis (1.3 ms at 200 dpi and 25 mm/s: -5 % at 40 Hz). On renders it removed the
#: sample-to-sample jitter of the points read from the ink: at 200 dpi +0.45 dB mean SNR on
#: clean sheets and +0.55 dB on degraded ones (10 records), +0.2 to +0.4 dB at 100, 150 and
#: 300 dpi (5 records each); 0.2-0.28 px did best at every resolution, and 0.6 px scored
#: 0.8-2.1 dB below no smoothing.
SMOOTH_PX = 0.25
#: The same low-pass for traces fitted to the ink (``fit_ink``), px: the fit leaves less
#: jitter to remove. On the 51 clean renders at 200 dpi 0.2 px gave +0.15 dB mean SNR
#: over 0.25 px (0.15 px about the same); the unfitted readings of the degraded renders
#: lost 0.18 dB at 0.2 px, so they keep :data:`SMOOTH_PX`.
FITTED_SMOOTH_PX = 0.2


@dataclass(frozen=True)
class DigitizeConfig:
    """Parameters of :func:`ecgdigitize.digitize`.

    Parameters
    ----------
    fs : float, default 500
        Sampling rate of the output signal, Hz.
    speed_mm_per_s : float or None, default None
        Paper speed, mm/s (25 or 50). ``None``: detected by the layout stage
        from the printed length of a row, which shows 10 s on every standard
        layout (about 250 mm at 25 mm/s, 500 mm at 50 mm/s); 25 when unsure.
        A sheet that prints only 5 s per row at 50 mm/s is read as 10 s at
        25 mm/s: set the speed for such sheets; with a given speed, a row whose
        length is 5 s at that speed is read as 5 s
        (:func:`~ecgdigitize.layout.row_duration`), and the signal's last 5 s
        are NaN.
    gain_mm_per_mv : float or None, default None
        Amplitude scale (5, 10 or 20 mm/mV). ``None``: from the height of the
        1 mV calibration pulse when one is found, else 10.
    layout : str or None, default None
        Force a layout ("3x4", "3x4+1", "3x4+3", "6x2", "12x1"); ``None`` = detect.
    duration_s : float, default 10
        Length of the recording shown on the sheet, s.
    remove_baseline : bool, default False
        High-pass the output at ``baseline_cutoff_hz`` (see
        :func:`ecgdigitize.clean.remove_baseline_wander`).
    baseline_cutoff_hz : float, default 0.5
        Corner of that high-pass filter, Hz.
    notch_hz : float or None, default None
        Mains frequency to notch out (50 or 60 Hz); ``None`` = no notch.
    max_pixels : int, default DEFAULT_MAX_PIXELS
        Larger inputs are refused before decoding (decompression-bomb guard).
    jump_cost : float, default 0.15
        Trace tracking: cost per pixel of vertical jump across *paper* (a jump
        along ink is nearly free, so steep QRS edges cost nothing).
    slope_cost : float, default 0.01
        Trace tracking: cost per pixel of any vertical move (keeps the path
        from sliding along text or separator lines).
    prior_weight : float, default 6.0
        Trace tracking: strength of the pull towards the panel's own baseline,
        applied beyond half a row spacing (keeps a trace off its neighbours).
    peak_mode : {"hybrid", "midpoint"}, default "hybrid"
        How the line centre is read from the vertical run of ink the path
        crosses in each pixel column: "midpoint" takes each run's middle;
        "hybrid" the middle, the run's extreme at apexes and nadirs, and the
        row-by-row centre of steep strokes (sharp QRS kept).
    drop_labels : bool, default True
        Remove ink blobs lying wholly inside each panel's label zone (lead
        names) before tracing.
    max_gap_s : float, default 0.08
        Gaps without ink longer than this stay NaN; shorter ones are interpolated.
    min_quality : float, default 0.35
        Leads whose quality score (0-1) is lower are returned as NaN with a warning.
    smooth_px : float or None, default None
        Reconstruction low-pass of the output, Gaussian sigma in pixels of the
        time axis (see :func:`ecgdigitize.calibrate.trace_to_samples`); 0 = off.
        None: :data:`FITTED_SMOOTH_PX` where the traces were fitted to the ink,
        else :data:`SMOOTH_PX`.
    fit_ink : bool, default True
        Refine every trace by fitting a line of the measured pen width to the
        ink (model-based reading, module ``ecgdigitize._inkfit``): QRS strokes
        placed more exactly in time than by the column-by-column reading alone
        (+1.0 dB mean SNR on clean renders); about 0.15 s per 200 dpi sheet.
        Skipped where the ink's edges are blurred wider than 2 px, and with
        ``peak_mode="midpoint"``.
    lattice_min_mm : float or None, default 0.25
        Perspective left after the page outline (and a fold or curl of the
        page) is removed with a fit to the printed grid lattice
        (:func:`ecgdigitize.lattice.refine_by_lattice`) when that would move
        some part of the grid by more than this, mm; ``None`` switches the
        refinement off.
    fuse_limb_leads : bool, default True
        Replace the six limb leads, where three or more readings of them
        cover the same instant (the columns of a 3x4 sheet with a lead II
        rhythm strip, 6x2 and 12x1 sheets), by the weighted least-squares
        fit of all those readings on the two degrees of freedom the limb
        leads share (:func:`ecgdigitize.fusion.fuse_limb_leads`). Switch it
        off to check a sheet against Einthoven's law, which the fused leads
        satisfy by construction.
    orientation : {0, 90, 180, 270} or None, default None
        Quarter turns present in the image, degrees counter-clockwise (as
        :func:`ecgdigitize.geometry.detect_page_orientation` returns them);
        None detects them. Set it for sheets read upside down or on their
        side: without calibration pulses, the up/down test weighs the ink
        above the row baselines against the ink below, and a record whose
        waves point mostly down can fool it.

    Raises
    ------
    ConfigurationError
        If a value is out of range (checked at construction).

    Examples
    --------
    >>> cfg = DigitizeConfig(fs=250, speed_mm_per_s=50, layout="6x2")
    >>> cfg.fs, cfg.speed_mm_per_s, cfg.layout, cfg.gain_mm_per_mv
    (250.0, 50.0, '6x2', None)
    >>> DigitizeConfig(notch_hz=300)
    Traceback (most recent call last):
        ...
    ecgdigitize.errors.ConfigurationError: notch_hz must be in (0, fs/2); got 300.0
    """

    fs: float = 500.0
    speed_mm_per_s: float | None = None
    gain_mm_per_mv: float | None = None
    layout: str | None = None
    duration_s: float = 10.0
    remove_baseline: bool = False
    baseline_cutoff_hz: float = 0.5
    notch_hz: float | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    jump_cost: float = 0.15
    slope_cost: float = 0.01
    prior_weight: float = 6.0
    peak_mode: str = "hybrid"
    drop_labels: bool = True
    max_gap_s: float = 0.08
    min_quality: float = 0.35
    smooth_px: float | None = None
    fit_ink: bool = True
    lattice_min_mm: float | None = 0.25
    fuse_limb_leads: bool = True
    orientation: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (isinstance(value, int) and not isinstance(value, bool)
                    and f.name not in ("max_pixels", "orientation")):
                object.__setattr__(self, f.name, float(value))
        _positive(self.fs, "fs")
        _positive(self.duration_s, "duration_s")
        _positive(self.baseline_cutoff_hz, "baseline_cutoff_hz")
        _positive(self.max_gap_s, "max_gap_s")
        if self.speed_mm_per_s is not None:
            _positive(self.speed_mm_per_s, "speed_mm_per_s")
        if self.gain_mm_per_mv is not None:
            _positive(self.gain_mm_per_mv, "gain_mm_per_mv")
        if self.notch_hz is not None and not 0 < self.notch_hz < self.fs / 2:
            raise ConfigurationError(f"notch_hz must be in (0, fs/2); got {self.notch_hz!r}")
        if self.layout is not None and self.layout not in KNOWN_LAYOUTS:
            raise ConfigurationError(f"layout must be one of {KNOWN_LAYOUTS} or None; "
                                     f"got {self.layout!r}")
        if self.peak_mode not in _PEAK_MODES:
            raise ConfigurationError(f"peak_mode must be one of {_PEAK_MODES}; "
                                     f"got {self.peak_mode!r}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ConfigurationError(f"min_quality must be in [0, 1]; got {self.min_quality!r}")
        if self.lattice_min_mm is not None and not self.lattice_min_mm >= 0:
            raise ConfigurationError(f"lattice_min_mm must be >= 0 or None; "
                                     f"got {self.lattice_min_mm!r}")
        if self.orientation is not None and self.orientation not in (0, 90, 180, 270):
            raise ConfigurationError(f"orientation must be 0, 90, 180, 270 or None; "
                                     f"got {self.orientation!r}")
        if self.orientation is not None:
            object.__setattr__(self, "orientation", int(self.orientation))
        if int(self.max_pixels) <= 0:
            raise ConfigurationError(f"max_pixels must be positive; got {self.max_pixels!r}")
        for name in ("jump_cost", "slope_cost", "prior_weight", "smooth_px"):
            if name == "smooth_px" and self.smooth_px is None:
                continue
            if not getattr(self, name) >= 0:
                raise ConfigurationError(f"{name} must be >= 0; got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> DigitizeConfig:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _positive(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and value == value and 0 < value < float("inf")):
        raise ConfigurationError(f"{name} must be a positive number; got {value!r}")
