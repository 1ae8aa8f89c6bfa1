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
    """Latest ``ok``/``failed`` entry per input of a manifest (torn lines are ignored)."""
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
    """Append-only JSON-lines file, flushed and fsynced per entry, locked for one run."""

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
