"""The ``ecgdigitize`` command line: ``digitize`` a few sheets, ``batch`` a whole archive.

Project errors are printed as ``error: <file>: <reason>`` lines, never as
tracebacks; the exit status is 0 when every file was converted (or skipped as
done), 1 when any failed, 2 for a usage error and 130 when interrupted.

Examples
--------
.. code-block:: console

    $ ecgdigitize digitize scan.jpg -o out --format wfdb,csv --overlay
    $ ecgdigitize batch archive/ -o out --format wfdb --jobs 2
    $ ecgdigitize batch sheets.csv -o out --scheduler dask://10.0.0.5:8786
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ECGError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 all converted, 1 some file failed, 2 usage error, 130 interrupted.

    Examples
    --------
    >>> main(["batch", "no/such/folder", "-o", "out", "-q"])  # prints "error: ..." on stderr
    2
    >>> build_parser().parse_args(["batch", "scans", "-o", "out", "--format", "wfdb,csv"]).format
    ('wfdb', 'csv')
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except ECGError as err:
        _err(f"error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``ecgdigitize`` (sub-commands ``digitize``, ``batch``).

    Returns
    -------
    argparse.ArgumentParser
        Each sub-command stores its handler in ``func``.

    Examples
    --------
    >>> args = build_parser().parse_args(["digitize", "a.png", "b.png", "-o", "out"])
    >>> args.images, args.out.name
    (['a.png', 'b.png'], 'out')
    """
    parser = argparse.ArgumentParser(
        prog="ecgdigitize",
        description="Digitize paper 12-lead ECG sheets (PNG/JPEG/TIFF/PDF) into calibrated "
                    "signals in mV (WFDB, CSV, NumPy).")
    parser.add_argument("--version", action="version", version=f"ecgdigitize {__version__}")
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    one = sub.add_parser("digitize", help="digitize a few sheet images",
                         description="Digitize sheet images; print one summary line per file.")
    one.add_argument("images", nargs="+", metavar="IMAGE", help="sheet image or PDF files")
    _common_options(one)
    one.add_argument("--overlay", action="store_true",
                     help="also write <name>_overlay.png: the traces found over the sheet")
    one.set_defaults(func=_cmd_digitize)

    many = sub.add_parser(
        "batch", help="convert a folder, glob or CSV list of sheets, resumably",
        description="Convert many sheets; skip those done by an earlier run (see manifest.jsonl "
                    "in the output folder); never stop on a bad file.")
    many.add_argument("input", metavar="INPUT",
                      help="a folder (searched recursively), a quoted glob, or a CSV file "
                           "with a 'path' column")
    _common_options(many)
    many.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    many.add_argument("--scheduler", default="local",
                      help="local | processes | dask (a local Dask cluster of JOBS workers) | "
                           "dask://HOST:PORT (an existing Dask scheduler); default local")
    many.add_argument("--retry-failed", action="store_true",
                      help="convert again the files that failed in an earlier run")
    many.add_argument("-v", "--verbose", action="store_true",
                      help="print a summary line for every file")
    many.set_defaults(func=_cmd_batch)
    return parser


def _common_options(p: argparse.ArgumentParser) -> None:
    from .io import DEFAULT_MAX_PIXELS

    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--format", default="wfdb", type=_formats,
                   help="comma-separated output formats among wfdb, csv, npy (default wfdb)")
    p.add_argument("--fs", type=float, default=500.0, help="output sampling rate, Hz (500)")
    p.add_argument("--clean", action="store_true",
                   help="remove baseline wander (0.5 Hz high-pass) from the output")
    p.add_argument("--notch", type=float, default=None, metavar="HZ",
                   help="notch out mains interference at HZ (50 or 60)")
    p.add_argument("--no-ink-fit", dest="fit_ink", action="store_false",
                   help="read each trace column by column only, without fitting a drawn line "
                        "to the ink (about 0.15 s faster per sheet, less exact QRS)")
    p.add_argument("--no-lead-fusion", dest="fuse_limb_leads", action="store_false",
                   help="keep every limb lead as read from its own panel, instead of the "
                        "least-squares fit of all simultaneous limb-lead readings")
    p.add_argument("--orientation", type=int, choices=(0, 90, 180, 270), default=None,
                   metavar="DEG", help="quarter turns present in the images, degrees "
                                       "counter-clockwise (0, 90, 180, 270; default: detected)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images larger than N pixels (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--timeout", type=_positive_seconds, default=None, metavar="S",
                   help="give up on a file after S seconds and report it as failed "
                        "(not enforced on Dask; default: no limit)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    p.add_argument("--digitizer", default=None, metavar="MODULE:FUNCTION", type=_digitizer,
                   help="use another digitize(image, fs=, config=) function, e.g. to compare "
                        "digitizers (default ecgdigitize.digitize)")


