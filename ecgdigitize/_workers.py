"""Process-level helpers of batch runs: thread limits, worker start-up, stale temp folders.

Parallelism comes from processes, so every worker keeps BLAS/OpenMP/OpenCV to
one thread; a worker exits when its driver dies; temporary folders left by
killed processes are removed by the next run. Public names are re-exported by
:mod:`ecgdigitize.convert`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["dask_worker_setup", "limit_threads", "peak_rss_mb", "remove_stale_temps",
           "single_thread_env", "worker_init"]

#: Prefix of the temporary folders and files written inside an output folder.
_TMP_PREFIX = ".ecgdigitize-tmp-"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
#: glibc ``mallopt`` parameters and the values :func:`dask_worker_setup` gives them.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the ceiling glibc's own dynamic threshold reaches
_TRIM_THRESHOLD_BYTES = 2 * _MMAP_THRESHOLD_BYTES


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``getrusage`` maxrss).

    Returns
    -------
    float
        Peak resident set size, MiB, rounded to 0.1.

    Examples
    --------
    >>> peak_rss_mb() > 0
    True
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def limit_threads() -> None:
    """Keep this process to one BLAS/OpenMP/OpenCV thread (parallelism comes from processes).

    Sets the thread environment variables for this process and its children
    and, when installed, limits OpenCV and the BLAS pools already loaded.

    Examples
    --------
    >>> import os
    >>> saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    >>> limit_threads()
    >>> os.environ["OMP_NUM_THREADS"]
    '1'
    >>> for var, val in saved.items():  # leave the doctest process as it was
    ...     _ = os.environ.pop(var, None) if val is None else os.environ.update({var: val})
    """
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    with contextlib.suppress(ImportError):
        import cv2

        cv2.setNumThreads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def dask_worker_setup() -> bool:
    """Prepare a Dask worker process for sheets: one thread, and glibc's malloc thresholds back.

    Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``. On glibc
    that also freezes the mmap threshold at 128 KiB, so every image-sized array is
    a fresh ``mmap`` whose pages are faulted in and zeroed again: measured here it
    doubled the CPU time of a sheet (0.43 s instead of 0.23 s, 2 Dask workers on
    2 cores, 60 rendered sheets). This sets the mmap threshold to 32 MiB (where
    glibc's own adaptive threshold would end up) and the trim threshold to 64 MiB,
    so large buffers are reused; memory is still returned above that.
    Run once per worker, e.g. ``client.run(dask_worker_setup)``.

    Returns
    -------
    bool
        True when the malloc thresholds were changed (glibc with the variable
        set), False elsewhere.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> Client("tcp://10.0.0.5:8786").run(dask_worker_setup)  # doctest: +SKIP
    {'tcp://10.0.0.7:40000': True, 'tcp://10.0.0.8:40000': True}
    """
    limit_threads()
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
        return bool(ok and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt thresholds)
        return False


def worker_init(driver_pid: int | None = None) -> None:
    """Initializer of batch worker processes: one thread, SIGINT left to the driver.

    With ``driver_pid``, the worker exits as soon as that process is gone: a
    killed driver must not leave workers (and a fork server that lives as long
    as they do) behind, blocked forever on their task queue.
    """
    import threading

    # Ctrl-C reaches the whole process group; the driver decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads()
    if driver_pid is not None:
        threading.Thread(target=_exit_with_driver, args=(driver_pid,), daemon=True,
                         name="ecgdigitize-driver-watch").start()


def _exit_with_driver(driver_pid: int, period_s: float = 0.5) -> None:
    while _pid_alive(driver_pid):
        time.sleep(period_s)
    os._exit(1)  # the driver died: its temp folders are removed by the next run


@contextlib.contextmanager
def single_thread_env() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 while spawning worker processes.

    Yields
    ------
    None
        The previous values are restored on exit.

    Examples
    --------
    >>> with single_thread_env():
    ...     os.environ["OPENBLAS_NUM_THREADS"]
    '1'
    """
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for var, val in saved.items():
            if val is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = val


def remove_stale_temps(out_dir: str | os.PathLike[str]) -> None:
    """Remove temporary folders left in ``out_dir`` by killed processes (not by live ones).

    Parameters
    ----------
    out_dir : path-like
        Output folder of a batch run.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / f"{_TMP_PREFIX}{os.getpid()}-live").mkdir()
    >>> remove_stale_temps(out)  # this process is alive: its folder stays
    >>> [p.name.endswith("-live") for p in out.iterdir()]
    [True]
    """
    for tmp in Path(out_dir).glob(f"{_TMP_PREFIX}*"):
        pid = tmp.name[len(_TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a killed one not yet reaped, a zombie, is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill()
