"""Batch conversion of many sheets: resume, atomic outputs, manifest, process pool or Dask.

:func:`digitize_many` converts a list of sheet images into one output per
input (WFDB, CSV and/or NumPy, see :func:`~ecgdigitize.convert.convert_file`).
It survives every bad file (the error goes to the manifest), writes each
output atomically, and appends one JSON line per file to ``manifest.jsonl``
(flushed and fsynced as it goes). Re-running skips what is done, so an
interrupted run resumes where it stopped. The same call runs in-process, on a
local process pool, or on a Dask cluster; workers write the outputs (a shared
file system), the driver alone writes the manifest.

Two runs must not share an output folder at the same time (a lock refuses it).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import functools
import glob
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._workers import dask_worker_setup, remove_stale_temps, single_thread_env, worker_init
from .convert import (
    FORMATS,
    DigitizeFn,
    FileResult,
    _default_digitize,
    check_timeout,
    convert_file,
    output_stem,
    task_in_worker,
    write_outputs,
)
from .errors import ConfigurationError, InputError, MissingDependencyError
from .io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from .manifest import MANIFEST_NAME, Manifest, is_done, read_manifest

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "BatchSummary",
    "FileResult",
    "convert_file",
    "digitize_many",
    "find_inputs",
    "output_stem",
    "read_manifest",
    "write_outputs",
]

logger = logging.getLogger(__name__)

Task = Callable[[str], FileResult]


@dataclass(frozen=True)
class BatchSummary:
    """Outcome of :func:`digitize_many`.

    Attributes
    ----------
    results : tuple of FileResult
        One per input, in completion order (skipped files first).
    elapsed_s : float
        Wall time of the run, s.
    manifest : str
        Path of the manifest.
    interrupted : bool
        True when the run was stopped (Ctrl-C, SIGTERM) before the end.
    n_inputs : int
        Number of distinct inputs asked for.

    Examples
    --------
    >>> s = BatchSummary((FileResult("/x/a.png", "ok"), FileResult("/x/b.png", "failed")),
    ...                  elapsed_s=12.0, manifest="out/manifest.jsonl", n_inputs=2)
    >>> s.n_ok, s.n_failed, str(s)
    (1, 1, '1 ok, 1 failed, 0 skipped in 12 s')
    """

    results: tuple[FileResult, ...]
    elapsed_s: float
    manifest: str
    interrupted: bool = False
    n_inputs: int = 0

    def count(self, status: str) -> int:
        """Number of results with that status."""
        return sum(r.status == status for r in self.results)

    @property
    def n_ok(self) -> int:
        """Files converted in this run."""
        return self.count("ok")

    @property
    def n_failed(self) -> int:
        """Files that failed in this run."""
        return self.count("failed")

    @property
    def n_skipped(self) -> int:
        """Files skipped (done, or failed before and not retried)."""
        return self.count("skipped")

    @property
    def n_failed_earlier(self) -> int:
        """Skipped files that failed in an earlier run (see ``retry_failed``)."""
        return sum(r.status == "skipped" and r.error_type is not None for r in self.results)

    def __str__(self) -> str:
        earlier = f" ({self.n_failed_earlier} failed earlier)" if self.n_failed_earlier else ""
        text = (f"{self.n_ok} ok, {self.n_failed} failed, {self.n_skipped} skipped{earlier} "
                f"in {self.elapsed_s:.0f} s")
        if self.interrupted:
            left = self.n_inputs - len(self.results)
            text += f" (interrupted: {left} of {self.n_inputs} files not done)"
        return text


# --- inputs ----------------------------------------------------------------------
def find_inputs(source: str | os.PathLike[str], *,
                exclude: str | os.PathLike[str] | None = None) -> list[Path]:
    """List the sheet files named by ``source``, sorted.

    Parameters
    ----------
    source : path-like
        A directory (searched recursively for :data:`~ecgdigitize.io.IMAGE_SUFFIXES`),
        a glob pattern, a CSV file with a ``path`` column (relative paths are
        relative to the CSV's folder) or a single image file.
    exclude : path-like, optional
        A folder whose files are never listed (the output folder).

    Returns
    -------
    list of Path
        Distinct files, sorted.

    Raises
    ------
    InputError
        ``source`` does not exist, or a CSV has no ``path`` column.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.jpg", "notes.txt", "out/c.png"):
    ...     (root / name).parent.mkdir(exist_ok=True); (root / name).touch()
    >>> [f.name for f in find_inputs(root, exclude=root / "out")]
    ['a.jpg', 'b.png']
    >>> _ = (root / "list.csv").write_text("path\\nb.png\\n")
    >>> [f.name for f in find_inputs(root / "list.csv")]
    ['b.png']
    """
    text = os.fspath(source)
    p = Path(text)
    if p.is_dir():
        found = [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    elif p.suffix.lower() == ".csv" and p.is_file():
        found = _read_csv_list(p)
    elif p.exists():
        found = [p]
    elif glob.has_magic(text):
        found = [Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file()]
    else:
        raise InputError("no such file, folder or matching glob", path=text)
    skip = Path(exclude).resolve() if exclude is not None else None
    keep = [f for f in found if skip is None or not f.resolve().is_relative_to(skip)]
    return sorted(dict.fromkeys(keep))


def _read_csv_list(path: Path) -> list[Path]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if "path" not in (reader.fieldnames or ()):
            raise InputError(f"CSV list needs a 'path' column; has {reader.fieldnames}",
                             path=path)
        rows = [r["path"].strip() for r in reader if (r.get("path") or "").strip()]
    return [Path(r) if Path(r).is_absolute() else path.parent / r for r in rows]


# --- the driver ------------------------------------------------------------------
def digitize_many(paths: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                  formats: Sequence[str] = ("wfdb",), fs: float = 500, config: Any = None,
                  jobs: int = 1, scheduler: str = "local", client: Any = None,
                  retry_failed: bool = False, progress: bool = True,
                  digitize: DigitizeFn | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  timeout_s: float | None = None,
                  on_result: Callable[[FileResult], None] | None = None) -> BatchSummary:
    """Digitize many sheets into ``out_dir``, resumably.

    Parameters
    ----------
    paths : iterable of path-like
        Sheet files (see :func:`find_inputs`); duplicates are dropped.
    out_dir : path-like
        Output folder; holds the outputs and ``manifest.jsonl``.
    formats : sequence of str, default ("wfdb",)
        Any of ``"wfdb"``, ``"csv"``, ``"npy"``.
    fs : float, default 500
        Output sampling rate, Hz.
    config : DigitizeConfig, optional
        Passed to ``digitize``.
    jobs : int, default 1
        Worker processes (``"local"``, ``"processes"``) or LocalCluster workers (``"dask"``).
    scheduler : str, default "local"
        ``"local"`` (in-process when ``jobs == 1``, else a process pool),
        ``"processes"`` (always a pool), ``"dask"`` (a new LocalCluster) or
        ``"dask://HOST:PORT"`` (an existing Dask scheduler).
    client : dask.distributed.Client, optional
        Run on this client's cluster (overrides ``scheduler``).
    retry_failed : bool, default False
        Convert again files that failed in an earlier run.
    progress : bool, default True
        Show a tqdm progress bar on stderr.
    digitize : callable, optional
        ``digitize(image, fs=..., config=...)``; default :func:`ecgdigitize.digitize`.
        Must be picklable (a module-level function) for pools and Dask.
    max_pixels : int
        Decompression-bomb limit of the loader.
    timeout_s : float, optional
        Per-file time limit, s: a file that takes longer fails with
        ``ConversionTimeoutError`` and the run goes on (enforced in the serial
        run and in pool workers, not on Dask; see :func:`convert_file`).
    on_result : callable, optional
        Called in the driver with each :class:`FileResult` as it arrives.

    Returns
    -------
    BatchSummary
        Counts, per-file results, and whether the run was interrupted. A
        Ctrl-C or SIGTERM stops the run cleanly (no partial output) and
        returns the summary with ``interrupted=True``.

    Raises
    ------
    ConfigurationError
        Bad ``formats``, ``jobs``, ``scheduler`` or ``timeout_s``, or another run
        holds ``out_dir``.
    MissingDependencyError
        A Dask scheduler without ``dask.distributed`` installed.

    Examples
    --------
    >>> import tempfile
    >>> s = digitize_many([], tempfile.mkdtemp(), progress=False, digitize=print)
    >>> str(s)
    '0 ok, 0 failed, 0 skipped in 0 s'
    """
    t0 = time.perf_counter()
    formats = _check_args(formats, jobs, scheduler, client)
    check_timeout(timeout_s)
    out = Path(out_dir).resolve()  # workers may run in another folder (Dask)
    out.mkdir(parents=True, exist_ok=True)
    inputs = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
    fn = digitize or _default_digitize()
    task = functools.partial(task_in_worker, out_dir=str(out), formats=tuple(formats), fs=fs,
                             config=config, digitize=fn, max_pixels=max_pixels,
                             timeout_s=timeout_s)
    manifest = Manifest(out / MANIFEST_NAME)
    results: list[FileResult] = []
    interrupted = False
    try:
        remove_stale_temps(out)
        todo = _plan(inputs, out, formats, retry_failed, results)
        for res in results:
            _record(manifest, res, on_result)
        with _sigterm_as_interrupt(), _progress_bar(len(todo), progress) as bar:
            try:
                for res in _run(todo, task, jobs, scheduler, client):
                    results.append(res)
                    _record(manifest, res, on_result)
                    bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
                logger.warning("interrupted after %d of %d files", len(results), len(inputs))
    finally:
        manifest.close()
        remove_stale_temps(out)  # of workers killed by a crash or an interrupt
    return BatchSummary(tuple(results), time.perf_counter() - t0, str(manifest.path),
                        interrupted, len(inputs))


def _check_args(formats: Sequence[str] | str, jobs: int, scheduler: str,
                client: Any) -> tuple[str, ...]:
    fmts = tuple(f.strip() for f in formats.split(",")) if isinstance(formats, str) \
        else tuple(formats)
    if not fmts or set(fmts) - set(FORMATS):
        raise ConfigurationError(f"formats must be among {FORMATS}; got {list(fmts)}")
    if int(jobs) < 1:
        raise ConfigurationError(f"jobs must be >= 1; got {jobs!r}")
    ok = scheduler in ("local", "processes", "dask") or scheduler.startswith(("dask://",
                                                                               "tcp://"))
    if client is None and not ok:
        raise ConfigurationError("scheduler must be 'local', 'processes', 'dask' or "
                                 f"'dask://HOST:PORT'; got {scheduler!r}")
    return fmts


def _plan(inputs: Sequence[str], out: Path, formats: Sequence[str], retry_failed: bool,
          skipped: list[FileResult]) -> list[str]:
    previous = read_manifest(out / MANIFEST_NAME)
    todo = []
    for path in inputs:
        prev = previous.get(path)
        why = is_done(prev, path, out, formats, retry_failed)
        if why is None:
            todo.append(path)
        else:
            assert prev is not None
            skipped.append(FileResult(input=path, status="skipped", stem=prev.stem,
                                      outputs=prev.outputs if prev.status == "ok" else (),
                                      sha256=prev.sha256, size_bytes=prev.size_bytes,
                                      mtime_ns=prev.mtime_ns, error_type=prev.error_type,
                                      error_message=why, layout=prev.layout,
                                      quality=prev.quality))
    return todo


def _record(manifest: Manifest, res: FileResult,
            on_result: Callable[[FileResult], None] | None) -> None:
    manifest.append(res)
    if on_result is not None:
        on_result(res)


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not enabled or total == 0, unit="sheet", leave=False,
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a run is in progress (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# --- schedulers ------------------------------------------------------------------
def _run(todo: Sequence[str], task: Task, jobs: int, scheduler: str,
         client: Any) -> Iterator[FileResult]:
    if not todo:
        return iter(())
    if client is not None or scheduler.startswith(("dask", "tcp://")):
        return _dask_results(todo, task, jobs, scheduler, client)
    if scheduler == "local" and jobs == 1:
        return (task(p) for p in todo)
    return _pool_results(todo, task, jobs)


def _pool_results(todo: Sequence[str], task: Task, jobs: int) -> Iterator[FileResult]:
    """Process pool; a file that crashes its worker twice (alone) is reported failed."""
    suspects = yield from _pool_pass(todo, task, jobs)
    for path in suspects:  # re-run alone those that were in flight when a worker died
        again = yield from _pool_pass([path], task, 1)
        if again:
            yield FileResult(input=path, status="failed", stem=output_stem(path),
                             error_type="WorkerCrashedError",
                             error_message="the worker process died while converting this "
                                           "file (killed, out of memory or a crash)")


def _mp_context() -> Any:
    """A fork server that imported the pipeline once (workers start in ms), else spawn."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["ecgdigitize.convert", "ecgdigitize.pipeline"])
    return ctx


def _pool_pass(todo: Sequence[str], task: Task,
               jobs: int) -> Generator[FileResult, None, list[str]]:
    """Yield results; return the files in flight when a worker died (the suspects)."""
    pending = deque(todo)
    suspects: list[str] = []
    with single_thread_env():  # workers (and the fork server) start with one BLAS thread
        while pending:
            pool = cf.ProcessPoolExecutor(jobs, mp_context=_mp_context(),
                                          initializer=worker_init, initargs=(os.getpid(),))
            inflight: dict[cf.Future[FileResult], str] = {}
            clean = False
            try:
                broken = False
                while (pending and not broken) or inflight:
                    while pending and not broken and len(inflight) < 2 * jobs:
                        path = pending.popleft()
                        inflight[pool.submit(task, path)] = path
                    done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        path = inflight.pop(fut)
                        try:
                            res = fut.result()
                        except cf.process.BrokenProcessPool:
                            broken = True
                            suspects.append(path)
                            continue
                        yield res
                clean = True
            finally:
                _shutdown_pool(pool, clean)
    return suspects


def _shutdown_pool(pool: cf.ProcessPoolExecutor, clean: bool) -> None:
    if clean:
        pool.shutdown(wait=True)
        return
    # Interrupted: drop queued files, stop the workers (their temp folders are
    # removed by the next run), never leave a partial output under a final name.
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with suppress(Exception):
            proc.terminate()
    for proc in procs:
        with suppress(Exception):
            proc.join(timeout=5)


#: Housekeeping intervals of an own LocalCluster: the 20 ms event-loop tick and the
#: 0.5 s system monitor take the GIL from the sheet being converted (about 5 % here).
_QUIET_LOOPS = {"distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.worker.memory.monitor-interval": "1s"}


def _dask_results(todo: Sequence[str], task: Task, jobs: int, scheduler: str,
                  client: Any) -> Iterator[FileResult]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise MissingDependencyError("scheduler 'dask' needs dask[distributed]: "
                                     "pip install 'ecgdigitize[dask]'") from exc
    own: list[Any] = []
    if client is None:
        if scheduler == "dask":
            import dask

            # one BLAS/OpenMP thread per worker, no statistical profiler, and none of
            # Dask's MALLOC_TRIM_THRESHOLD_ (see dask_worker_setup: it doubles the CPU
            # time of every sheet); the other pre-spawn variables are kept
            environ = {k: v for k, v in
                       dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                       if k != "MALLOC_TRIM_THRESHOLD_"}
            with single_thread_env(), dask.config.set(
                    {"distributed.worker.profile.enabled": False,
                     "distributed.nanny.pre-spawn-environ": environ, **_QUIET_LOOPS}):
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
            own.append(cluster)
            client = Client(cluster)
        else:
            client = Client(scheduler.replace("dask://", "tcp://", 1))
        own.insert(0, client)
    with suppress(Exception):  # thread limits and malloc thresholds inside every worker
        client.run(dask_worker_setup)
    futures = []
    try:
        window = 4 * max(1, len(client.scheduler_info().get("workers", {})) or jobs)
        queue = deque(todo)
        paths: dict[Any, str] = {}

        def submit() -> Any:
            path = queue.popleft()
            fut = client.submit(task, path, pure=False)
            paths[fut] = path
            futures.append(fut)
            return fut

        ac = as_completed([submit() for _ in range(min(window, len(queue)))])
        for fut in ac:
            yield _dask_result(fut, paths.pop(fut))
            if queue:
                ac.add(submit())
    finally:
        with suppress(Exception):
            client.cancel([f for f in futures if not f.done()])
        for obj in own:
            with suppress(Exception):
                obj.close()


def _dask_result(fut: Any, path: str) -> FileResult:
    try:
        return fut.result()
    except Exception as exc:  # KilledWorker and other cluster failures
        return FileResult(input=path, status="failed", stem=output_stem(path),
                          error_type=type(exc).__name__, error_message=str(exc) or repr(exc))
