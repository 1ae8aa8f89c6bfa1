"""Image input of the CNN predictors: grid-area crop, resize, lead crops, tf.data, augmentation.

Everything that turns a sheet into model input is plain NumPy/PIL
(:func:`prepare_sheet`, :func:`prepare_leads`), shared by the Keras
(:mod:`ecgclassify.cnn`) and the LiteRT (:mod:`ecgclassify.tflite`) paths so
both see identical pixels. Only :func:`make_dataset` and the augmentation
need TensorFlow, imported when called.

A CNN must never see the sheet header (patient ID, timestamp) nor the footer
(heart rate, date): :func:`find_grid_area` crops every sheet to the frame of
its grid first.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ecgdigitize.errors import (
    ConfigurationError,
    ECGError,
    ImageTooLargeError,
    UnreadableImageError,
)
from ecgdigitize.io import DEFAULT_MAX_PIXELS, load_image

__all__ = [
    "LEAD_GRID_NAMES",
    "Augmentation",
    "find_grid_area",
    "fit_to_size",
    "grey_levels",
    "make_dataset",
    "normalize_image_size",
    "prepare_batch",
    "prepare_leads",
    "prepare_sheet",
]

#: Names of the 16 crops of the fixed 4x4 split of a 3x4+1 grid area (row by row);
#: the rhythm strip (lead II) is cut into its four 2.5 s quarters.
LEAD_GRID_NAMES: tuple[str, ...] = (
    "I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6",
    "II-r1", "II-r2", "II-r3", "II-r4",
)
#: White paper: the value used to pad and to fill pixels moved in by augmentation.
PAPER_VALUE = 255
_CACHE_MAX = 4096
_CACHE: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()


@dataclass(frozen=True)
class Augmentation:
    """Random geometric augmentation applied to training images (Keras-style ranges).

    Parameters
    ----------
    rotation_deg : float, default 3
        Rotation drawn uniformly in [-rotation_deg, rotation_deg] degrees.
    shift_fraction : float, default 0.05
        Shift drawn in [-f, f] times the image width (x) and height (y).
    shear : float, default 0.05
        Shear drawn in [-shear, shear] (tangent of the shear angle).
    zoom : float, default 0.08
        Scale drawn in [1 - zoom, 1 + zoom].
    horizontal_flip : bool, default False
        Mirror left-right with probability 0.5. Off by default: it reverses
        time on an ECG. :meth:`paper` turns it on to reproduce the paper.

    Examples
    --------
    >>> Augmentation.paper().rotation_deg
    20.0
    """

    rotation_deg: float = 3.0
    shift_fraction: float = 0.05
    shear: float = 0.05
    zoom: float = 0.08
    horizontal_flip: bool = False

    @classmethod
    def paper(cls) -> Augmentation:
        """The reference paper's ``ImageDataGenerator`` ranges, flips included."""
        return cls(rotation_deg=20.0, shift_fraction=0.2, shear=0.2, zoom=0.2,
                   horizontal_flip=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for model manifests)."""
        return {"rotation_deg": self.rotation_deg, "shift_fraction": self.shift_fraction,
                "shear": self.shear, "zoom": self.zoom,
                "horizontal_flip": self.horizontal_flip}


def normalize_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """Return ``(height, width)`` in px from an int (square) or a pair.

    Parameters
    ----------
    image_size : int or sequence of two ints
        One side in px for a square image, or ``(height, width)`` in px.

    Returns
    -------
    tuple of (int, int)
        ``(height, width)`` in px, each at least 32.

    Raises
    ------
    ConfigurationError
        Not one or two positive integers, or a side below 32 px.

    Examples
    --------
    >>> normalize_image_size(64)
    (64, 64)
    >>> normalize_image_size([160, 272])
    (160, 272)
    >>> normalize_image_size(16)
    Traceback (most recent call last):
    ...
    ecgdigitize.errors.ConfigurationError: image_size sides must be >= 32 px; got (16, 16)
    """
    if isinstance(image_size, int | np.integer):
        hw = (int(image_size), int(image_size))
    else:
        vals = [int(v) for v in image_size]
        if len(vals) != 2:
            raise ConfigurationError(f"image_size must be an int or (height, width); "
                                     f"got {image_size!r}")
        hw = (vals[0], vals[1])
    if min(hw) < 32:
        raise ConfigurationError(f"image_size sides must be >= 32 px; got {hw}")
    return hw


# --- grid area ---------------------------------------------------------------
def find_grid_area(rgb: np.ndarray, *, min_line_fraction: float = 0.5) -> tuple[int, int, int, int]:
    """Find the grid area of a sheet: the box of its grid-coloured frame.

    Pixels whose red channel clearly exceeds green (pink/red/orange grid ink)
    are projected on both axes; the outermost rows/columns where they cover
    more than ``min_line_fraction`` of the sheet are the frame. Without such a
    frame (no solid border) the box holding 98 % of the grid-coloured pixels
    is used; without grid colour at all, the whole image.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) uint8
        The sheet.
    min_line_fraction : float, default 0.5
        Fraction of the image width (height) a row (column) of grid colour must
        cover to count as a frame line.

    Returns
    -------
    tuple of int
        ``(x0, y0, x1, y1)`` in px, end-exclusive.

    Examples
    --------
    >>> img = np.full((100, 200, 3), 255, np.uint8)
    >>> img[20, 10:190] = img[80, 10:190] = (240, 120, 150)
    >>> img[20:81, 10] = img[20:81, 189] = (240, 120, 150)
    >>> find_grid_area(img)
    (10, 20, 190, 81)
    """
    h, w = rgb.shape[:2]
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    grid = (r - g > 40) & (r > 150)
    if grid.sum() < 0.001 * h * w:
        return 0, 0, w, h
    rows = np.flatnonzero(grid.mean(axis=1) > 0.9 * min_line_fraction)
    if rows.size >= 2 and rows[-1] - rows[0] > 0.25 * h:
        band = grid[rows[0]:rows[-1] + 1]
        cols = np.flatnonzero(band.mean(axis=0) > 0.9 * min_line_fraction)
        if cols.size >= 2 and cols[-1] - cols[0] > 0.25 * w:
            return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    ys, xs = np.nonzero(grid)
    y0, y1 = np.percentile(ys, [1, 99]).astype(int)
    x0, x1 = np.percentile(xs, [1, 99]).astype(int)
    return int(x0), int(y0), int(x1) + 1, int(y1) + 1


def fit_to_size(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize keeping the aspect ratio, then pad with white to ``size_hw`` (centred).

    Parameters
    ----------
    rgb : ndarray (H, W, 3) uint8
        The image.
    size_hw : tuple of (int, int)
        Output ``(height, width)`` in px.

    Returns
    -------
    ndarray (height, width, 3) uint8
        The resized image centred on white paper (value 255); it fills the
        output along at least one axis.

    Examples
    --------
    >>> fit_to_size(np.zeros((50, 200, 3), np.uint8), (64, 128)).shape
    (64, 128, 3)
    """
    th, tw = size_hw
    h, w = rgb.shape[:2]
    scale = min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.LANCZOS
                                                   if scale > 0.5 else Image.Resampling.BOX))
    out = np.full((th, tw, 3), PAPER_VALUE, np.uint8)
    y0, x0 = (th - nh) // 2, (tw - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def _load_reduced(source: Any, target_px: int) -> np.ndarray:
    """Load a sheet; JPEG files are DCT-downscaled while decoding (2-8x faster)."""
    if isinstance(source, str | os.PathLike) and Path(source).suffix.lower() in (".jpg", ".jpeg"):
        try:
            with Image.open(source) as im:
                if im.width * im.height > DEFAULT_MAX_PIXELS:
                    raise ImageTooLargeError(f"{im.width}x{im.height} px exceeds "
                                             f"{DEFAULT_MAX_PIXELS} pixels", path=source)
                # keep >= 2x the target resolution so the frame lines survive
                im.draft("RGB", (max(target_px * 2, im.width // 8), 1))
                return load_image(im.copy())
        except (OSError, SyntaxError) as exc:
            raise UnreadableImageError(f"cannot decode image: {exc}", path=source) from exc
    return load_image(source)


def _crop_area(rgb: np.ndarray, crop: bool) -> np.ndarray:
    if not crop:
        return rgb
    x0, y0, x1, y1 = find_grid_area(rgb)
    return rgb[y0:y1, x0:x1]


def prepare_sheet(source: Any, image_size: int | Sequence[int] = (160, 272), *,
                  crop: bool = True) -> np.ndarray:
    """Load one sheet, crop it to its grid area, resize and pad it: the CNN input.

    Parameters
    ----------
    source : path-like, bytes, PIL image or ndarray
        The sheet (anything :func:`ecgdigitize.io.load_image` reads).
    image_size : int or (int, int), default (160, 272)
        Output ``(height, width)`` in px.
    crop : bool, default True
        Crop to the grid area first (drops header and footer text).

    Returns
    -------
    ndarray (height, width, 3) uint8

    Examples
    --------
    >>> prepare_sheet(np.full((300, 500, 3), 255, np.uint8), 64).shape
    (64, 64, 3)
    """
    hw = normalize_image_size(image_size)
    rgb = _crop_area(_load_reduced(source, max(hw)), crop)
    return fit_to_size(rgb, hw)


def lead_boxes_grid(area_hw: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Fixed 4x4 split of a 3x4+1 grid area: 12 lead panels + 4 rhythm quarters.

    Returns ``(x0, y0, x1, y1)`` boxes in px of the grid area, row by row, in
    the order of :data:`LEAD_GRID_NAMES`.
    """
    h, w = area_hw
    ys = np.linspace(0, h, 5).round().astype(int)
    xs = np.linspace(0, w, 5).round().astype(int)
    return [(int(xs[c]), int(ys[r]), int(xs[c + 1]), int(ys[r + 1]))
            for r in range(4) for c in range(4)]


def prepare_leads(source: Any, image_size: int | Sequence[int] = (64, 112), *,
                  crop: bool = True, overlap: float = 0.1,
                  lead_source: str = "grid") -> np.ndarray:
    """Cut a sheet into its 16 lead crops (12 leads + 4 rhythm-strip quarters), each resized.

    Parameters
    ----------
    source : path-like, bytes, PIL image or ndarray
        The sheet.
    image_size : int or (int, int), default (64, 112)
        Size ``(height, width)`` in px of each crop.
    crop : bool, default True
        Crop to the grid area first (fixed split only).
    overlap : float, default 0.1
        Each box of the fixed split grows by this fraction of its height/width
        on every side, so a tall complex crossing into the next row is kept.
    lead_source : {"grid", "digitizer"}, default "grid"
        ``"grid"``: fixed 4x4 split of the grid area (a 3x4+1 sheet).
        ``"digitizer"``: the panels found by :func:`ecgdigitize.digitize`
        (full-resolution decode, seconds per sheet); falls back to the fixed
        split, with a warning, when digitization fails.

    Returns
    -------
    ndarray (16, height, width, 3) uint8
        In the order of :data:`LEAD_GRID_NAMES`.

    Raises
    ------
    ConfigurationError
        Unknown ``lead_source``.

    Examples
    --------
    >>> prepare_leads(np.full((400, 700, 3), 255, np.uint8), 32).shape
    (16, 32, 32, 3)
    """
    hw = normalize_image_size(image_size)
    if lead_source not in ("grid", "digitizer"):
        raise ConfigurationError(f"lead_source must be 'grid' or 'digitizer'; "
                                 f"got {lead_source!r}")
    if lead_source == "digitizer":
        rgb = load_image(source)
        crops = digitizer_crops(rgb)
        if crops is not None:
            return np.stack([fit_to_size(np.ascontiguousarray(c), hw) for c in crops])
        area = _crop_area(rgb, crop)
    else:
        area = _crop_area(_load_reduced(source, 4 * max(hw)), crop)
    ah, aw = area.shape[:2]
    out = []
    for x0, y0, x1, y1 in lead_boxes_grid((ah, aw)):
        dx, dy = round((x1 - x0) * overlap), round((y1 - y0) * overlap)
        box = area[max(0, y0 - dy):min(ah, y1 + dy), max(0, x0 - dx):min(aw, x1 + dx)]
        out.append(fit_to_size(np.ascontiguousarray(box), hw))
    return np.stack(out)


def digitizer_crops(rgb: np.ndarray) -> list[np.ndarray] | None:
    """The 16 crops of :data:`LEAD_GRID_NAMES` from the digitizer's panels, or None.

    The 12 lead panels come from :func:`ecgdigitize.layout.crop_panels`; the
    first rhythm strip is cut into four equal quarters. None (with a warning)
    when the digitizer is unavailable, fails, or misses a lead or the strip.
    """
    try:
        from ecgdigitize import digitize
        from ecgdigitize.layout import crop_panels

        panels = crop_panels(rgb, digitize(rgb))
    except (ImportError, ECGError) as exc:
        warnings.warn(f"digitizer lead crops unavailable ({exc}); using the fixed 3x4+1 "
                      "split", RuntimeWarning, stacklevel=3)
        return None
    rhythm = [v for k, v in panels.items() if k.endswith("_rhythm")]
    missing = [n for n in LEAD_GRID_NAMES[:12] if n not in panels]
    if missing or not rhythm or min(c.size for c in [*panels.values()]) == 0:
        warnings.warn(f"digitizer found no panel for {missing or 'the rhythm strip'}; using "
                      "the fixed 3x4+1 split", RuntimeWarning, stacklevel=3)
        return None
    strip = rhythm[0]
    xs = np.linspace(0, strip.shape[1], 5).round().astype(int)
    return [panels[n] for n in LEAD_GRID_NAMES[:12]] + [strip[:, xs[i]:xs[i + 1]]
                                                         for i in range(4)]


def _cache_key(source: Any, kind: str, hw: tuple[int, int], crop: bool,
               lead_source: str) -> tuple[Any, ...] | None:
    if isinstance(source, str | os.PathLike):
        try:
            st = os.stat(source)
        except OSError:
            return None
        return (os.path.abspath(source), st.st_mtime_ns, st.st_size, kind, hw, crop,
                lead_source)
    return None


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of uint8 RGB images, as PIL's ``"L"`` mode.

    Parameters
    ----------
    rgb : ndarray
        ``(..., h, w, 3)`` uint8 RGB.

    Returns
    -------
    ndarray
        ``(..., h, w)`` uint8: 0.299 R + 0.587 G + 0.114 B, rounded.

    Examples
    --------
    >>> grey_levels(np.array([[[255, 0, 0], [255, 255, 255]]], np.uint8))
    array([[ 76, 255]], dtype=uint8)
    """
    luma = np.asarray(rgb, np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(luma).clip(0, 255).astype(np.uint8)


def prepare_batch(X: Sequence[Any], image_size: int | Sequence[int], *, input: str = "sheet",
                  crop: bool = True, lead_source: str = "grid",
                  color: str = "rgb") -> np.ndarray:
    """Prepare many sheets (files are decoded once per process and cached).

    Parameters
    ----------
    X : sequence of sheets
        Paths, bytes, PIL images or ndarrays (anything
        :func:`ecgdigitize.io.load_image` reads). Only files are cached, keyed
        by path, modification time and size.
    image_size : int or (int, int)
        ``(height, width)`` in px of each sheet (``input="sheet"``) or of each
        lead crop (``input="leads"``).
    input : {"sheet", "leads"}, default "sheet"
        Whole grid area (:func:`prepare_sheet`) or its 16 lead crops
        (:func:`prepare_leads`).
    crop : bool, default True
        Crop to the grid area first (drops header and footer text).
    lead_source : {"grid", "digitizer"}, default "grid"
        How lead crops are found (``input="leads"`` only); see :func:`prepare_leads`.
    color : {"rgb", "grey"}, default "rgb"
        ``"grey"`` replaces each pixel by its luma (:func:`grey_levels`), repeated in
        the three channels, so the networks keep their RGB input (and ImageNet
        weights still fit). The pink grid then differs from the black trace by
        brightness alone.

    Returns
    -------
    ndarray
        ``(n, h, w, 3)`` for ``input="sheet"``, ``(n, 16, h, w, 3)`` for
        ``input="leads"``; uint8. ``lead_source`` is passed to :func:`prepare_leads`.

    Raises
    ------
    ConfigurationError
        Unknown ``input`` or ``color``.

    Examples
    --------
    >>> blank = np.full((300, 500, 3), 255, np.uint8)
    >>> prepare_batch([blank, blank], 64).shape
    (2, 64, 64, 3)
    >>> prepare_batch([blank], (32, 48), input="leads").shape
    (1, 16, 32, 48, 3)
    >>> prepare_batch([], 64).shape
    (0, 64, 64, 3)
    >>> pink = np.full((300, 500, 3), (250, 200, 210), np.uint8)
    >>> g = prepare_batch([pink], 32, color="grey")
    >>> g.shape, bool((g[..., 0] == g[..., 2]).all())
    ((1, 32, 32, 3), True)
    """
    if input not in ("sheet", "leads"):
        raise ConfigurationError(f"input must be 'sheet' or 'leads'; got {input!r}")
    if color not in ("rgb", "grey"):
        raise ConfigurationError(f"color must be 'rgb' or 'grey'; got {color!r}")
    hw = normalize_image_size(image_size)
    arrays = []
    for src in X:
        key = _cache_key(src, input, hw, crop, lead_source)
        arr = _CACHE.get(key) if key is not None else None
        if arr is None:
            arr = (prepare_sheet(src, hw, crop=crop) if input == "sheet"
                   else prepare_leads(src, hw, crop=crop, lead_source=lead_source))
            arr.setflags(write=False)
            if key is not None:
                _CACHE[key] = arr
                if len(_CACHE) > _CACHE_MAX:
                    _CACHE.popitem(last=False)
        arrays.append(arr)
    if not arrays:
        shape = (0, *hw, 3) if input == "sheet" else (0, 16, *hw, 3)
        return np.zeros(shape, np.uint8)
    batch = np.stack(arrays)
    if color == "grey":
        batch = np.repeat(grey_levels(batch)[..., None], 3, axis=-1)
    return batch


# --- tf.data -------------------------------------------------------------------
def _affine_params(aug: Augmentation, rnd: Any, hw: tuple[int, int]) -> Any:
    """Projective-transform vectors (output -> input px) from 6 uniform draws in [0, 1)."""
    import tensorflow as tf

    h, w = float(hw[0]), float(hw[1])
    u = 2.0 * rnd - 1.0  # in [-1, 1)
    theta = u[0] * aug.rotation_deg * math.pi / 180.0
    shear = u[1] * aug.shear
    zoom = 1.0 + u[2] * aug.zoom
    tx, ty = u[3] * aug.shift_fraction * w, u[4] * aug.shift_fraction * h
    flip = tf.where((rnd[5] < 0.5) & aug.horizontal_flip, -1.0, 1.0)
    c, s = tf.cos(theta), tf.sin(theta)
    # input = R(theta) @ Shear @ diag(flip / zoom, 1 / zoom) @ (out - centre) + centre - shift
    a00, a01 = c * flip / zoom, (c * shear - s) / zoom
    a10, a11 = s * flip / zoom, (s * shear + c) / zoom
    cx, cy = w / 2.0, h / 2.0
    b0 = cx - a00 * cx - a01 * cy - tx
    b1 = cy - a10 * cx - a11 * cy - ty
    return tf.stack([a00, a01, b0, a10, a11, b1, 0.0, 0.0])


def augment_image(image: Any, rnd: Any, aug: Augmentation) -> Any:
    """Apply one random affine transform (float image, white fill) with TensorFlow."""
    import tensorflow as tf

    hw = (int(image.shape[-3]), int(image.shape[-2]))
    transform = tf.cast(_affine_params(aug, rnd, hw), tf.float32)[None, :]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.constant(hw, tf.int32),
        fill_value=float(PAPER_VALUE), interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def make_dataset(images: np.ndarray, labels: np.ndarray | None = None,
                 sample_weight: np.ndarray | None = None, *, batch_size: int = 16,
                 augmentation: Augmentation | None = None, shuffle: bool = False,
                 seed: int = 0) -> Any:
    """A batched, cached, prefetched ``tf.data.Dataset`` of float32 images in [0, 255].

    Parameters
    ----------
    images : ndarray (n, h, w, 3) uint8
        Prepared images (see :func:`prepare_batch`).
    labels, sample_weight : ndarray (n,), optional
        Integer class indices and per-sample weights.
    batch_size : int, default 16
    augmentation : Augmentation, optional
        Applied after caching, so a new transform is drawn every epoch.
    shuffle : bool, default False
    seed : int, default 0
        Seeds shuffling and augmentation (deterministic per seed).

    Returns
    -------
    tf.data.Dataset
        Batches of ``images`` as float32, alone or as ``(images, labels)`` or
        ``(images, labels, sample_weight)`` tuples (``sample_weight`` is used
        only with ``labels``).

    Examples
    --------
    Building a dataset imports TensorFlow (seconds), so these lines are skipped
    in the doctests:

    >>> images = np.full((10, 64, 64, 3), 255, np.uint8)
    >>> labels = np.array([0, 1] * 5)
    >>> ds = make_dataset(images, labels, batch_size=4, augmentation=Augmentation(),
    ...                   shuffle=True, seed=1)  # doctest: +SKIP
    >>> [tuple(x.shape) for x, _ in ds]  # doctest: +SKIP
    [(4, 64, 64, 3), (4, 64, 64, 3), (2, 64, 64, 3)]
    """
    import tensorflow as tf

    parts: list[Any] = [images]
    if labels is not None:
        parts.append(np.asarray(labels, np.int32))
        if sample_weight is not None:
            parts.append(np.asarray(sample_weight, np.float32))
    ds = tf.data.Dataset.from_tensor_slices(tuple(parts)).cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda *xs: (tf.cast(xs[0], tf.float32), *xs[1:]))
    if augmentation is not None:
        rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        rnd = rnd.map(lambda r: tf.random.stateless_uniform([6], tf.stack([r, r // 7 + 1])))
        ds = tf.data.Dataset.zip((ds, rnd)).map(
            lambda xs, r: (augment_image(xs[0], r, augmentation), *xs[1:]))
    if len(parts) == 1:
        ds = ds.map(lambda *xs: xs[0])
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
