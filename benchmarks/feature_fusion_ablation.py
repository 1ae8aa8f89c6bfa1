"""Does limb-lead fusion help the feature models? The ensemble with fusion on and off.

Digitizes every reference sheet twice through the digitization cache (with
``DigitizeConfig(fuse_limb_leads=True)``, the default, and with ``False``; about 8 min
of one core per arm when the cache is cold), then runs grouped 5-fold CV of
``FeaturePredictor(model="ensemble")`` for fold-assignment seeds 0-9 on each arm. The
seeds are paired (the same folds in both arms), so the per-seed difference is reported
with its mean, SD and t statistic. Writes ``benchmarks/results/feature_fusion_ablation.json``
and prints the table::

    nice -n 10 .venv/bin/python -m benchmarks.feature_fusion_ablation [--seeds 10] [--limit N]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine: no OpenMP oversubscription

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.compare_features import _limit
from benchmarks.runner import command_line, machine_info
from ecgclassify.datasets import ensure_reference_images, find_reference_archive, load_image_folder
from ecgclassify.evaluation import cross_validate_predictors
from ecgclassify.feature_predictor import FeaturePredictor
from ecgdigitize import DigitizeConfig

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "feature_fusion_ablation.json"


def seed_scores(ds: Any, fuse: bool, seeds: int, folds: int = 5) -> list[float]:
    """Grouped ``folds``-fold macro-F1 of the ensemble (mean over folds) for fold seeds 0..seeds-1."""
    # the default arm digitizes exactly as compare_features does (and shares its cache)
    kwargs = {} if fuse else {"config": DigitizeConfig(fuse_limb_leads=False)}
    FeaturePredictor(model="ensemble", digitize_kwargs=kwargs).features(list(ds.paths))
    out = []
    for seed in range(seeds):
        preds = {"ensemble": FeaturePredictor(model="ensemble", digitize_kwargs=kwargs,
                                              verbose=False)}
        res = cross_validate_predictors(preds, list(ds.paths), ds.labels, ds.content_hashes, folds,
                                        "grouped", seed, class_names=ds.class_names)
        out.append(float(np.mean([f["macro_f1"] for f in res.to_dict()["folds"]["ensemble"]])))
        print(f"fusion {'on ' if fuse else 'off'} seed {seed}: {out[-1]:.3f}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "ecg-images"))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--limit", type=int, default=0, help="use only the first N groups per class")
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args()
    t0 = time.perf_counter()
    data = ensure_reference_images(args.data)
    archive = find_reference_archive()
    ds = _limit(load_image_folder(data, manifest=archive.parent / "manifest.csv" if archive
                                  else None), args.limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on = seed_scores(ds, True, args.seeds, args.folds)
        off = seed_scores(ds, False, args.seeds, args.folds)
    diff = np.array(off) - np.array(on)
    sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    t_stat = float(diff.mean() / (sd / np.sqrt(diff.size))) if sd > 0 else 0.0
    print("| arm | mean ± SD over seeds | per seed |\n|---|---|---|")
    for name, v in (("fusion on (default)", on), ("fusion off", off)):
        print(f"| {name} | {np.mean(v):.3f} ± {np.std(v):.3f} | {' '.join(f'{x:.3f}' for x in v)} |")
    print(f"off - on: {diff.mean():+.4f} (SD {sd:.4f}, paired t {t_stat:.2f}, "
          f"{args.seeds} seeds); {(time.perf_counter() - t0) / 60:.1f} min")
    OUT.write_text(json.dumps({
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
        "command": command_line(), "fusion_on": on, "fusion_off": off,
        "difference_off_minus_on": {"mean": float(diff.mean()), "sd": sd,
                                    "paired_t": t_stat}}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
