"""Binary-image helpers shared by the stages."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["components", "open_lines"]


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a binary image.

    OpenCV's block-based labelling (BBDT) is used: with the per-component
    statistics it is about 3x faster on a sheet than the default algorithm,
    and the components are the same.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool or uint8
        Foreground where non-zero.

    Returns
    -------
    labels : ndarray of shape (H, W), int32
        Component of each pixel (0: background).
    stats : ndarray of shape (n, 5), int32
        ``x, y, width, height, area`` of each component (px; cv2's
        ``CC_STAT_*`` columns), row 0 for the background.

    Examples
    --------
    >>> m = np.zeros((6, 8), bool); m[1:3, 1:3] = True; m[4, 2:7] = True
    >>> labels, stats = components(m)
    >>> len(stats) - 1, stats[1:, :4].tolist()
    (2, [[1, 1, 2, 2], [2, 4, 5, 1]])
    """
    img = np.ascontiguousarray(mask)
    if img.dtype == bool:
        img = img.view(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        img, 8, cv2.CV_32S, cv2.CCL_BBDT)
    return labels, stats


def open_lines(mask: np.ndarray, length: int, axis: int,
               candidates: np.ndarray | None = None) -> np.ndarray:
    """Pixels kept by a morphological opening with a straight kernel ``length`` px long.

    The same result as :func:`cv2.morphologyEx` (``MORPH_OPEN``) over the whole
    image, border included, with a ``1 x length`` kernel (``axis=1``: along
    the rows) or ``length x 1`` (``axis=0``: along the columns). Such a kernel
    treats each row (column) alone, and keeps nothing of one holding fewer
    than ``length // 2`` foreground pixels (OpenCV's erosion counts the image
    border as foreground), so only the other rows (columns) are opened.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Foreground.
    length : int
        Kernel length, px.
    axis : {0, 1}
        1: horizontal kernel (rows); 0: vertical kernel (columns).
    candidates : ndarray of bool, optional
        Rows (``axis=1``) or columns (``axis=0``) that may be opened at all;
        the others are left out of the result.

    Returns
    -------
    ndarray of shape (H, W), bool

    Examples
    --------
    >>> m = np.zeros((6, 40), bool); m[2, 3:35] = True; m[4, 10:20] = True
    >>> out = open_lines(m, 25, axis=1)
    >>> int(out[2].sum()), int(out[4].sum())
    (32, 0)
    """
    counts = np.count_nonzero(mask, axis=axis)
    lines = counts >= length // 2
    if candidates is not None:
        lines &= candidates
    idx = np.flatnonzero(lines)
    out = np.zeros(mask.shape, bool)
    if idx.size == 0:
        return out
    u8 = mask.view(np.uint8)
    if axis == 1:
        out[idx] = cv2.morphologyEx(u8[idx], cv2.MORPH_OPEN, np.ones((1, length), np.uint8)) > 0
    else:
        sub = np.ascontiguousarray(u8[:, idx])
        out[:, idx] = cv2.morphologyEx(sub, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8)) > 0
    return out