def _formats(text: str) -> tuple[str, ...]:
    from .convert import FORMATS

    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise argparse.ArgumentTypeError(f"unknown format {bad or text!r}; choose among "
                                         f"{', '.join(FORMATS)}")
    return fmts


def _positive_seconds(text: str) -> float:
    from .convert import check_timeout

    try:
        value = float(text)
        check_timeout(value)
    except (ValueError, ECGError) as exc:  # ConfigurationError is both
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}"
                                         ) from exc
    return value


def _digitizer(text: str) -> Any:
    import importlib

    module, _, name = text.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name or "digitize")
    except (ImportError, AttributeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot import {text!r}: {exc}") from exc
    if not callable(fn):
        raise argparse.ArgumentTypeError(f"{text!r} is not callable")
    return fn


def _config(args: argparse.Namespace) -> Any:
    """The DigitizeConfig of the options (None when the pipeline has no config module)."""
    try:
        from .config import DigitizeConfig
    except ImportError:  # pragma: no cover - config.py is part of the package
        return None
    return DigitizeConfig(fs=args.fs, remove_baseline=args.clean, notch_hz=args.notch,
                          max_pixels=args.max_pixels, fit_ink=args.fit_ink,
                          fuse_limb_leads=args.fuse_limb_leads, orientation=args.orientation)


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _err(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _cmd_digitize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .convert import convert_file

    t0 = time.perf_counter()
    config = _config(args)
    failed = 0
    for image in tqdm(args.images, disable=not _show_progress(args), unit="sheet", leave=False):
        res = convert_file(image, args.out, formats=args.format, fs=args.fs, config=config,
                           max_pixels=args.max_pixels, overlay=args.overlay,
                           digitize=args.digitizer, timeout_s=args.timeout)
        if res.status == "ok":
            tqdm.write(res.describe(), file=sys.stdout)
            for note in res.warnings if not args.quiet else ():
                _err(f"warning: {image}: {note}")
        else:
            failed += 1
            _err(f"error: {image}: {res.error_message}")
    n = len(args.images)
    _err(f"{n - failed} ok, {failed} failed, 0 skipped in {time.perf_counter() - t0:.0f} s")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import digitize_many, find_inputs

    paths = find_inputs(args.input, exclude=args.out)
    if not paths:
        _err(f"error: {args.input}: no sheet images found")
        return EXIT_USAGE
    logging.getLogger(__name__).info("%d sheet(s) to consider, output in %s", len(paths), args.out)

    def report(res: Any) -> None:
        if res.status == "failed":
            _err(f"error: {res.input}: {res.error_message}")
        elif args.verbose:
            _err(res.describe())

    summary = digitize_many(paths, args.out, formats=args.format, fs=args.fs,
                            config=_config(args), jobs=args.jobs, scheduler=args.scheduler,
                            retry_failed=args.retry_failed, progress=_show_progress(args),
                            max_pixels=args.max_pixels, digitize=args.digitizer,
                            timeout_s=args.timeout, on_result=report)
    _err(str(summary))
    if summary.interrupted:
        _err("re-run the same command to resume")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.n_failed or summary.n_failed_earlier else EXIT_OK
