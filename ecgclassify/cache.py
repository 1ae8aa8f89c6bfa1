"""On-disk cache of digitization results (and their features), keyed by content hash.

Digitizing a sheet takes about a second of CPU; experiments re-use the same
sheets over and over (folds, models, duplicate files). The cache stores one
entry per *content*: the key is the SHA-256 of the file's bytes (or of an
array's bytes), the digitizer version and a digest of the digitizer
arguments, so identical copies share an entry and a new digitizer version
never reads stale results.

An entry is ``<key>.npz`` (the signal, float32 mV, NaN kept) plus
``<key>.json`` (sampling rate, lead names, layout, quality, warnings, or the
error a failed sheet raised). Nothing is pickled: NumPy files are read with
``allow_pickle=False``.

The default folder is ``$ECGDIGITIZE_CACHE`` or ``~/.cache/ecgdigitize``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgdigitize.record import ECGRecord

__all__ = ["CachedFailure", "DigitizationCache", "content_hash", "default_cache_dir",
           "digitizer_fingerprint"]


def default_cache_dir() -> Path:
    """The cache folder used when none is given.

    Returns
    -------
    Path
        ``$ECGDIGITIZE_CACHE`` if set, else ``~/.cache/ecgdigitize`` (not created).

    Examples
    --------
    >>> import os
    >>> os.environ["ECGDIGITIZE_CACHE"] = "/tmp/ecg-cache"
    >>> default_cache_dir()
    PosixPath('/tmp/ecg-cache')
    >>> del os.environ["ECGDIGITIZE_CACHE"]
    """
    env = os.environ.get("ECGDIGITIZE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ecgdigitize"


def content_hash(source: str | os.PathLike[str] | bytes | np.ndarray) -> str:
    """SHA-256 (hex) of a file's bytes, of bytes, or of an array's shape, dtype and bytes.

    Parameters
    ----------
    source : path-like, bytes or ndarray
        A file (read in 1 MiB chunks), raw bytes, or an array (its shape and
        dtype are hashed too, so equal bytes of different shapes differ).

    Returns
    -------
    str
        64 hexadecimal characters.

    Raises
    ------
    OSError
        The file cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> content_hash(b"abc")[:12]
    'ba7816bf8f01'
    >>> content_hash(np.zeros((2, 3))) == content_hash(np.zeros((3, 2)))
    False
    """
    h = hashlib.sha256()
    if isinstance(source, bytes):
        h.update(source)
    elif isinstance(source, np.ndarray):
        arr = np.ascontiguousarray(source)
        h.update(f"{arr.shape}{arr.dtype.str}".encode())
        h.update(arr.tobytes())
    else:
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class CachedFailure:
    """A sheet that failed to digitize: the error's class name and message.

    Attributes
    ----------
    error : str
        Class name of the exception (``"NoGridFoundError"``...).
    message : str
        Its message.

    Examples
    --------
    >>> import tempfile
    >>> from ecgdigitize.errors import NoGridFoundError
    >>> cache = DigitizationCache(tempfile.mkdtemp(), version="test")
    >>> cache.put("k", NoGridFoundError("no periodic grid found"))
    >>> cache.get("k")
    CachedFailure(error='NoGridFoundError', message='no periodic grid found')
    """

    error: str
    message: str


class DigitizationCache:
    """A folder of digitization results, one entry per (content, digitizer, arguments).

    Parameters
    ----------
    directory : path-like, optional
        Cache folder (created on first write). Default :func:`default_cache_dir`.
    version : str, optional
        Digitizer version; default ``ecgdigitize.__version__`` plus a digest
        of the digitizer's source (:func:`digitizer_fingerprint`), so a
        changed digitizer never reuses stale entries.
    digitize_kwargs : mapping, optional
        Arguments given to ``ecgdigitize.digitize``; part of the key.

    Examples
    --------
    >>> import tempfile
    >>> cache = DigitizationCache(tempfile.mkdtemp())
    >>> key = cache.key("0" * 64)
    >>> cache.get(key) is None
    True
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 version: str | None = None,
                 digitize_kwargs: Mapping[str, Any] | None = None) -> None:
        from ecgdigitize import __version__

        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.version = version or f"{__version__}+{digitizer_fingerprint()}"
        args = json.dumps(dict(digitize_kwargs or {}), sort_keys=True, default=repr)
        self._args_digest = hashlib.sha256(args.encode()).hexdigest()[:12]

    def key(self, sha256: str) -> str:
        """Entry name for a content hash (includes digitizer version and arguments)."""
        return f"{sha256}-v{self.version}-{self._args_digest}"

    def get(self, key: str) -> ECGRecord | CachedFailure | None:
        """The cached record, a :class:`CachedFailure`, or None when absent/corrupt."""
        meta_path = self.directory / f"{key}.json"
        try:
            meta = json.loads(meta_path.read_text())
            if "error" in meta:
                return CachedFailure(meta["error"], meta.get("message", ""))
            with np.load(self.directory / f"{key}.npz", allow_pickle=False) as npz:
                signal = npz["signal"].astype(np.float64)
            return ECGRecord(signal, fs=meta["fs"], lead_names=tuple(meta["lead_names"]),
                             name=meta.get("name", "ecg"), lead_info=meta.get("lead_info", {}),
                             comments=tuple(meta.get("comments", ())))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: ECGRecord | BaseException,
            extra: Mapping[str, Any] | None = None) -> None:
        """Store a digitized record, or the error a sheet raised."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if isinstance(result, BaseException):
            meta: dict[str, Any] = {"error": type(result).__name__, "message": str(result)}
        else:
            meta = {"fs": result.fs, "lead_names": list(result.lead_names),
                    "name": result.name, "lead_info": _jsonable(result.lead_info),
                    "comments": list(result.comments)}
            for attr in ("layout", "quality", "warnings"):
                if hasattr(result, attr):
                    meta[attr] = _jsonable(getattr(result, attr))
            _atomic_write(self.directory / f"{key}.npz",
                          lambda fh: np.savez_compressed(
                              fh, signal=result.signal.astype(np.float32)))
        meta.update(_jsonable(dict(extra or {})))
        _atomic_write(self.directory / f"{key}.json",
                      lambda fh: fh.write(json.dumps(meta, indent=1).encode()))

    def get_features(self, key: str, features_version: str) -> dict[str, float] | None:
        """Cached feature dict for an entry, or None."""
        try:
            data = json.loads((self.directory / f"{key}.features-{features_version}.json")
                              .read_text())
        except (OSError, ValueError):
            return None
        return {k: (float("nan") if v is None else float(v)) for k, v in data.items()}

    def put_features(self, key: str, features_version: str, feats: Mapping[str, float]) -> None:
        """Store a feature dict (NaN written as null)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {k: (None if not np.isfinite(v) else float(v)) for k, v in feats.items()}
        _atomic_write(self.directory / f"{key}.features-{features_version}.json",
                      lambda fh: fh.write(json.dumps(data).encode()))


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def digitizer_fingerprint() -> str:
    """Short digest of the digitizer's source code (the pipeline stage modules).

    Part of every cache key, so editing any stage invalidates cached
    digitizations even when the version number did not change.

    Returns
    -------
    str
        12 hexadecimal characters.

    Examples
    --------
    >>> len(digitizer_fingerprint())
    12
    """
    import ecgdigitize

    root = Path(ecgdigitize.__file__).parent
    skip = {"cli.py", "batch.py", "__main__.py", "metrics.py"}
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        if path.name not in skip:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
