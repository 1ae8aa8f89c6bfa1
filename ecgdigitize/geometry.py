"""Geometry stage: skew, page orientation, page outline and rectification.

All angles are degrees **counter-clockwise** as seen on screen (the convention
of :func:`cv2.getRotationMatrix2D`); a value describes the rotation *present
in the input*, which :func:`rectify` removes. Every transform is a 3x3
homography mapping input pixel coordinates ``(x, y, 1)`` to working pixels.

Changes to the agreed interface: :func:`rectify` also takes ``orientation``
(0/90/180/270, from :func:`detect_page_orientation`), ``grid`` (its skew is
used when ``rotation_deg`` is None) and ``fill``; :class:`Rectified` also has
``quad``; :func:`detect_page_orientation` takes an optional ``grid`` (pass it:
the skew is removed before the up/down test).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from .errors import InputError, NoGridFoundError
from .grid import GridSpec, detect_grid, find_pulse_boxes, ink_mask

__all__ = ["Rectified", "detect_page_orientation", "estimate_rotation", "find_background",
           "find_page_quad", "paint_background", "rectify", "resample_sharp"]

_SMALL_SIDE_PX = 900  # working size of the quick ink-based estimates
_GRID_SKEW_CONFIDENCE = 0.3  # a grid found at least this surely gives the skew
_WAVE_ASYMMETRY = 0.5   # (ink above - below the baselines) / both, needed to call a sheet turned
#: Skew error (deg) under which the wave balance must still call a sheet turned: a sheet on
#: the threshold (case 110 of the stress matrix: -0.535 at the grid's skew, -0.498 at the
#: true one) is left upright.
_SKEW_CHECK_DEG = 0.3
#: Weight of one pulse vote in the up/down score: pulses outvote any wave balance (0-1).
_PULSE_VOTE = 1e9
#: Ink (at half the paper level) under this fraction of the image is sparse for a sheet
#: (traces cover 2-9 %); when it is also under :data:`_LIGHT_PEN_SHARE` of the ink at 0.7
#: of the paper level, the traces are a light pen's and the looser mask is used.
_SPARSE_INK = 0.015
_LIGHT_PEN_SHARE = 0.3
_MIN_ROTATION_DEG = 0.02  # smaller skews (under 1 px across a sheet) are not worth resampling
#: Background (around a photographed page) is darker than this times the nearby paper.
_BACKGROUND_RATIO = 0.7
#: ... and covers at least this fraction of the image.
_BACKGROUND_MIN_AREA = 0.003
_BACKGROUND_SIDE_PX = 320  # working size of the background search (every n-th pixel)


@dataclass(frozen=True, eq=False)
class Rectified:
    """An image brought upright, with the transform that did it.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The working image (upright, deskewed, perspective removed).
    transform : ndarray of shape (3, 3)
        Homography from input px to working px.
    rotation_deg : float
        Small-angle skew removed, degrees counter-clockwise.
    orientation : int
        Quarter turns removed (0, 90, 180 or 270 degrees counter-clockwise).
    quad : ndarray of shape (4, 2) or None
        Page corners (input px, clockwise from top-left) that were mapped to
        the image corners, if a perspective correction was made.

    Examples
    --------
    >>> r = Rectified(np.zeros((40, 60, 3), np.uint8))
    >>> r.image.shape, r.transform.tolist(), r.rotation_deg, r.orientation, r.quad
    ((40, 60, 3), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], 0.0, 0, None)
    """

    image: np.ndarray
    transform: np.ndarray = field(default_factory=lambda: np.eye(3))
    rotation_deg: float = 0.0
    orientation: int = 0
    quad: np.ndarray | None = None


def estimate_rotation(rgb_or_gray: np.ndarray, grid: GridSpec | None = None) -> float:
    """Skew of the sheet in degrees counter-clockwise (within about +-15).

    The grid lines give it (see :func:`~ecgdigitize.grid.detect_grid`); without
    a grid, the angle at which the row profile of the trace ink is sharpest
    (the isoelectric baselines are horizontal) is used.

    Parameters
    ----------
    rgb_or_gray : ndarray of shape (H, W, 3) or (H, W), uint8
        Sheet image.
    grid : GridSpec, optional
        Result of :func:`~ecgdigitize.grid.detect_grid` on the same image;
        computed here when omitted.

    Returns
    -------
    float
        Rotation present in the image, degrees counter-clockwise.

    Examples
    --------
    >>> img = np.full((300, 400, 3), 255, np.uint8)
    >>> img[:, ::8] = (230, 90, 90); img[::8, :] = (230, 90, 90)
    >>> abs(estimate_rotation(img)) < 0.05
    True
    """
    img = np.asarray(rgb_or_gray)
    if grid is None:
        try:
            grid = detect_grid(img)
        except NoGridFoundError:
            grid = None
    if grid is not None and grid.source == "grid" and grid.confidence >= _GRID_SKEW_CONFIDENCE:
        return float(grid.rotation_deg)
    return _rotation_from_ink(img)


def _rotation_from_ink(img: np.ndarray, max_deg: float = 15.0) -> float:
    """Angle (CCW deg) at which the ink's row profile is sharpest: coarse on a
    small copy, then finer on a larger one."""
    best = 0.0
    for side, steps in ((450, ((max_deg, 31),)), (_SMALL_SIDE_PX, ((0.6, 13), (0.06, 13)))):
        small, _ = _shrink(img, side)
        ink = ink_mask(small, threshold=0.6).astype(np.float32)
        if ink.sum() == 0:
            return 0.0
        h, w = ink.shape
        for span, n in steps:
            angles = best + np.linspace(-span, span, n)
            scores = []
            for a in angles:
                m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -float(a), 1.0)
                rows = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR).sum(axis=1)
                scores.append(float(np.square(rows).sum()))
            best = float(angles[int(np.argmax(scores))])
    return best


def detect_page_orientation(rgb: np.ndarray, grid: GridSpec | None = None) -> int:
    """Quarter turns present in the image: 0, 90, 180 or 270 degrees CCW.

    ECG sheets are landscape, so a clearly portrait image is a sheet on its
    side; for squarish images the traces decide (they run along the printed
    rows, so the ink's row profile is peakier than its column profile; call
    it on a deskewed image). Up and down are told apart
    by where the ink sits around each row's baseline: R waves and the
    calibration pulses rise above it.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Sheet image.
    grid : GridSpec, optional
        Grid found on ``rgb``; its skew is removed first (the pulse test
        needs vertical strokes). Without it the skew is estimated from the
        trace baselines (slower).

    Returns
    -------
    int
        Rotation present in the image (CCW degrees); ``rectify(...,
        orientation=...)`` removes it.

    Examples
    --------
    >>> img = np.full((400, 600, 3), 255, np.uint8)
    >>> for y in (100, 200, 300):  # baselines with a 1 mV pulse at their start
    ...     img[y:y + 2, 30:570] = 0; img[y - 40:y, 40:42] = img[y - 40:y, 50:52] = 0
    ...     img[y - 40:y - 38, 40:52] = 0
    >>> detect_page_orientation(img), detect_page_orientation(np.rot90(img).copy())
    (0, 90)
    """
    small, _ = _shrink(np.asarray(rgb), 1400)
    if grid is not None and grid.source == "grid" and grid.confidence >= _GRID_SKEW_CONFIDENCE:
        skew = grid.rotation_deg
    else:
        skew = _rotation_from_ink(small)
    ink = _orientation_ink(small, skew)
    h, w = ink.shape
    if max(h, w) >= 1.15 * min(h, w):  # paper sheets are landscape: the aspect ratio decides
        on_side = h > w
    else:
        on_side = _peakiness(ink.sum(axis=0)) > _peakiness(ink.sum(axis=1))
    # page on its side: turn it back to landscape, then test up/down
    turns = -1 if on_side else 0
    score = _upright_score(np.rot90(ink, k=turns))
    if -_PULSE_VOTE < score < 0.0:
        # the wave balance alone says upside down (no pulse voted): only if it says so as
        # well with the skew a little off, so that a sheet on the threshold stays as it is
        for delta in (-_SKEW_CHECK_DEG, _SKEW_CHECK_DEG):
            if _upright_score(np.rot90(_orientation_ink(small, skew + delta), k=turns)) >= 0:
                score = 0.0
                break
    if on_side:
        return 90 if score >= 0 else 270
    return 0 if score >= 0 else 180


def _orientation_ink(small: np.ndarray, skew: float) -> np.ndarray:
    """Ink mask (uint8) of the shrunk sheet with ``skew`` removed, for the orientation tests."""
    if abs(skew) > _MIN_ROTATION_DEG:
        small = _rotate(small, skew, None)[0]
    ink = ink_mask(small, threshold=0.5)  # thin pulse strokes, shrunk
    if ink.mean() < _SPARSE_INK:  # a light pen? its strokes lie above this threshold
        light = ink_mask(small, threshold=0.7)
        if ink.sum() < _LIGHT_PEN_SHARE * light.sum():
            ink = light
    return ink.astype(np.uint8)


def _peakiness(profile: np.ndarray) -> float:
    """n * sum(p^2) / sum(p)^2: 1 for a flat profile, large for a few sharp rows."""
    p = profile.astype(float)
    total = p.sum()
    return 0.0 if total <= 0 else float(len(p) * np.square(p).sum() / total ** 2)


def _upright_score(ink: np.ndarray) -> float:
    """Positive for an upright sheet, negative for one upside down.

    Calibration pulses (rectangles joined at the top, at the start of the
    rows, i.e. near the left end of the ink) decide when present; otherwise the ink rising above the row
    baselines (R waves) is weighed against the ink falling below them.
    """
    h = ink.shape[0]
    cols = np.flatnonzero(ink.any(axis=0))
    if len(cols) == 0:
        return 0.0
    left, right = cols[0] + 0.08 * np.ptp(cols), cols[-1] - 0.08 * np.ptp(cols)
    boxes = find_pulse_boxes(ink.astype(bool), min_height_px=max(8, int(0.025 * h)),
                             width_ratio=(0.08, 0.8))
    votes = sum(1 if b[4] and b[0] < left else -1 if not b[4] and b[2] > right else 0
                for b in boxes)
    if votes:
        return float(votes) * _PULSE_VOTE
    profile = gaussian_filter1d(ink.sum(axis=1).astype(float), 2.0)
    if profile.max() <= 0:
        return 0.0
    peaks, _ = find_peaks(profile, height=0.25 * profile.max(), distance=max(5, h // 30))
    half = int(np.median(np.diff(peaks)) / 2) if len(peaks) > 1 else h // 8
    score = total = 0.0
    for b in peaks:
        lo = max(b - half, 0)
        band = ink[lo:b + half].astype(bool)
        has = band.any(axis=0)
        if not has.any():
            continue
        ys = np.arange(band.shape[0])[:, None] - (b - lo)
        rise = -np.where(band, ys, 10 ** 6).min(axis=0)[has]
        fall = np.where(band, ys, -(10 ** 6)).max(axis=0)[has]
        up, down = np.clip(rise - 3, 0, None).sum(), np.clip(fall - 3, 0, None).sum()
        score += float(up - down)
        total += float(up + down)
    # most sheets are upright: without pulses, turn only on a clear asymmetry
    return score / total if total > 0 and abs(score / total) > _WAVE_ASYMMETRY else 0.0


def find_page_quad(rgb: np.ndarray) -> np.ndarray | None:
    """Corners of the sheet in a photograph, for perspective correction.

    The sheet is the largest bright, four-cornered region; when it fills
    nearly the whole image (a scan) there is nothing to correct.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Photo or scan.

    Returns
    -------
    ndarray of shape (4, 2) or None
        ``(x, y)`` input px of the top-left, top-right, bottom-right and
        bottom-left corners; None for scans and when no clear sheet is seen.

    Examples
    --------
    >>> img = np.full((300, 400, 3), 40, np.uint8)
    >>> pts = np.array([[60, 40], [350, 60], [330, 260], [50, 250]], np.int32)
    >>> _ = cv2.fillConvexPoly(img, pts, (250, 250, 250))
    >>> find_page_quad(img).round(-1).astype(int).tolist()
    [[60, 40], [350, 60], [330, 260], [50, 250]]
    """
    small, scale = _shrink(np.asarray(rgb), 600)
    grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    _, bright = cv2.threshold(cv2.GaussianBlur(grey, (5, 5), 0), 0, 255,
                              cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    area = cv2.contourArea(hull)
    h, w = grey.shape
    if area < 0.2 * h * w or area > 0.97 * h * w:
        return None
    approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(approx) != 4 or _busy_outside(grey, hull):
        return None
    return _order_corners(approx.reshape(4, 2).astype(float) * scale)


def find_background(rgb: np.ndarray) -> np.ndarray | None:
    """The area around a photographed page: dark, wide, reached from the image border.

    A photo that does not show the whole page (so :func:`find_page_quad`
    finds no outline) still shows the table or hand around part of it. Its
    dark band would pass for ink: a "trace row" along the page edge, a grid
    area reaching the image border. Thin dark strokes (traces, grid, text:
    narrower than about 0.8 % of the image) are first closed over; the paper
    level is a smooth quadratic surface fitted to what is left, the darker
    pixels dropped from the fit three times, so that a light fall-off or a
    shadow is part of the paper. A pixel is background when it is darker
    than :data:`_BACKGROUND_RATIO` times that level and its dark region
    touches the image border.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3) or (H, W), uint8
        Image (upright or not).

    Returns
    -------
    ndarray of shape (H, W), bool, or None
        True on the background; None when there is none (scans, renders,
        photos that show only paper).

    Examples
    --------
    >>> img = np.full((400, 600, 3), 240, np.uint8)
    >>> img[:, :60] = (90, 85, 80)                 # a table along the left edge
    >>> img[200, 80:580] = 0                       # a trace
    >>> bg = find_background(img)
    >>> bool(bg[:, :55].all()), bool(bg[:, 70:].any())
    (True, False)
    >>> find_background(np.full((400, 600, 3), 240, np.uint8)) is None
    True
    """
    img = np.asarray(rgb)
    # every step-th pixel: the background is wide, and the closing below takes out the noise
    step = max(1, int(np.ceil(max(img.shape[:2]) / _BACKGROUND_SIDE_PX)))
    small = np.ascontiguousarray(img[::step, ::step])
    grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    k = max(3, round(0.008 * max(h, w))) | 1
    closed = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    dark = closed < _BACKGROUND_RATIO * _paper_surface(closed)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(dark.view(np.uint8), connectivity=4)
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    keep = touches & (area >= _BACKGROUND_MIN_AREA * h * w)
    keep[0] = False
    if not keep.any():
        return None
    # one sampled pixel more on every side: the page edge is blurred
    mask = cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8))
    full = np.repeat(np.repeat(mask, step, axis=0), step, axis=1)[:img.shape[0], :img.shape[1]]
    return full.astype(bool)


def _paper_surface(grey: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Quadratic surface through the paper's grey level (darker outliers dropped)."""
    h, w = grey.shape

    def terms(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        u, v = xs / w - 0.5, ys / h - 0.5
        return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)

    step = max(1, round(max(h, w) / 80))
    design = terms(*np.mgrid[0:h:step, 0:w:step]).reshape(-1, 6)
    z = grey[::step, ::step].astype(float).ravel()
    keep = np.ones(z.size, bool)
    coef = np.zeros(6)
    for _ in range(iterations + 1):
        d = design[keep]
        coef = np.linalg.solve(d.T @ d + 1e-9 * np.eye(6), d.T @ z[keep])
        keep = z >= 0.85 * (design @ coef)
        if keep.sum() < 12:
            break
    return terms(*np.mgrid[0:h, 0:w]) @ coef


