"""Grid stage: tell grid colour from trace ink and measure the scale (px/mm).

The scale comes from the *periodicity* of the printed grid, never from an
assumed dpi. :func:`grid_mask` keeps the light-but-not-white, non-ink pixels
(red, pink, green or grey lines and dots); :func:`detect_grid` takes the 2-D
power spectrum of that mask, finds the direction of the grid lines (a ray of
harmonic peaks through the origin, which also gives the skew of the sheet) and
the comb of harmonics along it. A 1 mm minor / 5 mm major pattern shows as a
strong comb at 1 mm with weaker sub-harmonics at 5 mm. A comb that would make the
image narrower than any 12-lead sheet (150 mm) is not a grid (anti-aliased trace
edges). Without a grid the scale falls back to the calibration pulses (1 mV
tall; with an unknown gain, the 5/10/20 mm/mV reading that makes the image's
short side nearest a letter/A4 page height) and then to the page size (US
letter or A4 width); :attr:`GridSpec.source` says which.

Changes to the agreed interface: :class:`GridSpec` has one extra field with a
default, ``rotation_deg`` (skew of the grid lines, CCW degrees, the convention
of :func:`cv2.getRotationMatrix2D`); the module also exports :func:`ink_mask`,
:func:`find_pulse_boxes` and :func:`find_pulse_scale`, shared with
:mod:`ecgdigitize.geometry` and :mod:`ecgdigitize.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

from ._morph import components
from .errors import ConfigurationError, NoGridFoundError

__all__ = ["GridSpec", "detect_grid", "find_pulse_boxes", "find_pulse_scale", "grid_mask",
           "ink_mask"]

#: Page widths tried by the page-size fallback: (name, long side mm, short side mm).
PAGE_SIZES_MM = (("letter", 279.4, 215.9), ("a4", 297.0, 210.0))
_MAX_SIDE_PX = 2400      # the spectrum is taken on a copy no larger than this
_MAX_SKEW_DEG = 16.0     # grid lines are searched within this angle of the axes
_PAD = 4                 # mirrored spectrum columns added left of u = 0
_SOLID_COVERAGE = 0.205  # fraction of the gridded area covered by solid grid lines, at least
_MIN_COMB = 2.5          # mean clipped log peak height of a real grid's harmonic comb
_PEAK_LOG = 1.5          # a spectral peak is this much above its neighbourhood (log power)
_MIN_SHEET_MM = 150.0    # long side of any 12-lead sheet, at least (10 s rows at 25 mm/s: 250 mm)
_MIN_PX_PER_MM = 1.5     # coarser sheets (under ~40 dpi) cannot be read: no fallback scale below
_SHORT_SIDE_MM = 213.0   # short side of a letter/A4 page, about: the pulse fallback's prior
_LUMA_INK = 0.28         # luminance below this fraction of the paper is ink whatever its hue
_ODD_DEFICIT = 3.0       # odd harmonics this much weaker (log power) are not a fundamental's


@dataclass(frozen=True)
class GridSpec:
    """Scale and look of the grid printed on a sheet.

    Attributes
    ----------
    px_per_mm_x, px_per_mm_y : float
        Pixels per millimetre of paper along the grid's x and y axes.
    kind : str
        ``"solid"`` lines, ``"dotted"`` grid, or ``"none"``.
    colour_rgb : tuple of int or None
        Typical RGB of grid pixels; None without a grid.
    confidence : float
        0..1, how sure the scale is (1 = sharp periodic grid).
    source : str
        ``"grid"`` (periodicity), ``"pulse"`` (calibration pulse height) or
        ``"page"`` (page width).
    rotation_deg : float, default 0
        Skew of the grid lines, degrees counter-clockwise (0 when unknown).

    Examples
    --------
    >>> spec = GridSpec(7.87, 7.87, "solid", (240, 150, 150), 0.95, "grid")
    >>> round(spec.px_per_mm_x * 25.4), spec.rotation_deg   # about 200 dpi, no skew
    (200, 0.0)
    """

    px_per_mm_x: float
    px_per_mm_y: float
    kind: str
    colour_rgb: tuple[int, int, int] | None
    confidence: float
    source: str
    rotation_deg: float = 0.0


def ink_mask(rgb: np.ndarray, *, threshold: float = 0.4) -> np.ndarray:
    """Boolean mask of dark trace/text ink (not grid colour, not paper).

    A pixel is ink when its *brightest* channel is below ``threshold`` times the
    paper brightness, so saturated red/green grid lines (one bright channel)
    and light grey grids are not ink; or when its luminance is below 0.28 of
    the paper's (dark blue, green or violet ink, far darker than any grid). Isolated ink pixels (dots of a dark
    dotted grid, salt noise) are dropped.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3) or (H, W), uint8
        Sheet image.
    threshold : float, default 0.4
        Fraction of the paper brightness below which a pixel is ink.

    Returns
    -------
    ndarray of shape (H, W), bool

    Examples
    --------
    >>> img = np.full((20, 20, 3), 255, np.uint8); img[10, 2:18] = 0
    >>> int(ink_mask(img).sum())
    16
    """
    img = np.asarray(rgb)
    value = _value(img)
    luma = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else None
    return _ink_from_value(value, _paper_level(value), threshold, luma=luma)


def _ink_from_value(value: np.ndarray, paper: float, threshold: float = 0.4, *,
                    luma: np.ndarray | None = None) -> np.ndarray:
    ink = (value < threshold * paper).astype(np.uint8)
    if luma is not None:  # dark blue or green ink keeps one channel bright, yet is dark
        ink |= (luma < min(threshold, _LUMA_INK) * paper).astype(np.uint8)
    neighbours = cv2.boxFilter(ink, cv2.CV_8U, (3, 3), normalize=False)
    return (ink > 0) & (neighbours >= 2)


def grid_mask(rgb: np.ndarray) -> np.ndarray:
    """Grid-likeness of each pixel: light-but-not-white and not dark ink.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3) or (H, W), uint8
        Sheet image.

    Returns
    -------
    ndarray of shape (H, W), float32
        0 for paper and ink, up to 1 for clearly grid-coloured pixels
        (coloured pixels count fully, grey ones by their darkness).

    Examples
    --------
    >>> img = np.full((10, 10, 3), 255, np.uint8); img[:, 5] = (230, 90, 90)
    >>> m = grid_mask(img); bool(m[0, 5] > 0.5), float(m[0, 0])
    (True, 0.0)
    """
    img = np.asarray(rgb)
    value, lo = _channels(img)
    luma = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else None
    return _grid_u8(value, lo, _paper_level(value), luma).astype(np.float32) / 255.0


def _grid_weight_of(img: np.ndarray, grid_weight: np.ndarray | None) -> np.ndarray:
    """``grid_weight`` when given (checked against ``img``), else :func:`grid_mask` of ``img``.

    Raises
    ------
    ConfigurationError
        If ``grid_weight`` is not one value per pixel of ``img``.
    """
    if grid_weight is None:
        return grid_mask(img)
    weight = np.asarray(grid_weight)
    if weight.shape != img.shape[:2]:
        raise ConfigurationError(f"grid_weight must be grid_mask() of the image, shape "
                                 f"{img.shape[:2]}; got shape {weight.shape}")
    return weight


def _grid_u8(value: np.ndarray, lo: np.ndarray, paper: float,
             luma: np.ndarray | None = None) -> np.ndarray:
    """:func:`grid_mask` scaled to 0..255 as uint8, from the brightest and darkest channels."""
    paper = max(float(paper), 1.0)
    shade = cv2.subtract(np.full_like(value, min(round(paper), 255)), value)
    out = cv2.convertScaleAbs(shade, alpha=3.0 * 255.0 / paper)   # saturates at 255
    chroma = cv2.convertScaleAbs(cv2.subtract(value, lo), alpha=255.0 / 80.0)
    out = cv2.max(out, chroma)
    out[value < 0.4 * paper] = 0  # ink
    if luma is not None:
        out[luma < _LUMA_INK * paper] = 0  # dark coloured ink
    return out


def detect_grid(rgb: np.ndarray, *, config: Any = None) -> GridSpec:
    """Measure the grid scale (px/mm), its kind, colour and skew.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Sheet image (may be skewed by up to about 15 degrees).
    config : object, optional
        Any object with the attributes ``speed_mm_per_s`` and
        ``gain_mm_per_mv`` (used by the pulse fallback; default 25 and 10).

    Returns
    -------
    GridSpec
        ``source="grid"`` when a periodic grid was found, else ``"pulse"``
        or ``"page"`` (``kind="none"``, lower confidence).

    Raises
    ------
    NoGridFoundError
        If no grid, no calibration pulse and no page-like aspect ratio give
        a scale, or a fallback scale is under 1.5 px/mm (too coarse to read).

    Examples
    --------
    >>> img = np.full((1200, 1600, 3), 255, np.uint8)   # 200 x 150 mm at 8 px/mm
    >>> img[:, ::8] = (230, 90, 90); img[::8, :] = (230, 90, 90)
    >>> spec = detect_grid(img)
    >>> spec.kind, round(spec.px_per_mm_x, 2), round(spec.px_per_mm_y, 2)
    ('solid', 8.0, 8.0)
    """
    img = np.asarray(rgb)
    if img.ndim != 3 and img.ndim != 2:
        raise NoGridFoundError(f"expected an (H, W, 3) image; got shape {img.shape}")
    scale = max(1, int(np.ceil(max(img.shape[:2]) / _MAX_SIDE_PX)))
    small = img if scale == 1 else cv2.resize(
        img, (img.shape[1] // scale, img.shape[0] // scale), interpolation=cv2.INTER_AREA)
    mask = grid_mask(small)
    found = _grid_from_spectrum(mask)
    if found is None:  # uneven light (a photo's shading) can bury a faint grid: even it out
        mask = grid_mask(_flat_field(small))
        found = _grid_from_spectrum(mask)
    if found is not None and max(img.shape[:2]) / (max(found[:2]) * scale) < _MIN_SHEET_MM:
        found = None  # a "grid" that makes the page smaller than any 12-lead sheet: trace edges
    if found is not None:
        ppm_x, ppm_y, angle, kind, conf = found
        return GridSpec(ppm_x * scale, ppm_y * scale, kind, _grid_colour(small, mask), conf,
                        "grid", angle)
    pulse = _pulse_fallback(img, config)
    if pulse is not None and pulse >= _MIN_PX_PER_MM:
        return GridSpec(pulse, pulse, "none", None, 0.5, "pulse")
    page = _page_scale(img.shape[1], img.shape[0])
    if page is None:
        raise NoGridFoundError("no periodic grid, calibration pulse or page-shaped image found")
    if page < _MIN_PX_PER_MM:
        raise NoGridFoundError(f"no grid, and the page size gives {page:.2f} px/mm: too coarse "
                               f"to read traces (at least {_MIN_PX_PER_MM} px/mm)")
    return GridSpec(page, page, "none", None, 0.2, "page")


# --- spectrum analysis ---------------------------------------------------------
def _grid_from_spectrum(mask: np.ndarray) -> tuple[float, float, float, str, float] | None:
    """Return (px/mm x, px/mm y, skew deg, kind, confidence) or None."""
    if mask.max() <= 0:
        return None
    spec, raw = _whitened_log_spectrum(mask)
    h, w = spec.shape[0], 2 * (spec.shape[1] - 1)  # padded size of the transform
    rays = []
    for base_deg, angle in zip((0.0, 90.0), _best_ray_angles(spec, w, h), strict=True):
        profile, step = _ray_profile(spec, w, h, angle, fine=True)
        raw_profile, _ = _ray_profile(raw, w, h, angle, fine=True)
        rays.append((base_deg, angle, ndimage.maximum_filter1d(profile, 5),
                     ndimage.maximum_filter1d(raw_profile, 5)))
    f_min = max(float(np.argmax(r[2] != 0)) * step for r in rays)
    periods = _joint_period(rays, step, f_min)
    if periods is None:
        return None
    # conjugate symmetry: the column -c holds the rows mirrored about h // 2
    mirror = spec[(2 * (h // 2) - np.arange(h)) % h][:, _PAD:0:-1]
    padded = np.hstack([mirror, spec])
    (fx, fy), strength = periods
    fx, ax_angle = _refine_peak(padded, w, h, rays[0][1], fx)
    fy, ay_angle = _refine_peak(padded, w, h, rays[1][1], fy)
    ppm = (1.0 / fx, 1.0 / fy)
    if not 0.9 < ppm[0] / ppm[1] < 1.1:  # squares are square (up to perspective)
        return None
    skew = -0.5 * (ax_angle + (ay_angle - 90.0))
    return ppm[0], ppm[1], skew, _grid_kind(mask, min(ppm)), float(1 - np.exp(-0.5 * strength))


def _joint_period(rays: list, step: float, f_min: float
                  ) -> tuple[tuple[float, float], float] | None:
    """1 mm frequencies (cycles/px) along x and y, and the comb strength.

    The comb is searched on both axes at once (grid squares are square), then
    each axis is fitted within 6 %; whether the comb is the 1 mm or the 5 mm
    one is told by the 5-fold pattern of minor and major lines, else by the
    page width it implies.
    """
    f_max = (min(len(r[2]) for r in rays) - 1) * step
    cands = np.exp(np.linspace(np.log(1 / 150.0), np.log(1 / 2.2), 1500))
    scores = [_comb_scores(r[2], step, cands, f_min, f_max) for r in rays]
    joint = np.minimum(scores[0], scores[1])
    i = int(np.argmax(joint))
    if joint[i] < _MIN_COMB or i == 0:  # no comb, or only at the longest period searched
        return None
    f, strength = float(cands[i]), float(joint[i])
    for _ in range(3):  # the comb at half the frequency is as good when odd harmonics are weak
        j = int(np.argmin(np.abs(cands - f / 2)))
        if (f / 2 >= f_min and joint[j] >= 0.85 * strength
                and min(_at(r[2], f / 2, step) for r in rays) > _PEAK_LOG
                and all(_odd_deficit(r[2], f / 2, step, f_max) < _ODD_DEFICIT for r in rays)):
            f, strength = float(cands[j]), float(joint[j])
        else:
            break
    near = np.abs(np.log(cands / f)) < 0.06
    fs = [float(cands[near][int(np.argmax(sc[near]))]) for sc in scores]
    if any(_five_fold(r[2], r[3], fa, step, f_max) for r, fa in zip(rays, fs, strict=True)):
        return (5 * fs[0], 5 * fs[1]), strength       # the comb was the 5 mm one
    # the comb was the 2nd..4th harmonic of the 5 mm lines (e.g. 5/3 mm when the 8th
    # harmonic of 5 mm is lost near the Nyquist frequency): checked before the 1 mm
    # reading, whose 5-fold test aliased harmonics of low-dpi grids can pass
    pairs = list(zip(rays, fs, strict=True))
    for n in (2, 3, 4):
        if (min(fs) / n >= f_min
                and any(_five_fold(r[2], r[3], fa / n, step, f_max) for r, fa in pairs)
                and all(_odd_deficit(r[2], fa / n, step, f_max, n) < _ODD_DEFICIT
                        for r, fa in pairs)):
            return (5 * fs[0] / n, 5 * fs[1] / n), strength
    if any(fa / 5 >= f_min and _five_fold(r[2], r[3], fa / 5, step, f_max)
           and _odd_deficit(r[2], fa / 5, step, f_max, 5) < _ODD_DEFICIT
           for r, fa in zip(rays, fs, strict=True)):
        return (fs[0], fs[1]), strength
    # no 5-fold pattern seen (1 mm dots too faint): the lowest full comb is the 5 mm lines
    for n in (5, 4, 3, 2):
        if min(fs) / n >= f_min and all(_full_comb(r[2], fa / n, step, f_max, n)
                                        for r, fa in pairs):
            return (5 * fs[0] / n, 5 * fs[1] / n), strength
    n_px = 0.25 / step  # longer image side, px
    as_1mm, as_5mm = n_px * f, n_px * f * 5  # implied page widths, mm
    one_mm = abs(np.log(as_1mm / 250)) <= abs(np.log(as_5mm / 250)) or 1 / f / 5 < 2.0
    k = 1.0 if one_mm else 5.0
    return (fs[0] * k, fs[1] * k), strength


def _full_comb(prof: np.ndarray, f: float, step: float, f_max: float, n: int) -> bool:
    """True when ``f`` is a fundamental: its harmonics that are not multiples of ``n``
    are peaks, no weaker than the multiples."""
    ks = np.arange(1, min(16, int(f_max / f)))
    others = [k for k in ks if k % n][:8]
    if len(others) < 3:
        return False
    white = np.array([_at(prof, k * f, step) for k in others])
    return bool(white.mean() > _PEAK_LOG and _odd_deficit(prof, f, step, f_max, n) < _ODD_DEFICIT)


def _odd_deficit(prof: np.ndarray, f: float, step: float, f_max: float, n: int = 2) -> float:
    """How much weaker (median whitened log power) the harmonics of ``f`` that are not
    multiples of ``n`` are than those that are. Small when ``f`` is a true fundamental;
    large when ``f`` is a ``1/n`` fraction of the real one and its other "harmonics" are
    only pixel-rounding beats (e.g. a 10 mm beat of 1 mm lines at 5.906 px/mm), which the
    clipped comb score cannot tell apart."""
    ks = np.arange(1, max(n, min(4 * n, int(f_max / f))) + 1)
    vals = np.array([_at(prof, k * f, step) for k in ks])
    return float(np.median(vals[ks % n == 0]) - np.median(vals[ks % n != 0]))


def _comb_scores(prof: np.ndarray, step: float, cands: np.ndarray, f_min: float,
                 f_max: float) -> np.ndarray:
    """Mean clipped peak height at the first 8 harmonics of each candidate frequency
    (scaled down when fewer than 3 fit below the Nyquist frequency)."""
    ks = np.arange(1, 9)
    n_harm = np.minimum(8, np.floor(f_max / cands)).astype(int)
    idx = np.round(np.outer(cands, ks) / step).astype(int)
    valid = ks[None, :] <= n_harm[:, None]
    vals = np.where(valid, np.clip(prof[np.minimum(idx, len(prof) - 1)], 0, 6), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vals.sum(axis=1) / n_harm
    scores = np.where((n_harm > 0) & (cands >= f_min), mean * np.minimum(1.0, n_harm / 3), 0.0)
    return np.nan_to_num(scores)


def _whitened_log_spectrum(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log power spectrum minus its local mean (peaks stand out), and the raw log power."""
    h, w = mask.shape
    m = mask - mask.mean()
    m *= np.hanning(h).astype(np.float32)[:, None]
    m *= np.hanning(w).astype(np.float32)[None, :]
    shape = (sp_fft.next_fast_len(h, real=True), 2 * sp_fft.next_fast_len((w + 1) // 2, real=True))
    power = np.abs(sp_fft.rfft2(m, s=shape, workers=1)) ** 2
    logp = np.log(power + 1e-6 * float(power.max()) + 1e-12)
    logp = np.fft.fftshift(logp, axes=0).astype(np.float32)  # row h//2 = zero frequency
    local = cv2.blur(logp, (15, 15), borderType=cv2.BORDER_REFLECT)
    return logp - local, logp


def _ray_coords(w: int, h: int, angle_deg: float | np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Bin coordinates (row, col) of the spectrum at cycles/px ``freqs`` along a ray, or
    along each of an array of rays (their points one ray after the other)."""
    a = np.deg2rad(np.asarray(angle_deg, dtype=float))[..., None]
    col = (freqs * np.cos(a) * w).ravel()
    row = (freqs * np.sin(a) * h + h // 2).ravel()
    flip = col < 0  # the rfft half-plane holds (-u, -v) as the conjugate of (u, v)
    col = np.where(flip, -col, col)
    row = np.where(flip, 2 * (h // 2) - row, row)
    return np.vstack([row, col])


def _freq_range(w: int, h: int, angle_deg: float, fine: bool) -> tuple[np.ndarray, float]:
    n_bins = max(w, h)
    step = (0.25 if fine else 0.5) / n_bins
    fmin = 6.0 / min(w, h)
    return np.arange(fmin, 0.5, step), step


def _ray_profile(spec: np.ndarray, w: int, h: int, angle_deg: float,
                 fine: bool) -> tuple[np.ndarray, float]:
    freqs, step = _freq_range(w, h, angle_deg, fine)
    values = ndimage.map_coordinates(spec, _ray_coords(w, h, angle_deg, freqs), order=1,
                                     mode="nearest")
    return np.concatenate([np.zeros(round(freqs[0] / step)), values]), step


def _ray_scores(spec: np.ndarray, w: int, h: int, angles: np.ndarray) -> np.ndarray:
    """Peak mass (log power above :data:`_PEAK_LOG`) along each ray, all rays in one pass."""
    freqs, _ = _freq_range(w, h, 0.0, fine=False)
    coords = _ray_coords(w, h, np.asarray(angles, dtype=float), freqs)
    values = ndimage.map_coordinates(spec, coords, order=1, mode="nearest")
    return np.clip(values.reshape(len(angles), freqs.size) - _PEAK_LOG, 0, None).sum(axis=1)


def _best_ray_angles(spec: np.ndarray, w: int, h: int) -> tuple[float, float]:
    """Directions (deg) of the rays from the origin through the most harmonic peaks,
    near 0 and near 90 degrees: searched jointly (lines both ways share the skew,
    which keeps off-axis lattice rays of dotted grids out), then refined apiece."""
    coarse = np.linspace(-_MAX_SKEW_DEG, _MAX_SKEW_DEG, 129)
    joint = _ray_scores(spec, w, h, np.concatenate((coarse, coarse + 90.0)))
    skew = float(coarse[int(np.argmax(joint[:coarse.size] + joint[coarse.size:]))])
    out = []
    for base in (0.0, 90.0):
        best = base + skew
        for span in (1.0, 0.1):
            angles = best + np.linspace(-span, span, 21)
            best = float(angles[int(np.argmax(_ray_scores(spec, w, h, angles)))])
        out.append(best)
    return out[0], out[1]


def _five_fold(prof: np.ndarray, raw: np.ndarray, f5: float, step: float, f_max: float) -> bool:
    """True when ``f5`` is a 5 mm fundamental: all its harmonics are peaks and
    every 5th (the 1 mm lines) stands clearly above its two neighbours."""
    ks = np.arange(1, min(16, int(f_max / f5)))
    if len(ks) < 6:
        return False
    white = np.array([_at(prof, k * f5, step) for k in ks])
    if white[ks % 5 != 0][:8].mean() <= _PEAK_LOG:
        return False
    lp = np.array([_at(raw, k * f5, step) for k in ks])
    bumps = [lp[k - 1] - 0.5 * (lp[k - 2] + lp[k]) for k in ks if k % 5 == 0 and k < ks[-1]]
    return bool(np.mean(bumps) > 0.6)


def _at(prof: np.ndarray, f: float, step: float) -> float:
    i = round(f / step)
    return float(prof[i]) if 0 <= i < len(prof) else 0.0


def _refine_peak(spec: np.ndarray, w: int, h: int, angle: float, f: float) -> tuple[float, float]:
    """Sub-bin frequency and angle from the strong harmonics of ``f`` (least squares)."""
    num = den = 0.0
    angles, weights = [], []
    for k in range(1, 40):
        fk = k * f
        if fk > 0.48:
            break
        r, c = _ray_coords(w, h, angle, np.array([fk]))[:, 0]
        r0, c0 = round(r), round(c) + _PAD
        if not (2 <= r0 < spec.shape[0] - 2 and 2 <= c0 < spec.shape[1] - 2):
            continue
        win = spec[r0 - 2:r0 + 3, c0 - 2:c0 + 3]
        dr, dc = np.unravel_index(int(np.argmax(win)), win.shape)
        pr, pc = r0 - 2 + int(dr), c0 - 2 + int(dc)
        peak = float(spec[pr, pc])
        if peak < 2 * _PEAK_LOG or not (1 <= pr < spec.shape[0] - 1 and 1 <= pc < spec.shape[1] - 1):
            continue
        pr_f = pr + _parabola(spec[pr - 1, pc], peak, spec[pr + 1, pc])
        pc_f = pc + _parabola(spec[pr, pc - 1], peak, spec[pr, pc + 1])
        u, v = (pc_f - _PAD) / w, (pr_f - h // 2) / h
        radius = float(np.hypot(u, v))
        wt = peak * k
        num += wt * k * radius
        den += wt * k * k
        ang = np.rad2deg(np.arctan2(v, u))
        if abs(((ang - angle) + 90) % 180 - 90) < 3:
            angles.append(angle + ((ang - angle) + 90) % 180 - 90)
            weights.append(wt * k)
    if den == 0:
        return f, angle
    new_angle = float(np.average(angles, weights=weights)) if angles else angle
    return num / den, new_angle


def _parabola(a: float, b: float, c: float) -> float:
    d = a - 2 * b + c
    return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))


def _grid_kind(mask: np.ndarray, px_per_mm: float) -> str:
    """Solid lines cover far more of the gridded area than dots do.

    The gridded area is where a 2 mm window holds any grid pixel; solid 1 mm
    lines cover about 23-35 % of it, dotted grids about 3-18 %.
    """
    on = (mask > 0.3).astype(np.uint8)
    k = max(3, int(2 * px_per_mm) | 1)
    area = cv2.boxFilter(on, cv2.CV_16U, (k, k), normalize=False) > 0
    n_area = int(area.sum())
    if n_area == 0:
        return "none"
    return "solid" if on.sum() / n_area > _SOLID_COVERAGE else "dotted"


def _peak_at(spec: np.ndarray, w: int, h: int, uv: np.ndarray) -> float:
    u, v = (uv[0], uv[1]) if uv[0] >= 0 else (-uv[0], -uv[1])
    r0, c0 = round(v * h + h // 2), round(u * w)
    r0, c0 = min(max(r0, 1), spec.shape[0] - 2), min(max(c0, 1), spec.shape[1] - 2)
    return float(spec[r0 - 1:r0 + 2, c0 - 1:c0 + 2].max())


def _grid_colour(rgb: np.ndarray, mask: np.ndarray) -> tuple[int, int, int] | None:
    if rgb.ndim != 3:
        return None
    sel = (mask > 0.5).view(np.uint8)
    n = int(cv2.countNonZero(sel))
    if n < 50:
        return None
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    # per-channel median of the selected pixels, from their histograms (as np.median: the
    # mean of the two middle values when their number is even)
    out = []
    for c in range(3):
        cum = np.cumsum(cv2.calcHist([img], [c], sel, [256], [0, 256]).ravel())
        lo, hi = np.searchsorted(cum, [(n - 1) // 2 + 1, n // 2 + 1])
        out.append(int((float(lo) + float(hi)) / 2))
    return (out[0], out[1], out[2])


# --- fallbacks -------------------------------------------------------------------
def _pulse_fallback(img: np.ndarray, config: Any) -> float | None:
    """px/mm from the pulses, for the configured speed and gain, else looked for in the shape
    of each gain (10, 5, 20 mm/mV) at 25, then 50 mm/s; the height found then stands for the
    gain that puts the page's short side nearest 213 mm (letter/A4)."""
    forced_speed = getattr(config, "speed_mm_per_s", None)
    forced_gain = getattr(config, "gain_mm_per_mv", None)
    gains = (float(forced_gain),) if forced_gain else (10.0, 5.0, 20.0)
    speeds = (float(forced_speed),) if forced_speed else (25.0, 50.0)
    # px of 1 mV: a wide pulse (low gain, fast paper) only fits its own shape
    height = next((gain * ppm for speed in speeds for gain in gains
                   if (ppm := find_pulse_scale(img, gain_mm_per_mv=gain,
                                               speed_mm_per_s=speed)) is not None), None)
    if height is None:
        return None
    if forced_gain:
        return height / float(forced_gain)
    page_ppm = min(img.shape[:2]) / _SHORT_SIDE_MM
    return min((height / g for g in gains), key=lambda ppm: abs(np.log(ppm / page_ppm)))


def find_pulse_scale(rgb: np.ndarray, *, gain_mm_per_mv: float = 10.0,
                     speed_mm_per_s: float = 25.0) -> float | None:
    """px/mm from calibration pulses: tall thin ink rectangles (1 mV = ``gain`` mm).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Sheet image without a usable grid.
    gain_mm_per_mv, speed_mm_per_s : float
        Amplitude scale (mm/mV) and paper speed (mm/s) assumed for the pulse;
        a pulse may be 0.04 to 0.3 s wide.

    Returns
    -------
    float or None
        Pixels per mm (median pulse height / gain), or None unless at least two
        pulses of the same height are found.

    Examples
    --------
    >>> img = np.full((600, 800, 3), 255, np.uint8)
    >>> for y in (150, 450):
    ...     img[y - 80:y + 1, 40] = 0; img[y - 80:y + 1, 60] = 0; img[y - 80, 40:61] = 0
    >>> round(find_pulse_scale(img), 1)
    8.0
    """
    ink = ink_mask(rgb)
    ratio = (0.04 * speed_mm_per_s / gain_mm_per_mv, 0.3 * speed_mm_per_s / gain_mm_per_mv)
    boxes = [b for b in find_pulse_boxes(ink, min_height_px=max(10, int(0.02 * ink.shape[0])),
                                         width_ratio=ratio) if b[4]]
    heights = np.array([b[3] - b[1] + 1 - b[5] for b in boxes], dtype=float)
    if len(heights) == 0:
        return None
    agree = np.abs(heights - np.median(heights)) <= 0.05 * np.median(heights) + 1
    if agree.sum() < 2:  # one lone rectangle is not evidence enough for a scale
        return None
    return float(np.median(heights[agree])) / gain_mm_per_mv


def find_pulse_boxes(ink: np.ndarray, *, min_height_px: int,
                     max_height_px: int | None = None,
                     width_ratio: tuple[float, float] = (0.08, 2.2)
                     ) -> list[tuple[int, int, int, int, bool, int]]:
    """Calibration-pulse-like rectangles in an ink mask.

    A pulse is two vertical ink strokes of the same length, top and bottom,
    at least 2 px apart, joined by a horizontal stroke at the top (upright)
    or bottom (upside down), with no ink inside.

    Parameters
    ----------
    ink : ndarray of shape (H, W), bool
        Ink mask (see :func:`ink_mask`).
    min_height_px, max_height_px : int
        Range of pulse heights, px.
    width_ratio : (float, float), default (0.08, 2.2)
        Allowed width / height of the rectangle.

    Returns
    -------
    list of (x0, y0, x1, y1, joined_top, stroke_px)
        Outer box of each pulse (px, inclusive), whether the join is at the
        top, and the stroke width (the height between stroke centres is
        ``y1 - y0 + 1 - stroke_px``).

    Examples
    --------
    >>> ink = np.zeros((200, 200), bool)
    >>> ink[40:120, 50:52] = ink[40:120, 70:72] = ink[40:42, 50:72] = True
    >>> find_pulse_boxes(ink, min_height_px=40)
    [(50, 40, 71, 119, True, 2)]
    """
    strokes = _vertical_strokes(ink, min_height_px)
    out = []
    for i, (xa0, xa1, la, ba) in enumerate(strokes):
        if max_height_px is not None and la > max_height_px:
            continue
        for xb0, xb1, lb, bb in strokes[i + 1:]:
            width = xb1 - xa0
            if width > width_ratio[1] * la:
                break
            if width < width_ratio[0] * la or abs(lb - la) > 0.08 * la + 2 or abs(bb - ba) > 4:
                continue
            top, bottom = max(ba - la + 1, bb - lb + 1), min(ba, bb)
            if xb0 - xa1 < 2:
                continue
            gap = slice(xa1, xb0)
            joins = [ink[max(y - 3, 0):y + 4, gap].any(axis=0).mean() > 0.8 for y in (top, bottom)]
            hollow = ink[top + 4:bottom - 3, gap].mean() < 0.1 if bottom - top > 8 else False
            if joins[0] != joins[1] and hollow:
                out.append((xa0, top, xb1 - 1, bottom, bool(joins[0]), xa1 - xa0))
                break
    return out


def _vertical_strokes(ink: np.ndarray, min_len: int) -> list[tuple[int, int, int, int]]:
    """(x0, x1, length, bottom row) of vertical ink runs of at least ``min_len`` px."""
    # Only columns with min_len ink pixels can hold such a run. The erosion and
    # dilation below treat each column alone, and a blank column parts two strokes,
    # so the work is done on those columns plus one blank after each group of them.
    cand = np.count_nonzero(ink, axis=0) >= min_len
    cols = np.flatnonzero(cand | np.concatenate(([False], cand[:-1])))
    if not cand.any():
        return []
    kernel = np.ones((min_len, 1), np.uint8)
    tall = cv2.erode(np.ascontiguousarray(ink[:, cols], dtype=np.uint8), kernel,
                     anchor=(0, min_len - 1), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    _, stats = components(cv2.dilate(tall, kernel, anchor=(0, 0)))
    x, y, ww, hh = (stats[1:, i] for i in range(4))
    x0, x1 = cols[x], cols[x + ww - 1] + 1
    keep = np.flatnonzero(x1 - x0 <= np.maximum(6, hh // 6))
    out = [(int(x0[i]), int(x1[i]), int(hh[i]), int(y[i] + hh[i] - 1)) for i in keep]
    out.sort()
    return out


def _page_scale(width: int, height: int) -> float | None:
    long_px, short_px = max(width, height), min(width, height)
    aspect = long_px / short_px
    best = min(PAGE_SIZES_MM, key=lambda p: abs(np.log(aspect * p[2] / p[1])))
    if abs(np.log(aspect * best[2] / best[1])) > 0.12:
        return None
    return long_px / best[1]


def _value(rgb: np.ndarray) -> np.ndarray:
    """Brightest channel (HSV value) of each pixel."""
    return _channels(np.asarray(rgb))[0]


def _channels(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brightest and darkest channel of each pixel (uint8)."""
    if img.ndim != 3:
        return img, img
    r, g, b = cv2.split(np.ascontiguousarray(img))
    return cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b)


def _flat_field(img: np.ndarray) -> np.ndarray:
    """The image divided by its local paper level (the brightest value within about 2 % of
    the image's longer side, smoothed), so shading and a light fall-off cancel."""
    value, _ = _channels(img)
    k = max(3, round(0.02 * max(img.shape[:2]))) | 1
    paper = cv2.dilate(value, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.GaussianBlur(paper.astype(np.float32), (0, 0), k / 2)
    gain = 255.0 / np.maximum(paper, 1.0)
    out = img.astype(np.float32) * (gain[..., None] if img.ndim == 3 else gain)
    return np.clip(out, 0, 255).astype(np.uint8)


def _paper_level(value: np.ndarray) -> float:
    sub = value[::7, ::7]
    return float(np.percentile(sub, 90)) if sub.size else 255.0
