"""Converting one sheet file: load, digitize, write outputs atomically, report.

:func:`convert_file` is the unit of work of :mod:`ecgdigitize.batch` (it runs
in a worker process or on a Dask worker) and of ``ecgdigitize digitize``. It
never raises for a bad input: the error type and reason go into the returned
:class:`FileResult`, which is also the manifest entry. :func:`write_outputs`
writes every format into a temporary folder inside the output folder, then
moves each file into place with :func:`os.replace`, so no partial output ever
carries a final name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ._workers import (
    _TMP_PREFIX,
    dask_worker_setup,
    limit_threads,
    peak_rss_mb,
    remove_stale_temps,
    single_thread_env,
)
from .errors import ConfigurationError, ConversionTimeoutError, ECGError, MissingDependencyError
from .io import DEFAULT_MAX_PIXELS, load_image
from .record import ECGRecord
from .result import DigitizedECG

__all__ = [
    "FORMATS",
    "FileResult",
    "check_timeout",
    "convert_file",
    "dask_worker_setup",
    "draw_overlay",
    "expected_outputs",
    "limit_threads",
    "output_stem",
    "peak_rss_mb",
    "remove_stale_temps",
    "single_thread_env",
    "write_outputs",
]

logger = logging.getLogger(__name__)

#: Output formats understood by :func:`write_outputs`.
FORMATS: tuple[str, ...] = ("wfdb", "csv", "npy")

DigitizeFn = Callable[..., DigitizedECG]


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file (one line of the manifest).

    Attributes
    ----------
    input : str
        Absolute path of the input.
    status : str
        ``"ok"``, ``"failed"`` or ``"skipped"``.
    stem : str
        Output file stem (see :func:`output_stem`).
    outputs : tuple of str
        Files written (absolute paths), empty unless ``status == "ok"``.
    sha256 : str or None
        Hash of the input bytes; ``size_bytes`` and ``mtime_ns`` detect changes on resume.
    error_type, error_message : str or None
        Exception class name and reason of a failure (or why a file was skipped).
    layout : str or None
        Detected layout (``"3x4+1"``...).
    px_per_mm : tuple of float or None
        Scale found, ``(x, y)`` pixels per millimetre.
    quality : mapping of str to float
        Per-lead quality in [0, 1].
    leads_recovered : int
        Leads with at least one finite sample.
    warnings : tuple of str
        Warnings of the pipeline.
    time_s : float
        Wall time of the whole file (load + digitize + write), s.
    cpu_s : float
        CPU time of the process during that file (all its threads), s.
    stage_times_s : mapping of str to float
        Wall time of each pipeline stage, s.
    peak_rss_mb : float or None
        Peak resident memory of the process that converted the file, MiB.
    worker : str or None
        ``host:pid`` of that process.

    Examples
    --------
    >>> res = FileResult(input="/x/a.png", status="ok", layout="3x4+1",
    ...                  quality={"I": 0.8, "II": 0.6})
    >>> round(res.mean_quality, 2), FileResult.from_json(res.to_json()) == res
    (0.7, True)
    """

    input: str
    status: str
    stem: str = ""
    outputs: tuple[str, ...] = ()
    sha256: str | None = None
    size_bytes: int | None = None
    mtime_ns: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    layout: str | None = None
    px_per_mm: tuple[float, float] | None = None
    quality: Mapping[str, float] = field(default_factory=dict)
    leads_recovered: int = 0
    warnings: tuple[str, ...] = ()
    time_s: float = 0.0
    cpu_s: float = 0.0
    stage_times_s: Mapping[str, float] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    worker: str | None = None

    @property
    def mean_quality(self) -> float:
        """Mean per-lead quality (NaN without leads)."""
        vals = [float(v) for v in self.quality.values() if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def to_json(self) -> dict[str, Any]:
        """Return the manifest entry (JSON-serialisable dict)."""
        d = asdict(self)
        d["mean_quality"] = None if np.isnan(self.mean_quality) else round(self.mean_quality, 4)
        return _finite(d)

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> FileResult:
        """Rebuild a result from a manifest entry (unknown keys are ignored)."""
        names = cls.__dataclass_fields__.keys()
        kw = {k: v for k, v in entry.items() if k in names}
        for key in ("outputs", "warnings"):
            kw[key] = tuple(kw.get(key) or ())
        if kw.get("px_per_mm") is not None:
            kw["px_per_mm"] = tuple(kw["px_per_mm"])
        return cls(**kw)

    def describe(self) -> str:
        """One line for humans: layout, px/mm, leads recovered, mean quality, time."""
        name = Path(self.input).name
        if self.status != "ok":
            return f"{name}: {self.status}: {self.error_message}"
        ppm = "?" if self.px_per_mm is None else f"{np.nanmean(self.px_per_mm):.2f}"
        return (f"{name}: layout {self.layout}, {ppm} px/mm, "
                f"{self.leads_recovered}/{len(self.quality) or '?'} leads, "
                f"quality {self.mean_quality:.2f}, {self.time_s:.2f} s")


# --- one file ------------------------------------------------------------------
def output_stem(path: str | os.PathLike[str]) -> str:
    """Return the output stem of an input: its stem plus a short hash of its absolute path.

    Equal stems in different folders get different names; the same input always
    gets the same name. Characters WFDB refuses in record names become ``_``.

    Parameters
    ----------
    path : path-like
        Input file (need not exist).

    Returns
    -------
    str
        ``<cleaned stem>_<8 hex digits>``.

    Examples
    --------
    >>> a, b = output_stem("/x/scan 1.png"), output_stem("/y/scan 1.png")
    >>> a.startswith("scan_1_"), a != b, a == output_stem("/x/scan 1.png")
    (True, True, True)
    """
    p = os.path.abspath(os.fspath(path))
    digest = hashlib.sha1(p.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(p).stem).strip("_") or "sheet"
    return f"{stem[:80]}_{digest}"


def expected_outputs(out_dir: str | os.PathLike[str], stem: str,
                     formats: Sequence[str]) -> tuple[Path, ...]:
    """Paths :func:`write_outputs` writes for ``stem`` (WFDB header last).

    Parameters
    ----------
    out_dir : path-like
        Output folder.
    stem : str
        File stem (see :func:`output_stem`).
    formats : sequence of str
        Any of :data:`FORMATS`.

    Returns
    -------
    tuple of Path
        The final paths, ``.npy``, ``.csv``, then ``.dat`` and ``.hea``.

    Examples
    --------
    >>> [p.name for p in expected_outputs("out", "r1", ["wfdb", "csv"])]
    ['r1.csv', 'r1.dat', 'r1.hea']
    """
    out = Path(out_dir)
    names = {"npy": [f"{stem}.npy"], "csv": [f"{stem}.csv"],
             "wfdb": [f"{stem}.dat", f"{stem}.hea"]}
    return tuple(out / n for fmt in ("npy", "csv", "wfdb") if fmt in formats for n in names[fmt])


def write_outputs(record: ECGRecord, out_dir: str | os.PathLike[str], stem: str,
                  formats: Sequence[str] = ("wfdb",)) -> tuple[Path, ...]:
    """Write a record in each format, atomically; return the paths written.

    Everything is first written into a temporary folder inside ``out_dir``
    then moved into place with :func:`os.replace` (WFDB header last), so an
    interrupted write never leaves a partial file under a final name.

    Parameters
    ----------
    record : ECGRecord
        Signal in mV.
    out_dir : path-like
        Destination folder (created if needed).
    stem : str
        File stem (also the WFDB record name).
    formats : sequence of str
        Any of :data:`FORMATS`.

    Returns
    -------
    tuple of Path
        The files written (see :func:`expected_outputs`).

    Raises
    ------
    ConfigurationError
        Unknown format.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> rec = ECGRecord(np.zeros((10, 12)), fs=500)
    >>> [p.name for p in write_outputs(rec, tempfile.mkdtemp(), "r1", ["npy", "wfdb"])]
    ['r1.npy', 'r1.dat', 'r1.hea']
    """
    bad = set(formats) - set(FORMATS)
    if bad or not formats:
        raise ConfigurationError(f"formats must be among {FORMATS}; got {list(formats)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=out))
    try:
        if "npy" in formats:
            np.save(tmp / f"{stem}.npy", record.to_numpy())
        if "csv" in formats:
            record.to_csv(tmp / f"{stem}.csv")
        if "wfdb" in formats:
            record.replace(name=stem).to_wfdb(tmp, record_name=stem)
        finals = expected_outputs(out, stem, formats)
        for final in finals:
            os.replace(tmp / final.name, final)
        return finals
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert_file(path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 formats: Sequence[str] = ("wfdb",), fs: float = 500,
                 config: Any = None, digitize: DigitizeFn | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, overlay: bool = False,
                 timeout_s: float | None = None) -> FileResult:
    """Load, digitize and write one sheet; never raises for a bad file.

    Parameters
    ----------
    path : path-like
        Sheet image or PDF.
    out_dir : path-like
        Output folder.
    formats, fs, config
        Output formats, sampling rate in Hz and ``DigitizeConfig`` for ``digitize``.
    digitize : callable, optional
        ``digitize(image, fs=..., config=...) -> DigitizedECG``; defaults to
        :func:`ecgdigitize.digitize`.
    max_pixels : int
        Decompression-bomb limit of :func:`~ecgdigitize.io.load_image`.
    overlay : bool, default False
        Also write ``<stem>_overlay.png``: the traces found, drawn over the
        rectified sheet (see :func:`draw_overlay`).
    timeout_s : float, optional
        Give up on the file after this many seconds (wall clock): it is
        reported as failed with ``ConversionTimeoutError`` and nothing is
        written. Enforced with ``SIGALRM`` in the main thread of a POSIX
        process (the serial run and pool workers); elsewhere (Windows, Dask
        worker threads) it is not enforced and a debug message says so. Long
        native calls finish before the limit takes effect.

    Returns
    -------
    FileResult
        ``status="failed"`` with the error type and reason when anything went
        wrong (a project error, or a bug: its traceback is logged).

    Raises
    ------
    ConfigurationError
        ``timeout_s`` is not positive (a bad argument, not a bad file).

    Examples
    --------
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> res = convert_file(f"{out}/missing.png", out)
    >>> res.status, res.error_type
    ('failed', 'UnreadableImageError')
    """
    check_timeout(timeout_s)
    t0, c0 = time.perf_counter(), time.process_time()
    src = os.path.abspath(os.fspath(path))
    base = FileResult(input=src, status="failed", stem=output_stem(src),
                      worker=f"{socket.gethostname()}:{os.getpid()}")
    fn = digitize or _default_digitize()
    try:
        with warnings.catch_warnings(record=True) as caught, _time_limit(timeout_s, src):
            warnings.simplefilter("always")
            image = load_image(src, max_pixels=max_pixels)
            data = _safe_fingerprint(src)
            result = fn(image, fs=fs, config=config)
            if getattr(result, "source", "") is None:
                result = replace(result, source=src)
            outputs = write_outputs(result, out_dir, base.stem, formats)
            if overlay:
                png = Path(out_dir) / f"{base.stem}_overlay.png"
                _save_png_atomic(draw_overlay(image, result), png)
                outputs = (*outputs, png)
            del image
        return _ok_result(base, data, result, outputs, caught, time.perf_counter() - t0,
                          time.process_time() - c0)
    except (ECGError, Exception) as exc:  # a batch survives every bad file
        if not isinstance(exc, ECGError):
            logger.error("unexpected error on %s\n%s", src, traceback.format_exc())
        reason = exc.reason if isinstance(exc, ECGError) else (str(exc) or repr(exc))
        return _replace(base, error_type=type(exc).__name__, error_message=reason,
                        time_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0,
                        peak_rss_mb=peak_rss_mb(),
                        **_safe_fingerprint(src))


def check_timeout(timeout_s: float | None) -> None:
    """Refuse a per-file time limit that is not a positive number of seconds.

    Parameters
    ----------
    timeout_s : float or None
        Limit, s; None means no limit.

    Raises
    ------
    ConfigurationError
        ``timeout_s`` is zero, negative or NaN.

    Examples
    --------
    >>> check_timeout(None), check_timeout(2.5)
    (None, None)
    >>> check_timeout(0)
    Traceback (most recent call last):
    ...
    ecgdigitize.errors.ConfigurationError: timeout_s must be a positive number of seconds; got 0
    """
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigurationError(f"timeout_s must be a positive number of seconds; "
                                 f"got {timeout_s!r}")


@contextlib.contextmanager
def _time_limit(timeout_s: float | None, src: str) -> Iterator[None]:
    """Raise :class:`ConversionTimeoutError` in this block after ``timeout_s`` seconds."""
    if timeout_s is None:
        yield
        return
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        logger.debug("time limit of %s s not enforced for %s (no SIGALRM here)", timeout_s, src)
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ConversionTimeoutError(f"conversion took longer than {timeout_s:g} s", path=src)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _ok_result(base: FileResult, data: dict[str, Any], result: DigitizedECG,
               outputs: Sequence[Path], caught: Sequence[warnings.WarningMessage],
               elapsed_s: float, cpu_s: float) -> FileResult:
    sig = np.asarray(result.signal)
    leads = int(np.sum(np.any(np.isfinite(sig), axis=0))) if sig.size else 0
    ppm = getattr(result, "px_per_mm", None)
    notes = tuple(getattr(result, "warnings", ())) + tuple(str(w.message) for w in caught)
    return _replace(
        base, status="ok", outputs=tuple(str(p) for p in outputs), **data,
        layout=getattr(result, "layout", None),
        px_per_mm=None if ppm is None or not np.all(np.isfinite(ppm))
        else (float(ppm[0]), float(ppm[1])),
        quality={k: float(v) for k, v in getattr(result, "quality", {}).items()},
        leads_recovered=leads, warnings=tuple(dict.fromkeys(notes)), time_s=elapsed_s, cpu_s=cpu_s,
        stage_times_s={k: float(v) for k, v in getattr(result, "stage_times_s", {}).items()},
        peak_rss_mb=peak_rss_mb())


def _finite(obj: Any) -> Any:
    """Non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _replace(res: FileResult, **changes: Any) -> FileResult:
    return replace(res, **changes)


def _fingerprint(path: str) -> dict[str, Any]:
    st = os.stat(path)
    h = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                h.update(chunk)
    return {"sha256": h.hexdigest(), "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _safe_fingerprint(path: str) -> dict[str, Any]:
    try:
        return _fingerprint(path)
    except OSError:
        return {}


def _default_digitize() -> DigitizeFn:
    import ecgdigitize

    fn: DigitizeFn | None = getattr(ecgdigitize, "digitize", None)
    if fn is not None:
        return fn
    try:
        from .pipeline import digitize
    except ImportError as exc:
        raise MissingDependencyError("ecgdigitize.pipeline.digitize is not available") from exc
    return digitize


def task_in_worker(path: str, **kwargs: Any) -> FileResult:
    """:func:`convert_file` as run on a pool or Dask worker (one thread per process)."""
    limit_threads()
    return convert_file(path, **kwargs)


def draw_overlay(image: np.ndarray, result: DigitizedECG) -> np.ndarray:
    """Draw the recovered traces (blue) over the input sheet, to check them by eye.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The input sheet, as loaded.
    result : DigitizedECG
        Its digitization; without a calibration nothing is drawn.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        A copy of ``image`` with the traces of
        :func:`ecgdigitize.overlay.trace_polylines` drawn on it.

    Examples
    --------
    >>> from ecgdigitize.result import Calibration, DigitizedECG, Panel
    >>> panel = Panel("I", (100.0, 0.0, 592.5, 300.0), 0.0, 2.5, 150.0, 0, 0)
    >>> sig = np.full((5000, 12), np.nan); sig[:1250, 0] = 1.0  # 1 mV step, 2.5 s
    >>> res = DigitizedECG(sig, 500, panels=(panel,), calibration=Calibration(7.88, 7.88))
    >>> sheet = np.full((300, 700, 3), 255, np.uint8)
    >>> canvas = draw_overlay(sheet, res)
    >>> canvas.shape, int((canvas != 255).any(axis=2).sum()) > 400
    ((300, 700, 3), True)
    """
    import cv2

    from .overlay import trace_polylines

    canvas = np.ascontiguousarray(image[..., :3]).copy()
    try:
        lines = trace_polylines(result)
    except ECGError:
        return canvas
    for _lead, x, y in lines:
        pts = np.stack([x, y], axis=1)
        bad = ~np.all(np.isfinite(pts), axis=1)
        for run in np.split(pts, np.flatnonzero(bad)):
            run = run[np.all(np.isfinite(run), axis=1)]
            if len(run) > 1:
                cv2.polylines(canvas, [np.round(run).astype(np.int32)], False, (0, 90, 255), 1,
                              cv2.LINE_AA)
    return canvas


def _save_png_atomic(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        Image.fromarray(rgb).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
