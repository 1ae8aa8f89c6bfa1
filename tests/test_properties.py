"""Property tests (hypothesis): whatever arrives, only the project's errors come out.

``load_image`` and ``digitize`` are fed random arrays (shapes, dtypes, values)
and random byte strings; each call must return a well-formed result or raise
an :class:`~ecgdigitize.errors.ECGError` subclass, never anything else.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ecgdigitize.convert import FileResult, _default_digitize, output_stem
from ecgdigitize.errors import ECGError, MissingDependencyError
from ecgdigitize.io import load_image
from ecgdigitize.result import DigitizedECG

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float16,
                          np.float32, np.float64, np.bool_, np.complex64])
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=160),
    st.tuples(st.integers(1, 160), st.integers(1, 160), st.sampled_from([1, 2, 3, 4, 5])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=8),
)


def _arrays(max_side: int = 160) -> st.SearchStrategy[np.ndarray]:
    return st.tuples(DTYPES, SHAPES).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=_elements(ds[0])))


def _elements(dtype: type) -> st.SearchStrategy | None:
    if np.issubdtype(dtype, np.floating):
        # floats are read in [0, 1]; also feed out-of-range, NaN and inf
        return st.floats(-2, 2, width=16 if dtype == np.float16 else 32) | st.sampled_from(
            [np.nan, np.inf, 0.5])
    return None


@FAST
@given(arr=_arrays())
def test_load_image_on_any_array_gives_rgb_or_an_ecg_error(arr: np.ndarray) -> None:
    try:
        rgb = load_image(arr)
    except ECGError as err:
        assert err.reason
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[:2] == arr.shape[:2] and min(rgb.shape[:2]) >= 64
    assert rgb.flags.c_contiguous


@FAST
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@given(data=st.binary(min_size=0, max_size=4096),
       magic=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"%PDF-1.4\n",
                              b"GIF89a", b"II*\x00", b"BM", b"RIFF\x00\x00\x00\x00WEBP"]))
def test_load_image_on_any_bytes_gives_rgb_or_an_ecg_error(data: bytes, magic: bytes) -> None:
    try:
        rgb = load_image(magic + data, max_pixels=4_000_000)
    except ECGError as err:
        assert err.reason
        return
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3


@FAST
@given(text=st.text(min_size=0, max_size=40), folder=st.sampled_from(["/a", "/b/c", "rel"]))
def test_output_stem_is_safe_and_deterministic(text: str, folder: str) -> None:
    path = f"{folder}/{text.replace('/', '_')}.png"
    stem = output_stem(path)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}_[0-9a-f]{8}", stem)
    assert stem == output_stem(path)


_FLOATS = st.floats(0, 1e4, allow_nan=False)


@FAST
@given(status=st.sampled_from(["ok", "failed", "skipped"]),
       quality=st.dictionaries(st.sampled_from(["I", "II", "V1"]), st.floats(0, 1)),
       time_s=_FLOATS, msg=st.none() | st.text(max_size=30),
       outputs=st.lists(st.text(min_size=1, max_size=10), max_size=3))
def test_manifest_entries_round_trip(status: str, quality: dict, time_s: float,
                                     msg: str | None, outputs: list[str]) -> None:
    import json

    res = FileResult(input="/x/a.png", status=status, stem="a_0", outputs=tuple(outputs),
                     quality=quality, time_s=time_s, error_message=msg, px_per_mm=(7.9, 7.8))
    back = FileResult.from_json(json.loads(json.dumps(res.to_json())))
    assert back == res
    mean = res.to_json()["mean_quality"]
    assert (mean is None) == (not quality)
    if quality:
        assert math.isclose(mean, np.mean(list(quality.values())), abs_tol=1e-4)


# --- digitize ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digitize():
    try:
        return _default_digitize()
    except MissingDependencyError:
        pytest.skip("ecgdigitize.digitize is not available yet")


def _check_digitize(digitize, source: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = digitize(source, fs=250)
        except ECGError as err:
            assert err.reason
            return
    assert isinstance(res, DigitizedECG)
    q = np.array([float(v) for v in res.quality.values()]) if res.quality else np.zeros(1)
    assert np.all((q >= 0) & (q <= 1))
    if np.all(q < 0.35):  # nothing legible: no made-up signal
        assert res.warnings
    assert res.signal.shape[1] == len(res.lead_names)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(arr=st.tuples(st.sampled_from([np.uint8, np.uint16, np.float32, np.bool_]),
                     st.tuples(st.integers(40, 220), st.integers(40, 260)),
                     st.sampled_from([(), (3,), (4,)])).flatmap(
    lambda t: hnp.arrays(t[0], t[1] + t[2],
                         elements=st.floats(0, 1, width=32) if t[0] == np.float32 else None)))
def test_digitize_on_random_arrays_raises_only_ecg_errors(digitize, arr: np.ndarray) -> None:
    _check_digitize(digitize, arr)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(min_size=0, max_size=2048),
       magic=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"%PDF-1.4\n"]))
def test_digitize_on_random_bytes_raises_only_ecg_errors(digitize, data: bytes,
                                                         magic: bytes) -> None:
    _check_digitize(digitize, magic + data)


@pytest.fixture(scope="module")
def small_sheet(sim_record) -> np.ndarray:
    from ecgdigitize.synth import SheetStyle, render_sheet

    return render_sheet(sim_record, "3x4+1", SheetStyle(dpi=60)).image


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(box=st.tuples(st.floats(0, 0.6), st.floats(0, 0.6), st.floats(0.1, 1), st.floats(0.1, 1)),
       noise=st.floats(0, 80), flip=st.booleans(), seed=st.integers(0, 2**16))
def test_digitize_on_damaged_sheets_raises_only_ecg_errors(digitize, small_sheet: np.ndarray,
                                                           box: tuple[float, ...], noise: float,
                                                           flip: bool, seed: int) -> None:
    h, w = small_sheet.shape[:2]
    y0, x0 = int(box[0] * h), int(box[1] * w)
    y1, x1 = y0 + max(1, int(box[2] * (h - y0))), x0 + max(1, int(box[3] * (w - x0)))
    crop = small_sheet[y0:y1, x0:x1].astype(float)
    crop += np.random.default_rng(seed).normal(0, noise, crop.shape)
    img = np.clip(crop, 0, 255).astype(np.uint8)
    _check_digitize(digitize, img[::-1] if flip else img)
