"""Hostile inputs: broken, huge, odd-format and ECG-less files, alone and inside a batch.

The corpus is written by the tests themselves. Every file must give a typed
:class:`~ecgdigitize.errors.ECGError` naming the file and the reason, or a
result with low quality and a warning: never a crash of the batch, a hang, or
a silently made-up signal. Odd but valid encodings of a real sheet (16-bit,
CMYK, palette, RGBA, EXIF-rotated, PDF) must digitize like the plain PNG.
"""

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

from ecgdigitize import errors
from ecgdigitize.batch import digitize_many
from ecgdigitize.convert import _default_digitize, convert_file
from ecgdigitize.errors import (
    DigitizationError,
    ImageTooLargeError,
    ImageTooSmallError,
    MissingDependencyError,
    UnreadableImageError,
)
from ecgdigitize.io import load_image
from ecgdigitize.record import ECGRecord

#: Files that must be refused by the loader, with the error expected.
UNREADABLE: dict[str, type[errors.ECGError]] = {
    "missing.png": UnreadableImageError,
    "folder.png": UnreadableImageError,
    "empty.png": UnreadableImageError,
    "truncated.png": UnreadableImageError,
    "truncated.jpg": UnreadableImageError,
    "random.jpg": UnreadableImageError,
    "empty.pdf": UnreadableImageError,
    "dot.png": ImageTooSmallError,
    "bomb.png": ImageTooLargeError,
}
#: Readable images that hold no ECG.
NO_ECG = ("blank.png", "blobs.jpg")
#: Valid but unusual encodings of the same rendered sheet.
VARIANTS = ("deep16.png", "cmyk.jpg", "palette.png", "rgba.png", "exif.jpg", "sheet.pdf")


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _blobs(h: int = 600, w: int = 800, seed: int = 3) -> np.ndarray:
    """A photo-like image without an ECG: smooth random colour blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3))
    for _ in range(12):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(40, 200)
        img += rng.uniform(0, 1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r**2)[..., None]
    return np.clip(img / img.max() * 255, 0, 255).astype(np.uint8)


def write_corpus(folder: Path, sheet: np.ndarray) -> dict[str, Path]:
    """Write the hostile corpus (and the plain ``sheet.png``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(sheet)
    png, jpg = _bytes(img, "PNG"), _bytes(img, "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: "rotate 90 CCW to display"
    import pypdfium2 as pdfium

    empty_pdf = io.BytesIO()
    pdfium.PdfDocument.new().save(empty_pdf)  # well-formed, zero pages
    grey16 = (np.asarray(img.convert("L"), dtype=np.uint16) * 257)
    rgba = np.dstack([sheet, np.full(sheet.shape[:2], 255, np.uint8)])
    rgba[:40, :, 3] = 0  # a transparent strip along the top margin
    files = {
        "plain.png": png,
        "empty.png": b"",
        "truncated.png": png[: len(png) // 3],
        "truncated.jpg": jpg[: len(jpg) // 3],
        "random.jpg": np.random.default_rng(0).bytes(20_000),
        "empty.pdf": empty_pdf.getvalue(),
        "dot.png": _bytes(Image.new("RGB", (1, 1)), "PNG"),
        "bomb.png": _png_claiming(50_000, 50_000),
        "blank.png": _bytes(Image.new("RGB", sheet.shape[1::-1], "white"), "PNG"),
        "blobs.jpg": _bytes(Image.fromarray(_blobs()), "JPEG"),
        "deep16.png": _bytes(Image.fromarray(grey16), "PNG"),
        "cmyk.jpg": _bytes(img.convert("CMYK"), "JPEG", quality=95),
        "palette.png": _bytes(img.quantize(64), "PNG"),
        "rgba.png": _bytes(Image.fromarray(rgba, "RGBA"), "PNG"),
        "exif.jpg": _bytes(img.transpose(Image.Transpose.ROTATE_270), "JPEG", exif=exif,
                           quality=95),
        "sheet.pdf": _bytes(img, "PDF", resolution=200.0),  # 1:1 at the 200 dpi default
    }
    paths = {name: folder / name for name in files}
    for name, data in files.items():
        paths[name].write_bytes(data)
    (folder / "folder.png").mkdir()
    paths["folder.png"] = folder / "folder.png"
    paths["missing.png"] = folder / "missing.png"
    return paths


@pytest.fixture(scope="module")
def sheet_image(sim_record: ECGRecord) -> np.ndarray:
    from ecgdigitize.synth import SheetStyle, render_sheet

    return render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100)).image


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, sheet_image: np.ndarray) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("hostile"), sheet_image)


