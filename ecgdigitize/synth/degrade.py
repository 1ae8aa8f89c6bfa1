"""Scanner and phone-photo defects applied to a rendered sheet.

:func:`degrade` is a pure function: image in, image plus the homography of
its geometric part out. Every random choice comes from the ``rng`` passed in,
so a seed reproduces the same defects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigurationError

__all__ = ["Degradation", "apply_homography", "degrade", "local_scale"]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Degradation:
    """Defects to apply to a clean sheet; every field's default is "off".

    Parameters
    ----------
    rotation_deg : float, default 0
        Rotation about the image centre, degrees counter-clockwise (exact, not random).
    perspective : float, default 0
        Maximum inward displacement of each page corner, as a fraction of the
        shorter image side (random per corner; 0.03 looks like a hand-held photo).
    blur_sigma_px : float, default 0
        Gaussian blur sigma, px.
    gaussian_noise_std : float, default 0
        Additive Gaussian noise, standard deviation as a fraction of 255.
    salt_pepper_fraction : float, default 0
        Fraction of pixels set to black or white at random.
    jpeg_quality : int or None, default None
        Re-encode as JPEG at this quality (1-100).
    shading : float, default 0
        Strength (0-1) of uneven illumination: a random linear gradient plus vignetting.
    colour_cast : float or (float, float, float), default 0
        A strength ``s`` draws RGB multipliers uniformly in ``[1 - s, 1]``; a
        triple gives the multipliers directly.
    downscale : float, default 1
        Shrink the image by this factor (2 = half the width and height).
    border_colour : (int, int, int), default white
        Colour shown where the warped page no longer covers the image.

    Examples
    --------
    >>> Degradation().is_identity
    True
    >>> Degradation.photo().rotation_deg
    2.0
    """

    rotation_deg: float = 0.0
    perspective: float = 0.0
    blur_sigma_px: float = 0.0
    gaussian_noise_std: float = 0.0
    salt_pepper_fraction: float = 0.0
    jpeg_quality: int | None = None
    shading: float = 0.0
    colour_cast: float | tuple[float, float, float] = 0.0
    downscale: float = 1.0
    border_colour: RGB = (255, 255, 255)

    def __post_init__(self) -> None:
        if not 0.0 <= self.perspective < 0.25:
            raise ConfigurationError(f"perspective must be in [0, 0.25); got {self.perspective}")
        if self.downscale < 1.0:
            raise ConfigurationError(f"downscale must be >= 1; got {self.downscale}")
        if self.jpeg_quality is not None and not 1 <= int(self.jpeg_quality) <= 100:
            raise ConfigurationError(f"jpeg_quality must be 1..100; got {self.jpeg_quality}")
        if not 0.0 <= self.salt_pepper_fraction <= 1.0:
            raise ConfigurationError(
                f"salt_pepper_fraction must be in [0, 1]; got {self.salt_pepper_fraction}")
        if min(self.blur_sigma_px, self.gaussian_noise_std, self.shading) < 0:
            raise ConfigurationError("blur_sigma_px, gaussian_noise_std and shading must be >= 0")

    @property
    def is_identity(self) -> bool:
        """True when no defect is switched on."""
        return self == Degradation(border_colour=self.border_colour)

    @property
    def is_geometric(self) -> bool:
        """True when the defects move pixels (rotation, perspective, downscale)."""
        return bool(self.rotation_deg or self.perspective or self.downscale != 1.0)

    def replace(self, **changes: Any) -> Degradation:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def photo(cls, **changes: Any) -> Degradation:
        """A phone photo of a sheet: tilt, perspective, shading, cast, blur, noise, JPEG."""
        base = cls(rotation_deg=2.0, perspective=0.03, blur_sigma_px=1.0,
                   gaussian_noise_std=0.02, jpeg_quality=70, shading=0.35, colour_cast=0.12,
                   border_colour=(110, 105, 100))
        return base.replace(**changes) if changes else base

    @classmethod
    def scan(cls, **changes: Any) -> Degradation:
        """A low-quality scan: slight skew, blur, speckle, half resolution, JPEG."""
        base = cls(rotation_deg=-1.0, blur_sigma_px=0.7, salt_pepper_fraction=0.002,
                   downscale=2.0, jpeg_quality=60)
        return base.replace(**changes) if changes else base


def degrade(image: np.ndarray, degradation: Degradation,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``degradation`` to an RGB image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        Clean sheet.
    degradation : Degradation
        Defects to apply (order: geometry, shading, colour cast, blur,
        downscale, noise, salt and pepper, JPEG).
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    image : ndarray of shape (H', W', 3), uint8
        Degraded image.
    transform : ndarray of shape (3, 3)
        Homography from input px to output px (pixel centres at integers).

    Examples
    --------
    >>> img = np.full((100, 200, 3), 255, np.uint8)
    >>> out, H = degrade(img, Degradation(downscale=2.0), np.random.default_rng(0))
    >>> out.shape, float(H[0, 0])
    ((50, 100, 3), 0.5)
    """
    d = degradation
    h, w = image.shape[:2]
    transform = np.eye(3)
    out = image
    if d.rotation_deg or d.perspective:
        transform = _page_homography(w, h, d.rotation_deg, d.perspective, rng)
        out = cv2.warpPerspective(out, transform, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=tuple(int(c) for c in d.border_colour))
    work: np.ndarray = out.astype(np.float32)
    if d.shading:
        work *= _illumination(h, w, d.shading, rng)[..., None]
    if np.any(np.asarray(d.colour_cast, dtype=float)):
        work *= _cast_multipliers(d.colour_cast, rng)[None, None, :]
    if d.blur_sigma_px > 0:
        work = cv2.GaussianBlur(work, (0, 0), sigmaX=float(d.blur_sigma_px))
    if d.downscale != 1.0:
        size = (max(1, round(w / d.downscale)), max(1, round(h / d.downscale)))
        work = cv2.resize(work, size, interpolation=cv2.INTER_AREA)
        transform = _scale_matrix(size[0] / w, size[1] / h) @ transform
    if d.gaussian_noise_std > 0:
        noise = rng.standard_normal(work.shape, dtype=np.float32)
        noise *= np.float32(255.0 * d.gaussian_noise_std)
        work += noise
    out = np.clip(np.rint(work), 0, 255).astype(np.uint8)
    if d.salt_pepper_fraction > 0:
        hit = rng.random(out.shape[:2]) < d.salt_pepper_fraction
        out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)[:, None].astype(np.uint8)
    if d.jpeg_quality is not None:
        out = _jpeg_round_trip(out, int(d.jpeg_quality))
    return out, transform


