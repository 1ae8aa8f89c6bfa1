"""Tests for ecgdigitize/io.py: every way a sheet image arrives, and every way it is broken."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgdigitize.errors import (
    ECGError,
    ImageTooLargeError,
    ImageTooSmallError,
    InputError,
    UnreadableImageError,
)
from ecgdigitize.io import MIN_SIDE_PX, load_image


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (IHDR) claiming ``width x height`` RGB pixels, with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _gradient(w: int = 120, h: int = 90) -> np.ndarray:
    x = np.linspace(0, 255, w)
    y = np.linspace(0, 255, h)[:, None]
    return np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)),
                     np.full((h, w), 40.0)], axis=2).round().astype(np.uint8)


# --- arrays and in-memory input ----------------------------------------------------
@pytest.mark.parametrize(("arr", "expected"), [
    (np.full((70, 80), 128, np.uint8), 128),
    (np.full((70, 80), 65535, np.uint16), 255),
    (np.full((70, 80), 32768, np.uint16), 128),
    (np.full((70, 80), 200, np.uint16), 200),  # 16-bit holding 8-bit values stays as is
    (np.full((70, 80), 0.5, np.float32), 128),
    (np.ones((70, 80), bool), 255),
    (np.full((70, 80, 1), 7, np.uint8), 7),
])
def test_arrays_become_rgb_uint8(arr: np.ndarray, expected: int) -> None:
    rgb = load_image(arr)
    assert rgb.shape == (70, 80, 3) and rgb.dtype == np.uint8
    assert np.all(rgb == expected)


def test_rgba_array_is_composited_on_white() -> None:
    arr = np.zeros((70, 80, 4), np.uint8)
    arr[..., 3] = 0
    arr[:10, :, 3] = 255
    rgb = load_image(arr)
    assert np.all(rgb[:10] == 0) and np.all(rgb[10:] == 255)


@pytest.mark.parametrize("arr", [
    np.zeros((70, 80, 2), np.uint8),
    np.zeros((4, 70, 80, 3), np.uint8),
    np.full((70, 80), np.nan),
    np.zeros((70, 80), np.complex64),
    np.array([["a"] * 80] * 70),
])
def test_unusable_arrays_raise_unreadable(arr: np.ndarray) -> None:
    with pytest.raises(UnreadableImageError):
        load_image(arr)


def test_other_source_types_are_refused() -> None:
    with pytest.raises(UnreadableImageError, match="expected a path"):
        load_image(12345)  # type: ignore[arg-type]


def test_bytes_and_pil_inputs_match_the_file(tmp_path: Path) -> None:
    img = Image.fromarray(_gradient())
    data = _encode(img, "PNG")
    path = _write(tmp_path / "g.png", data)
    a, b, c = load_image(path), load_image(data), load_image(img)
    assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, _gradient())


# --- file formats ----------------------------------------------------------------------
def test_16bit_png_is_scaled_to_8bit(tmp_path: Path) -> None:
    arr = np.tile(np.linspace(0, 65535, 100).astype(np.uint16), (80, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = load_image(path)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert abs(int(rgb[0, 50, 0]) - round(arr[0, 50] / 257)) <= 1


def test_palette_png_with_and_without_transparency(tmp_path: Path) -> None:
    base = Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    plain = load_image(_write(tmp_path / "p.png", _encode(base, "PNG")))
    assert plain.shape == (90, 120, 3)
    assert np.abs(plain.astype(int) - _gradient()).mean() < 20
    idx = base.getpixel((0, 0))
    clear = load_image(_encode(base, "PNG", transparency=idx))
    assert tuple(clear[0, 0]) == (255, 255, 255)


def test_rgba_png_transparent_pixels_become_white(tmp_path: Path) -> None:
    arr = np.zeros((80, 90, 4), np.uint8)
    arr[:40, :, 3] = 255
    rgb = load_image(_write(tmp_path / "a.png", _encode(Image.fromarray(arr, "RGBA"), "PNG")))
    assert np.all(rgb[:40] == 0) and np.all(rgb[40:] == 255)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = Image.fromarray(_gradient()).convert("CMYK")
    rgb = load_image(_write(tmp_path / "c.jpg", _encode(cmyk, "JPEG", quality=95)))
    assert rgb.shape == (90, 120, 3)
    assert np.abs(rgb.astype(int) - _gradient()).mean() < 12


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    arr = np.full((80, 120, 3), 255, np.uint8)
    arr[:20, :20] = 0  # a black mark in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _write(tmp_path / "r.jpg", _encode(Image.fromarray(arr), "JPEG", exif=exif,
                                               quality=95))
    rgb = load_image(path)
    assert rgb.shape == (120, 80, 3)
    assert rgb[:20, -20:].mean() < 40 and rgb[:20, :20].mean() > 215


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "WEBP", "JPEG"])
def test_other_raster_formats_load(tmp_path: Path, fmt: str) -> None:
    img = Image.fromarray(_gradient())
    rgb = load_image(_write(tmp_path / f"x.{fmt.lower()}", _encode(img, fmt, quality=95)
                            if fmt in ("JPEG", "WEBP") else _encode(img, fmt)))
    assert rgb.shape == (90, 120, 3)
    assert np.abs(rgb.astype(int) - _gradient()).mean() < 6


def test_grey_jpeg_becomes_three_equal_channels(tmp_path: Path) -> None:
    grey = Image.fromarray(_gradient()[..., 0])
    rgb = load_image(_write(tmp_path / "g.jpg", _encode(grey, "JPEG")))
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_one_page_pdf_is_rendered_at_the_asked_dpi(tmp_path: Path) -> None:
    img = Image.fromarray(_gradient(300, 200))
    path = _write(tmp_path / "sheet.pdf", _encode(img, "PDF", resolution=100.0))
    rgb = load_image(path, pdf_dpi=200)
    assert rgb.shape[:2] == pytest.approx((400, 600), abs=2)
    assert load_image(path, pdf_dpi=100).shape[:2] == pytest.approx((200, 300), abs=2)
    with pytest.raises(UnreadableImageError, match="page 3"):
        load_image(path, page=3)


def test_pdf_without_pages_is_unreadable(tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    buf = io.BytesIO()
    pdfium.PdfDocument.new().save(buf)  # a well-formed PDF with zero pages
    path = _write(tmp_path / "empty.pdf", buf.getvalue())
    with pytest.raises(UnreadableImageError) as info:
        load_image(path)
    assert info.value.path == str(path)


# --- broken files ------------------------------------------------------------------------
def _broken_cases(tmp_path: Path) -> dict[str, Path]:
    good_png = _encode(Image.fromarray(_gradient()), "PNG")
    good_jpg = _encode(Image.fromarray(_gradient()), "JPEG")
    (tmp_path / "folder.png").mkdir()
    return {
        "missing": tmp_path / "missing.png",
        "directory": tmp_path / "folder.png",
        "empty": _write(tmp_path / "empty.png", b""),
        "truncated png": _write(tmp_path / "t.png", good_png[: len(good_png) // 2]),
        "truncated jpeg": _write(tmp_path / "t.jpg", good_jpg[: len(good_jpg) // 2]),
        "random bytes": _write(tmp_path / "r.jpg",
                               np.random.default_rng(1).bytes(5000)),
        "text": _write(tmp_path / "notes.png", b"this is not an image\n" * 20),
        "corrupt pdf": _write(tmp_path / "c.pdf", b"%PDF-1.7\n garbage " * 10),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated png",
                                  "truncated jpeg", "random bytes", "text", "corrupt pdf"])
def test_broken_files_raise_unreadable_naming_the_file(tmp_path: Path, case: str) -> None:
    path = _broken_cases(tmp_path)[case]
    with pytest.raises(UnreadableImageError) as info:
        load_image(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ") and len(info.value.reason) > 5


def test_tiny_image_is_too_small(tmp_path: Path) -> None:
    path = _write(tmp_path / "dot.png", _encode(Image.new("RGB", (1, 1)), "PNG"))
    with pytest.raises(ImageTooSmallError, match=f"at least {MIN_SIDE_PX} px"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _write(tmp_path / "bomb.png", png_claiming(50_000, 50_000))
    assert path.stat().st_size < 200
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError, match=r"50000x50000|2500000000 pixels") as info:
            load_image(path)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.path == str(path)
    assert elapsed < 1.0 and peak < 5_000_000  # 50000^2 RGB would be 7.5 GB


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.png", _encode(Image.fromarray(_gradient()), "PNG"))
    assert load_image(path).shape == (90, 120, 3)
    with pytest.raises(ImageTooLargeError, match="limit of 10,000 px"):
        load_image(path, max_pixels=10_000)
    with pytest.raises(ImageTooLargeError):
        load_image(_gradient(), max_pixels=10_000)


def test_every_loader_error_is_an_input_error() -> None:
    for cls in (UnreadableImageError, ImageTooLargeError, ImageTooSmallError):
        assert issubclass(cls, InputError) and issubclass(cls, ECGError)


def test_concurrent_loads_keep_pillows_own_bomb_limit() -> None:
    # Threads decoding at once used to interleave the save/restore of
    # Image.MAX_IMAGE_PIXELS and leave Pillow's limit switched off (None).
    import threading

    buf = io.BytesIO()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(buf, "PNG")
    data, limit = buf.getvalue(), Image.MAX_IMAGE_PIXELS

    def work() -> None:
        for _ in range(200):
            load_image(data)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limit is not None and Image.MAX_IMAGE_PIXELS == limit
