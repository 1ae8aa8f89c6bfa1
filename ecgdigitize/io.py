"""Reading sheet images: the input edge of the pipeline.

:func:`load_image` turns a path, bytes, a PIL image or an array into one
RGB ``uint8`` array, whatever the file held (grey, 16-bit, palette, RGBA,
CMYK, EXIF-rotated JPEG, a PDF page). Every failure is an
:class:`~ecgdigitize.errors.InputError` that names the file.
"""

from __future__ import annotations

import io as _io
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ECGError, ImageTooLargeError, ImageTooSmallError, UnreadableImageError

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_SUFFIXES", "MIN_SIDE_PX", "ImageSource", "load_image"]

#: Largest image accepted by default (pixels): about 16k x 12k, 600 dpi A3.
DEFAULT_MAX_PIXELS = 200_000_000
#: Smallest side accepted (px): below this no ECG is legible.
MIN_SIDE_PX = 64
#: File suffixes recognised as sheet images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf")

_PIL_LIMIT_LOCK = threading.Lock()

ImageSource = str | os.PathLike[str] | bytes | Image.Image | np.ndarray


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    page: int = 0,
    pdf_dpi: float = 200.0,
) -> np.ndarray:
    """Load a sheet image as an RGB ``uint8`` array of shape (height, width, 3).

    Parameters
    ----------
    source : path-like, bytes, PIL.Image.Image or ndarray
        A file (PNG, JPEG, TIFF, BMP, WebP or PDF), its bytes, an opened PIL
        image, or an array (H, W), (H, W, 3) or (H, W, 4) of any integer or
        float dtype (floats are taken in [0, 1]).
    max_pixels : int, default DEFAULT_MAX_PIXELS
        Images with more pixels are refused *before* decoding, so a small file
        that claims a huge size (a decompression bomb) costs nothing.
    page : int, default 0
        Page of a PDF to render (0-based).
    pdf_dpi : float, default 200
        Resolution at which a PDF page is rendered, in dots per inch.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        The image, EXIF orientation applied, alpha composited on white.

    Raises
    ------
    UnreadableImageError
        Missing file, directory, empty or truncated file, unknown format,
        PDF without that page.
    ImageTooLargeError
        More than ``max_pixels`` pixels.
    ImageTooSmallError
        A side shorter than :data:`MIN_SIDE_PX` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((100, 120), dtype=np.uint16)).shape
    (100, 120, 3)
    """
    path: str | None = None
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source)
    elif isinstance(source, Image.Image):
        _check_size(source.size, max_pixels, None)
        rgb = _pil_to_rgb(source, None)
    elif isinstance(source, bytes | bytearray | memoryview):
        rgb = _decode_bytes(bytes(source), max_pixels, page, pdf_dpi, None)
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        data = _read_file(path)
        rgb = _decode_bytes(data, max_pixels, page, pdf_dpi, path)
    else:
        raise UnreadableImageError(
            f"expected a path, bytes, PIL image or array; got {type(source).__name__}"
        )
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise ImageTooSmallError(
            f"image is {w}x{h} px; an ECG sheet needs at least {MIN_SIDE_PX} px per side",
            path=path,
        )
    _check_size((w, h), max_pixels, path)
    return rgb


def _read_file(path: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise UnreadableImageError("no such file", path=path)
    if p.is_dir():
        raise UnreadableImageError("is a directory, not an image file", path=path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    if not data:
        raise UnreadableImageError("file is empty", path=path)
    return data


def _check_size(size: tuple[int, int], max_pixels: int, path: str | None) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"image claims {w}x{h} = {w * h:,} px, above the limit of {max_pixels:,} px "
            "(raise max_pixels if this is a genuine scan)",
            path=path,
        )


def _decode_bytes(data: bytes, max_pixels: int, page: int, pdf_dpi: float,
                  path: str | None) -> np.ndarray:
    if data[:5] == b"%PDF-":
        return _render_pdf(data, page, pdf_dpi, max_pixels, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open_headers(data, max_pixels)
            _check_size(img.size, max_pixels, path)
            return _pil_to_rgb(img, path)
    except ECGError:  # our own errors (an InputError is a ValueError) pass unchanged
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError):
            raise ImageTooLargeError(f"refused as a decompression bomb: {exc}", path=path) from exc
        raise UnreadableImageError("not a recognised image or PDF file", path=path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImageError(f"corrupt or truncated image: {exc}", path=path) from exc


def _open_headers(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (headers only) under our ``max_pixels`` rather than Pillow's own limit."""
    try:
        return Image.open(_io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        pil_limit = Image.MAX_IMAGE_PIXELS
        if pil_limit is not None and max_pixels <= pil_limit:
            raise
    # A limit above Pillow's: read the header without its check; ours follows.
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(_io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _pil_to_rgb(img: Image.Image, path: str | None) -> np.ndarray:
    # Decoding happens here; size was checked before. The lock keeps two threads
    # from interleaving save/restore, which could leave Pillow's limit off for good.
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # our own limit was applied already
        try:
            img.load()
            img = ImageOps.exif_transpose(img) or img
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UnreadableImageError(f"corrupt or truncated image: {exc}", path=path) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_rgb(np.asarray(img))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _array_to_rgb(arr: Any) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UnreadableImageError(
            f"array must be (H, W), (H, W, 3) or (H, W, 4); got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise UnreadableImageError("array holds NaN or infinite values")
        out = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        top = 65535.0 if arr.dtype.itemsize >= 2 and arr.max(initial=0) > 255 else 255.0
        if arr.dtype.itemsize >= 2 and top == 65535.0:
            top = float(np.iinfo(arr.dtype).max) if arr.max() > 65535 else 65535.0
        out = np.clip(np.round(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    else:
        raise UnreadableImageError(f"unsupported array dtype {arr.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[2] == 4:
        alpha = out[:, :, 3:4].astype(np.float64) / 255.0
        out = np.round(out[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(out)


def _render_pdf(data: bytes, page: int, dpi: float, max_pixels: int,
                path: str | None) -> np.ndarray:
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise UnreadableImageError("reading PDF needs pypdfium2", path=path) from exc
    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:  # pdfium raises PdfiumError
        raise UnreadableImageError(
            f"cannot open PDF (corrupt, encrypted or without pages): {exc}", path=path) from exc
    try:
        n = len(pdf)
        if n == 0:
            raise UnreadableImageError("PDF has no pages", path=path)
        if not 0 <= page < n:
            raise UnreadableImageError(f"PDF has {n} page(s); page {page} asked", path=path)
        pg = pdf[page]
        w_pt, h_pt = pg.get_size()
        scale = dpi / 72.0
        _check_size((int(w_pt * scale), int(h_pt * scale)), max_pixels, path)
        bitmap = pg.render(scale=scale)
        img = bitmap.to_pil()
        return _pil_to_rgb(img, path)
    finally:
        pdf.close()