def local_scale(transform: np.ndarray, point: tuple[float, float]) -> tuple[float, float]:
    """Length scale of a homography along x and y at ``point`` (output px per input px).

    Parameters
    ----------
    transform : ndarray of shape (3, 3)
        Homography from input px to output px.
    point : (float, float)
        ``(x, y)`` in input px.

    Returns
    -------
    (float, float)
        Output px per input px along x and along y at ``point``.

    Examples
    --------
    >>> local_scale(np.diag([0.5, 0.5, 1.0]), (10.0, 10.0))
    (0.5, 0.5)
    """
    p = np.array([[point[0], point[1]], [point[0] + 1, point[1]], [point[0], point[1] + 1]])
    q = apply_homography(transform, p)
    return (float(np.hypot(*(q[1] - q[0]))), float(np.hypot(*(q[2] - q[0]))))


def apply_homography(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map an (N, 2) array of ``(x, y)`` px through a 3x3 homography.

    Parameters
    ----------
    transform : ndarray of shape (3, 3)
        Homography from input px to output px.
    points : ndarray of shape (N, 2)
        ``(x, y)`` input px.

    Returns
    -------
    ndarray of shape (N, 2)
        ``(x, y)`` output px.

    Examples
    --------
    >>> apply_homography(np.diag([2.0, 3.0, 1.0]), np.array([[1.0, 1.0]])).tolist()
    [[2.0, 3.0]]
    """
    pts = np.asarray(points, dtype=np.float64)
    ones = np.ones((pts.shape[0], 1))
    q = np.hstack([pts, ones]) @ np.asarray(transform, dtype=np.float64).T
    return q[:, :2] / q[:, 2:3]


def _page_homography(w: int, h: int, rotation_deg: float, perspective: float,
                     rng: np.random.Generator) -> np.ndarray:
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    rot = np.vstack([cv2.getRotationMatrix2D(centre, float(rotation_deg), 1.0), [0, 0, 1]])
    if not perspective:
        return rot
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    inward = np.sign(np.array(centre) - corners)
    shift = rng.uniform(0.0, 1.0, size=(4, 2)) * perspective * min(w, h)
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32),
                                       (corners + inward * shift).astype(np.float32))
    return warp @ rot


def _scale_matrix(sx: float, sy: float) -> np.ndarray:
    # pixel centres at integers: x' = (x + 0.5) * s - 0.5
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def _illumination(h: int, w: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    xx = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, :]
    yy = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5)[:, None]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * xx + np.sin(angle) * yy) + 0.5  # 0..1 across the page
    cx, cy = rng.uniform(-0.2, 0.2, size=2)
    vignette = ((xx - cx) ** 2 + (yy - cy) ** 2) / 0.5
    field = 1.0 - strength * (0.6 * gradient + 0.4 * vignette)
    return np.clip(field, 0.05, 1.0, dtype=np.float32)


def _cast_multipliers(cast: float | tuple[float, float, float],
                      rng: np.random.Generator) -> np.ndarray:
    arr = np.asarray(cast, dtype=np.float32)
    if arr.ndim == 0:
        return (1.0 - rng.uniform(0.0, float(arr), size=3)).astype(np.float32)
    if arr.shape != (3,):
        raise ConfigurationError(f"colour_cast must be a float or 3 multipliers; got {cast!r}")
    return arr


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))