def paint_background(rgb: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """``rgb`` with the ``background`` pixels painted as blank paper (a copy; ``rgb``
    itself when there is no background).

    The paint is a neutral grey at the page's paper level (the 90th
    percentile of its brightest channel, the level every later stage
    measures against): it is neither ink nor grid colour, and it leaves
    that level where it was.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3) or (H, W), uint8
        Image.
    background : ndarray of shape (H, W), bool, or None
        Pixels to paint (see :func:`find_background`).

    Returns
    -------
    ndarray of shape (H, W, 3) or (H, W), uint8
        The painted copy, or ``rgb`` itself when nothing is to be painted.

    Examples
    --------
    >>> img = np.full((40, 60, 3), 240, np.uint8); img[:, :6] = 80
    >>> out = paint_background(img, find_background(img))
    >>> int(out[:, :6].min()), out is img, paint_background(img, None) is img
    (240, False, True)
    """
    if background is None or not background.any():
        return rgb
    img = np.asarray(rgb)
    sub = img[::4, ::4]
    page = (sub.max(axis=2) if sub.ndim == 3 else sub)[~background[::4, ::4]]
    level = int(np.percentile(page, 90)) if page.size else 255
    out = np.array(img, copy=True)
    out[background] = level
    return out


def _busy_outside(grey: np.ndarray, hull: np.ndarray) -> bool:
    """True when the image outside ``hull`` holds sheet content (edges at least half as
    dense as inside): the bright region is then a lit part of the sheet (uneven
    lighting, a shadow band), not the whole sheet on a background."""
    inside = np.zeros_like(grey)
    cv2.fillConvexPoly(inside, hull.reshape(-1, 2).astype(np.int32), 255)
    near = cv2.dilate(inside, np.ones((15, 15), np.uint8))  # the sheet's own border
    edges = cv2.Canny(grey, 50, 150) > 0
    out = near == 0
    if out.mean() < 0.02:
        return False
    return bool(edges[out].mean() > 0.5 * edges[inside > 0].mean())


def _order_corners(pts: np.ndarray) -> np.ndarray:
    s, d = pts.sum(axis=1), pts[:, 0] - pts[:, 1]
    return np.array([pts[np.argmin(s)], pts[np.argmax(d)], pts[np.argmax(s)], pts[np.argmin(d)]])


def rectify(rgb: np.ndarray, *, rotation_deg: float | None = None, quad: np.ndarray | None = None,
            orientation: int = 0, grid: GridSpec | None = None,
            fill: tuple[int, int, int] | None = None) -> Rectified:
    """Bring a sheet upright: perspective, quarter turns, then small skew.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Input image.
    rotation_deg : float, optional
        Skew present in the (quarter-turned) image, CCW degrees; estimated
        with :func:`estimate_rotation` (using ``grid``) when None and no
        ``quad`` is given.
    quad : ndarray of shape (4, 2), optional
        Page corners from :func:`find_page_quad`; mapped to a rectangle whose
        sides are the mean lengths of opposite edges. The scale changes, so
        run :func:`~ecgdigitize.grid.detect_grid` again on the result.
    orientation : {0, 90, 180, 270}, default 0
        Quarter turns present in the image (from :func:`detect_page_orientation`).
    grid : GridSpec, optional
        Grid found on the input; its skew is used when ``rotation_deg`` is None.
    fill : (int, int, int), optional
        Colour of areas uncovered by the rotation (default: the paper colour).

    Returns
    -------
    Rectified
        Working image and the input-to-working homography.

    Raises
    ------
    InputError
        If ``orientation`` is not a multiple of 90 or ``quad`` is malformed.

    Examples
    --------
    >>> img = np.full((100, 200, 3), 255, np.uint8)
    >>> r = rectify(img, rotation_deg=0.0, orientation=90)
    >>> r.image.shape, r.transform @ [0, 0, 1]
    ((200, 100, 3), array([99.,  0.,  1.]))
    """
    img = np.asarray(rgb)
    if orientation % 90 != 0:
        raise InputError(f"orientation must be 0, 90, 180 or 270; got {orientation}")
    transform = np.eye(3)
    if quad is not None:
        img, h_quad = _unwarp_quad(img, np.asarray(quad, dtype=float))
        transform = h_quad @ transform
    k = (int(orientation) // 90) % 4
    if k:
        h, w = img.shape[:2]
        img = np.ascontiguousarray(np.rot90(img, k=-k))
        transform = _quarter_turn(k, w, h) @ transform
    if rotation_deg is None:
        if quad is not None:
            rotation_deg = 0.0
        else:  # a small skew is the same angle after quarter turns
            rotation_deg = estimate_rotation(img, grid)
    if abs(rotation_deg) > _MIN_ROTATION_DEG:
        img, h_rot = _rotate(img, float(rotation_deg), fill)
        transform = h_rot @ transform
    return Rectified(img, transform, float(rotation_deg), int(orientation) % 360,
                     None if quad is None else np.asarray(quad, dtype=float))


def resample_sharp(rgb: np.ndarray, rect: Rectified) -> np.ndarray:
    """The working image of ``rect`` resampled once from ``rgb`` with bicubic interpolation.

    :func:`rectify` resamples bilinearly: detection (rows, pulses, separators,
    the grid lattice) is tuned on that and some of its decisions are fragile
    to the interpolation; but bilinear resampling blurs thin traces, and a
    rotated sheet read bilinearly loses about 0.3 dB of SNR. The trace stage
    reads this sharper copy (same geometry, same pixel grid).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The input image ``rect`` was made from.
    rect : Rectified
        Its rectification.

    Returns
    -------
    ndarray, uint8
        Same shape as ``rect.image``.

    Examples
    --------
    >>> img = np.full((200, 300, 3), 250, np.uint8); img[100:102, 20:280] = 0
    >>> rect = rectify(img, rotation_deg=3.0)
    >>> resample_sharp(img, rect).shape == rect.image.shape
    True
    """
    h, w = rect.image.shape[:2]
    return cv2.warpPerspective(np.asarray(rgb), np.asarray(rect.transform, dtype=np.float64),
                               (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=_paper_colour(np.asarray(rgb)))


def _quarter_turn(k: int, w: int, h: int) -> np.ndarray:
    """Homography of ``np.rot90(img, -k)`` (k clockwise quarter turns) for a w x h image."""
    if k == 1:
        return np.array([[0, -1, h - 1], [1, 0, 0], [0, 0, 1]], float)
    if k == 2:
        return np.array([[-1, 0, w - 1], [0, -1, h - 1], [0, 0, 1]], float)
    return np.array([[0, 1, 0], [-1, 0, w - 1], [0, 0, 1]], float)


def _rotate(img: np.ndarray, angle_ccw: float, fill: tuple[int, int, int] | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``-angle_ccw`` about the centre, growing the canvas to keep every pixel."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -angle_ccw, 1.0)
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], float) @ m.T
    new_w = int(np.ceil(corners[:, 0].max() - corners[:, 0].min()))
    new_h = int(np.ceil(corners[:, 1].max() - corners[:, 1].min()))
    m[0, 2] += (new_w - w) / 2.0
    m[1, 2] += (new_h - h) / 2.0
    colour = fill if fill is not None else _paper_colour(img)
    out = cv2.warpAffine(img, m, (new_w, new_h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=colour)
    return out, np.vstack([m, [0.0, 0.0, 1.0]])


def _unwarp_quad(img: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if quad.shape != (4, 2) or not np.all(np.isfinite(quad)):
        raise InputError(f"quad must be a (4, 2) array of finite corners; got shape {quad.shape}")
    tl, tr, br, bl = quad
    width = 0.5 * (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl))
    height = 0.5 * (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr))
    if width < 8 or height < 8:
        raise InputError("quad is degenerate (sides under 8 px)")
    dst = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    h_quad = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    out = cv2.warpPerspective(img, h_quad, (round(width), round(height)), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return out, h_quad.astype(float)


def _paper_colour(img: np.ndarray) -> tuple[int, int, int]:
    sub = img[::9, ::9].reshape(-1, img.shape[2] if img.ndim == 3 else 1)
    bright = sub[sub.max(axis=1) >= np.percentile(sub.max(axis=1), 75)]
    med = np.median(bright, axis=0)
    if img.ndim == 2:
        return (int(med[0]),) * 3  # type: ignore[return-value]
    return (int(med[0]), int(med[1]), int(med[2]))


def _shrink(img: np.ndarray, side_px: int = _SMALL_SIDE_PX) -> tuple[np.ndarray, float]:
    """A copy whose longer side is at most ``side_px``, and the scale back to input px."""
    h, w = img.shape[:2]
    factor = max(h, w) / side_px
    if factor <= 1:
        return img, 1.0
    small = cv2.resize(img, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_AREA)
    return small, factor
