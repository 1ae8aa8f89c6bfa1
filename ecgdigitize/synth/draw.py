"""Anti-aliased drawing primitives of the sheet renderer (grid, ink, text).

Each function returns an opacity mask (float32, 0..1) of the image size; the
renderer composites masks onto the paper colour. Pixel centres sit at integer
coordinates: pixel ``i`` covers ``[i - 0.5, i + 0.5]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = ["composite", "grid_mask", "ink_mask", "line_profile", "text_mask"]

_SHIFT = 4  # cv2 fixed-point bits: 1/16 px


def line_profile(n: int, positions: np.ndarray, width: float) -> np.ndarray:
    """Coverage (0..1) of ``n`` pixels by lines of ``width`` px centred at ``positions``.

    Parameters
    ----------
    n : int
        Number of pixels.
    positions : ndarray
        Line centres, px (pixel ``i`` spans ``i - 0.5 .. i + 0.5``).
    width : float
        Line width, px.

    Returns
    -------
    ndarray of shape (n,), float32
        Fraction of each pixel covered by a line (overlaps take the maximum).

    Examples
    --------
    >>> line_profile(5, np.array([2.0]), 1.0).tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    >>> line_profile(4, np.array([1.5]), 1.0).tolist()
    [0.0, 0.5, 0.5, 0.0]
    """
    prof = np.zeros(n, dtype=np.float32)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.size == 0 or width <= 0:
        return prof
    half = width / 2.0
    base = np.floor(pos).astype(np.int64)
    reach = int(np.ceil(half)) + 1
    for d in range(-reach, reach + 1):
        idx = base + d
        cover = np.minimum(idx + 0.5, pos + half) - np.maximum(idx - 0.5, pos - half)
        ok = (idx >= 0) & (idx < n) & (cover > 0)
        np.maximum.at(prof, idx[ok], np.minimum(cover[ok], 1.0).astype(np.float32))
    return prof


def _span(n: int, lo: float, hi: float) -> np.ndarray:
    """Coverage of pixels by the interval [lo, hi]."""
    i = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(i + 0.5, hi) - np.maximum(i - 0.5, lo), 0, 1).astype(np.float32)


def grid_mask(shape: tuple[int, int], box_px: tuple[float, float, float, float],
              px_per_mm: float, *, pattern: str = "solid", minor_px: float = 1.0,
              major_px: float = 2.0, minor_alpha: float = 0.5, frame_px: float = 0.0,
              dot_spacing_mm: float = 0.5) -> np.ndarray:
    """Opacity of a 1 mm / 5 mm ECG grid filling ``box_px = (x0, y0, x1, y1)``.

    ``pattern="solid"`` draws lines; ``"dotted"`` draws a dot at every 1 mm
    intersection and dotted 5 mm lines (a dot every ``dot_spacing_mm``). Lines start at the
    box's top-left corner. ``frame_px > 0`` adds a rectangle on the box edges.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mask, px.
    box_px : (float, float, float, float)
        ``(x0, y0, x1, y1)`` of the grid area, px.
    px_per_mm : float
        Scale, px per mm (the 1 mm line spacing).
    pattern : {"solid", "dotted"}, default "solid"
    minor_px, major_px : float, default 1 and 2
        Width of the 1 mm and 5 mm lines (or dots), px.
    minor_alpha : float, default 0.5
        Opacity of the 1 mm lines relative to the 5 mm ones.
    frame_px : float, default 0
        Width of a frame around the box, px (0: none).
    dot_spacing_mm : float, default 0.5
        Dot pitch along the dotted 5 mm lines, mm.

    Returns
    -------
    ndarray of shape (height, width), float32
        Opacity 0..1.

    Examples
    --------
    >>> m = grid_mask((50, 60), (5, 5, 55, 45), 4.0)
    >>> m.shape, float(m[25, 25]), float(m[7, 7])
    ((50, 60), 1.0, 0.0)
    """
    h, w = shape
    x0, y0, x1, y1 = box_px
    xs = x0 + np.arange(0, int(np.floor((x1 - x0) / px_per_mm + 1e-6)) + 1) * px_per_mm
    ys = y0 + np.arange(0, int(np.floor((y1 - y0) / px_per_mm + 1e-6)) + 1) * px_per_mm
    in_x, in_y = _span(w, x0, x1), _span(h, y0, y1)
    major_x, major_y = xs[::5], ys[::5]
    if pattern == "solid":
        minor = np.maximum(line_profile(w, xs, minor_px)[None, :] * in_y[:, None],
                           line_profile(h, ys, minor_px)[:, None] * in_x[None, :])
        major = np.maximum(line_profile(w, major_x, major_px)[None, :] * in_y[:, None],
                           line_profile(h, major_y, major_px)[:, None] * in_x[None, :])
    else:
        minor = line_profile(w, xs, minor_px)[None, :] * line_profile(h, ys, minor_px)[:, None]
        step = px_per_mm * dot_spacing_mm
        fine_x = line_profile(w, np.arange(x0, x1 + 1e-6, step), major_px)
        fine_y = line_profile(h, np.arange(y0, y1 + 1e-6, step), major_px)
        major = np.maximum(line_profile(w, major_x, major_px)[None, :] * fine_y[:, None],
                           line_profile(h, major_y, major_px)[:, None] * fine_x[None, :])
    mask = np.maximum(major, minor_alpha * minor)
    if frame_px > 0:
        edges_x = line_profile(w, np.array([x0, x1]), frame_px)
        edges_y = line_profile(h, np.array([y0, y1]), frame_px)
        frame = np.maximum(edges_x[None, :] * _span(h, y0 - frame_px / 2, y1 + frame_px / 2)[:, None],
                           edges_y[:, None] * _span(w, x0 - frame_px / 2, x1 + frame_px / 2)[None, :])
        mask = np.maximum(mask, frame)
    return mask


def ink_mask(shape: tuple[int, int], polylines: Sequence[tuple[np.ndarray, np.ndarray]],
             width_px: float, *, supersample: int = 2) -> np.ndarray:
    """Opacity of anti-aliased polylines ``(x_px, y_px)`` of ``width_px`` (NaN breaks a line).

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mask, px.
    polylines : sequence of (ndarray, ndarray)
        ``(x_px, y_px)`` of each line; a NaN ``y`` breaks it.
    width_px : float
        Line width, px.
    supersample : int, default 2
        Drawing resolution factor (anti-aliasing).

    Returns
    -------
    ndarray of shape (height, width), float32
        Opacity 0..1.

    Examples
    --------
    >>> m = ink_mask((20, 40), [(np.array([2.0, 37.0]), np.array([10.0, 10.0]))], 2.0)
    >>> float(m[10, 20]), float(m[2, 20])
    (1.0, 0.0)
    """
    h, w = shape
    ss = int(supersample)
    canvas: np.ndarray = np.zeros((h * ss, w * ss), dtype=np.uint8)
    thickness = max(1, round(width_px * ss))
    scale = float(1 << _SHIFT)
    for xs, ys in polylines:
        for seg in _finite_runs(np.asarray(xs, float), np.asarray(ys, float)):
            pts = np.rint(((seg + 0.5) * ss - 0.5) * scale).astype(np.int32)
            if len(pts) == 1:
                pts = np.vstack([pts, pts])
            cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, 255, thickness,
                          cv2.LINE_AA, _SHIFT)
    if ss > 1:
        canvas = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    return canvas.astype(np.float32) / 255.0


def _finite_runs(xs: np.ndarray, ys: np.ndarray) -> list[np.ndarray]:
    ok = np.isfinite(xs) & np.isfinite(ys)
    if ok.all():
        return [np.stack([xs, ys], axis=1)] if len(xs) else []
    runs, start = [], None
    for i, good in enumerate(np.append(ok, False)):
        if good and start is None:
            start = i
        elif not good and start is not None:
            runs.append(np.stack([xs[start:i], ys[start:i]], axis=1))
            start = None
    return runs


@lru_cache(maxsize=16)
def _font(family: str, size_px: int) -> ImageFont.FreeTypeFont:
    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSerif.ttf" if family == "serif" else "DejaVuSans.ttf"
    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", name)
    return ImageFont.truetype(path, max(4, int(size_px)))


def text_mask(shape: tuple[int, int],
              items: Sequence[tuple[str, float, float, float, str]], *,
              family: str = "sans",
              lines: Sequence[tuple[float, float, float, float, float]] = ()) -> np.ndarray:
    """Opacity of text and straight lines.

    ``items``: ``(text, x_px, y_px, size_px, anchor)`` with a PIL anchor
    (``"ls"`` = left/baseline, ``"mt"`` = middle/top...). ``lines``:
    ``(x0, y0, x1, y1, width_px)``.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mask, px.
    items : sequence of (str, float, float, float, str)
        Text items as above.
    family : str, default "sans"
        Font family (``"sans"`` or ``"serif"``).
    lines : sequence of (float, float, float, float, float), default ()
        Straight lines as above.

    Returns
    -------
    ndarray of shape (height, width), float32
        Opacity 0..1.

    Examples
    --------
    >>> m = text_mask((30, 80), [("II", 5.0, 25.0, 20.0, "ls")], lines=[(-0.5, 2, 79.5, 2, 1)])
    >>> bool(m[2].min() > 0.9), bool(m[5:26, :30].max() > 0.5)
    (True, True)
    """
    from PIL import Image, ImageDraw

    h, w = shape
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for text, x, y, size, anchor in items:
        if text:
            draw.text((x, y), text, fill=255, font=_font(family, round(size)), anchor=anchor)
    out = np.asarray(img, dtype=np.float32) / 255.0
    if lines:
        np.maximum(out, _line_mask(shape, lines), out=out)
    return out


def _line_mask(shape: tuple[int, int],
               lines: Sequence[tuple[float, float, float, float, float]]) -> np.ndarray:
    """Opacity of straight lines ``(x0, y0, x1, y1, width_px)`` drawn where they are.

    Vertical and horizontal lines (column separators, rules) are exact
    rectangles, anti-aliased by pixel coverage: a separator's centre in the
    image is its true x, to a hundredth of a pixel, where PIL's integer
    drawing moved it by up to half a pixel. Slanted lines go through
    :func:`ink_mask` (cv2 anti-aliasing).
    """
    h, w = shape
    out = np.zeros(shape, dtype=np.float32)
    for x0, y0, x1, y1, width in lines:
        width = max(float(width), 1.0)
        half = width / 2.0
        if x0 == x1:
            rows, cols = _span(h, min(y0, y1), max(y0, y1)), _span(w, x0 - half, x0 + half)
        elif y0 == y1:
            rows, cols = _span(h, y0 - half, y0 + half), _span(w, min(x0, x1), max(x0, x1))
        else:
            np.maximum(out, ink_mask(shape, [(np.array([x0, x1]), np.array([y0, y1]))], width),
                       out=out)
            continue
        r, c = np.flatnonzero(rows), np.flatnonzero(cols)
        if r.size and c.size:
            box = (slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1))
            np.maximum(out[box], np.outer(rows[box[0]], cols[box[1]]), out=out[box])
    return out


def composite(paper: np.ndarray, mask: np.ndarray, colour: Sequence[int]) -> None:
    """Blend ``colour`` into float32 ``paper`` (3, H, W; planar) in place, opacity ``mask``.

    Parameters
    ----------
    paper : ndarray of shape (3, H, W), float32
        Planar RGB canvas, 0..255; modified in place.
    mask : ndarray of shape (H, W), float32
        Opacity 0..1 of the colour.
    colour : sequence of int
        RGB of the ink.

    Examples
    --------
    >>> paper = np.full((3, 1, 2), 255.0, np.float32)
    >>> composite(paper, np.array([[1.0, 0.5]], np.float32), (0, 0, 0))
    >>> paper[0].tolist()
    [[0.0, 127.5]]
    """
    tmp = np.empty_like(mask)
    for c, value in enumerate(colour):
        np.subtract(paper[c], np.float32(value), out=tmp)
        tmp *= mask
        paper[c] -= tmp