@pytest.fixture(scope="module")
def digitize():
    try:
        return _default_digitize()
    except MissingDependencyError:
        pytest.skip("ecgdigitize.digitize is not available yet")


# --- the loader ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_files_raise_the_typed_error_naming_the_file(corpus: dict[str, Path],
                                                                name: str) -> None:
    with pytest.raises(UNREADABLE[name]) as info:
        load_image(corpus[name])
    assert info.value.path == str(corpus[name]) and len(info.value.reason) > 5


def test_bomb_costs_neither_time_nor_memory(corpus: dict[str, Path]) -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        for _ in range(5):
            with pytest.raises(ImageTooLargeError):
                load_image(corpus["bomb.png"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (time.perf_counter() - t0) / 5 < 0.2 and peak < 2_000_000
    with pytest.raises(ImageTooLargeError, match="limit of 1,000 px"):
        load_image(corpus["plain.png"], max_pixels=1_000)


@pytest.mark.parametrize("name", VARIANTS)
def test_unusual_encodings_load_as_the_same_sheet(corpus: dict[str, Path], sheet_image: np.ndarray,
                                                  name: str) -> None:
    rgb = load_image(corpus[name])
    assert rgb.shape == sheet_image.shape
    grey = lambda a: a.astype(float).mean(axis=2)  # noqa: E731
    diff = np.abs(grey(rgb) - grey(sheet_image))
    diff[:40] = 0  # the RGBA file's transparent strip is white by design
    assert np.median(diff) < 5 and diff.mean() < 8  # grey levels; the PDF embeds a JPEG


# --- through digitize -------------------------------------------------------------------------
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NO_ECG)
def test_images_without_an_ecg_give_an_error_or_low_quality(corpus: dict[str, Path], digitize,
                                                            name: str) -> None:
    try:
        res = digitize(load_image(corpus[name]), fs=500)
    except DigitizationError as err:
        assert err.reason
        return
    quality = np.array(list(res.quality.values()) or [0.0])
    assert quality.max() < 0.5 and res.warnings, "an ECG was made up from a page without one"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_unusual_encodings_digitize_like_the_plain_png(corpus: dict[str, Path], digitize,
                                                       tmp_path: Path) -> None:
    ref = convert_file(corpus["plain.png"], tmp_path, digitize=digitize, formats=["npy"])
    if ref.status != "ok":
        pytest.skip(f"the pipeline does not read the plain test sheet yet: {ref.error_message}")
    for name in VARIANTS:
        res = convert_file(corpus[name], tmp_path, digitize=digitize, formats=["npy"])
        assert res.status == "ok", f"{name}: {res.error_type}: {res.error_message}"
        assert res.layout == ref.layout, name
        assert res.leads_recovered >= ref.leads_recovered - 1, name
        assert res.mean_quality > ref.mean_quality - 0.15, name


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_batch_over_the_whole_corpus_survives(corpus: dict[str, Path], digitize,
                                                tmp_path: Path) -> None:
    paths = sorted(corpus.values())
    s = digitize_many(paths, tmp_path / "out", formats=("npy",), digitize=digitize,
                      progress=False)
    assert not s.interrupted and len(s.results) == len(paths)
    by_name = {Path(r.input).name: r for r in s.results}
    for name, cls in UNREADABLE.items():
        assert (by_name[name].status, by_name[name].error_type) == ("failed", cls.__name__)
    for r in s.results:
        if r.status == "failed":
            assert r.error_type in errors.__all__, f"{r.input}: {r.error_type} is a bug"
            assert r.error_message
        else:
            assert (Path(r.outputs[0])).exists()
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(outputs) == s.n_ok + 1  # one .npy per converted file + the manifest
