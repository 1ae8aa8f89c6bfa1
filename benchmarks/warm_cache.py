"""Fill the digitization + feature cache of the reference sheets with several processes.

The feature studies (:mod:`benchmarks.compare_features`,
:mod:`benchmarks.train_reference_features`) digitize every distinct reference
sheet once, in one process. After a change to the digitizer this warms the
cache with ``--jobs`` processes first (each takes every ``jobs``-th distinct
sheet), so the studies then only read it.

Run: ``python -m benchmarks.warm_cache [--jobs 2]`` from the repository root.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def warm(data: str, part: int, jobs: int, cache_dir: str | None) -> int:
    """Digitize and featurize the ``part``-th of ``jobs`` slices of the distinct sheets."""
    from ecgclassify.datasets import load_image_folder
    from ecgclassify.feature_predictor import FeaturePredictor

    ds = load_image_folder(data)
    first = {}
    for path, h in zip(ds.paths, ds.content_hashes, strict=True):
        first.setdefault(h, path)
    paths = sorted(first.values())[part::jobs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FeaturePredictor(cache_dir=cache_dir, verbose=part == 0).features(paths)
    return len(paths)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "ecg-images"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--part", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.part is not None:
        warm(args.data, args.part, args.jobs, args.cache_dir)
        return 0
    t0 = time.perf_counter()
    extra = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.warm_cache", "--data", args.data,
                               "--jobs", str(args.jobs), "--part", str(k), *extra], cwd=ROOT)
             for k in range(args.jobs)]
    codes = [proc.wait() for proc in procs]
    sys.stdout.write(f"cache warmed by {args.jobs} processes in {time.perf_counter() - t0:.0f} s; "
                     f"exit codes {codes}\n")
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
