"""The manifest of a batch run: one JSON line per input file, in the output folder.

Each line is a :class:`~ecgdigitize.convert.FileResult` (input path, sha256,
status, error, layout, quality, timings, outputs, peak memory) plus the run
id. Lines are only appended, flushed and fsynced one by one, so a killed run
loses at most the line it was writing; readers skip such a torn line. The
latest ``ok``/``failed`` line of an input decides whether a re-run skips it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .convert import FileResult, expected_outputs
from .errors import ConfigurationError

__all__ = ["MANIFEST_NAME", "Manifest", "is_done", "read_manifest"]

#: Name of the manifest written in the output folder.
MANIFEST_NAME = "manifest.jsonl"


def read_manifest(path: str | os.PathLike[str]) -> dict[str, FileResult]:
    """Latest ``ok``/``failed`` entry per input of a manifest (torn lines are ignored).

    Parameters
    ----------
    path : path-like
        The ``manifest.jsonl`` file; a missing file reads as empty.

    Returns
    -------
    dict of str to FileResult
        Keyed by absolute input path.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / MANIFEST_NAME
    >>> m = Manifest(path)
    >>> m.append(FileResult(input="/x/a.png", status="failed", error_type="NoGridFoundError"))
    >>> m.append(FileResult(input="/x/a.png", status="ok", layout="3x4+1"))
    >>> m.close()
    >>> _ = open(path, "a").write('{"input": "/x/b.png", "sta')  # a torn line
    >>> {k: v.status for k, v in read_manifest(path).items()}
    {'/x/a.png': 'ok'}
    """
    latest: dict[str, FileResult] = {}
    p = Path(path)
    if not p.exists():
        return latest
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                res = FileResult.from_json(entry)
            except (ValueError, TypeError):
                continue  # a line cut by a killed run
            if res.status in ("ok", "failed"):
                latest[res.input] = res
    return latest


class Manifest:
    """Append-only JSON-lines file, flushed and fsynced per entry, locked for one run.

    Parameters
    ----------
    path : Path
        The ``manifest.jsonl`` file (created if missing, appended to otherwise).

    Attributes
    ----------
    run_id : str
        ``<UTC time>-<pid>``, written in every entry of this run.

    Raises
    ------
    ConfigurationError
        Another process holds the lock (a second run on the same output folder).

    Examples
    --------
    >>> import json, tempfile
    >>> path = Path(tempfile.mkdtemp()) / MANIFEST_NAME
    >>> m = Manifest(path)
    >>> m.append(FileResult(input="/x/a.png", status="ok"))
    >>> m.close()
    >>> entry = json.loads(path.read_text())
    >>> entry["input"], entry["run"] == m.run_id
    ('/x/a.png', True)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        self._fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._fh.close()
            raise ConfigurationError("another batch run is writing to this output folder",
                                     path=path.parent) from exc
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() > 0:
            self._fh.seek(self._fh.tell() - 1)
            if self._fh.read(1) != "\n":  # a line torn by a killed run
                self._fh.write("\n")

    def append(self, res: FileResult) -> None:
        """Write one entry and push it to disk before returning."""
        entry = {"run": self.run_id, **res.to_json()}
        self._fh.write(json.dumps(entry, allow_nan=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Release the lock and close the file."""
        self._fh.close()


def is_done(prev: FileResult | None, path: str, out_dir: Path, formats: Sequence[str],
             retry_failed: bool) -> str | None:
    """Why ``path`` can be skipped, or None when it must be (re)converted.

    A file is done when its latest entry says ``ok``, the input has the same
    size and modification time, and every output of ``formats`` exists; a file
    that failed is skipped unless ``retry_failed`` (or the input changed).

    Parameters
    ----------
    prev : FileResult or None
        Latest manifest entry of the input (see :func:`read_manifest`).
    path : str
        The input file.
    out_dir : Path
        Output folder.
    formats : sequence of str
        Output formats asked for this run.
    retry_failed : bool
        Convert again inputs that failed before.

    Returns
    -------
    str or None
        The reason to skip, or None.

    Examples
    --------
    >>> prev = FileResult(input="/nonexistent.png", status="failed",
    ...                   error_type="NoGridFoundError", error_message="no grid")
    >>> is_done(prev, "/nonexistent.png", Path("out"), ["wfdb"], retry_failed=False)
    'failed in an earlier run (NoGridFoundError: no grid); use --retry-failed to try again'
    >>> is_done(prev, "/nonexistent.png", Path("out"), ["wfdb"], retry_failed=True) is None
    True
    """
    if prev is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        st = None
    same = st is not None and (prev.size_bytes, prev.mtime_ns) == (st.st_size, st.st_mtime_ns)
    if prev.status == "ok" and same:
        if all(p.exists() for p in expected_outputs(out_dir, prev.stem, formats)):
            return "done in an earlier run"
    if prev.status == "failed" and not retry_failed and (same or st is None):
        return (f"failed in an earlier run ({prev.error_type}: {prev.error_message}); "
                "use --retry-failed to try again")
    return None
