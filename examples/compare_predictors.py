"""Train and compare predictors on a tiny rendered set, with grouped cross-validation.

Renders ``--per-class`` sheets of two kinds of simulated ECG — label 2
"normal" (60-75 bpm) and label 1 "abnormal heartbeat" (fast, 115-140 bpm) —
and cross-validates the three feature predictors (``features-logreg``,
``features-rf``, ``features-hgb``) on the same grouped folds with
:func:`ecgclassify.evaluation.cross_validate_predictors`; ``--cnn`` adds a
tiny MobileNetV2 (needs TensorFlow, minutes on a CPU). The set is far too
small and too easy for the numbers to mean anything clinically: it shows the
mechanics. The measured comparison on the reference sheets is in
``docs/benchmarks.md``. Writes ``compare_predictors.png`` to ``--out``, and
the sheets, the digitization cache and ``compare_predictors.md`` to ``--work``.

Run: ``python -m examples.compare_predictors [--per-class 8] [--cnn]`` (about 1 min; more with --cnn).
"""

from __future__ import annotations

import shutil
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, sample_sheet, save_figure

#: label -> range of simulated heart rates, bpm.
RATES = {2: (60.0, 75.0), 1: (115.0, 140.0)}


def render_set(folder, per_class: int) -> tuple[list[str], np.ndarray]:
    """Render ``per_class`` sheets per label into ``folder``; return paths and labels."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for label, (lo, hi) in RATES.items():
        for i, rate in enumerate(np.linspace(lo, hi, per_class)):
            path = folder / f"class{label}_{i:02d}.png"
            if not path.exists():
                sheet = sample_sheet(seed=1000 * label + i, dpi=100, heart_rate=float(rate))
                Image.fromarray(sheet.image).save(path)
            paths.append(str(path))
            labels.append(label)
    return paths, np.asarray(labels)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--per-class", type=int, default=8, help="sheets per class (8)")
    p.add_argument("--folds", type=int, default=4, help="cross-validation folds (4)")
    p.add_argument("--cnn", action="store_true", help="also a tiny MobileNetV2 (TensorFlow)")
    p.add_argument("--fresh", action="store_true", help="empty the digitization cache first")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    from ecgclassify.base import CLASS_NAMES, make_predictor
    from ecgclassify.evaluation import cross_validate_predictors

    t0 = time.perf_counter()
    paths, labels = render_set(args.work / "compare" / "sheets", args.per_class)
    print(f"rendered {len(paths)} sheets in {time.perf_counter() - t0:.1f} s")
    cache = str(args.work / "compare" / "cache")
    if args.fresh:
        shutil.rmtree(cache, ignore_errors=True)
    models = {name: make_predictor(name, cache_dir=cache, verbose=False)
              for name in ("features-logreg", "features-rf", "features-hgb")}
    if args.cnn:
        from ecgclassify.cnn import CNNPredictor

        models["mobilenet_v2"] = CNNPredictor(image_size=(96, 160), epochs=8, batch_size=8,
                                              validation_fraction=0.0)
    t0 = time.perf_counter()
    res = cross_validate_predictors(models, paths, labels, groups=paths, n_splits=args.folds,
                                    protocol="grouped", seed=0, group_name="sheet",
                                    class_names=[CLASS_NAMES[k] for k in sorted(RATES)])
    print(f"cross-validated {len(models)} models in {time.perf_counter() - t0:.1f} s")
    table = res.to_markdown()
    print(table)
    md = args.work / "compare_predictors.md"
    md.write_text(table, encoding="utf-8")

    summary = res.summary()
    names = list(summary)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, metric in enumerate(("accuracy", "macro_f1")):
        mean = [summary[n][metric][0] for n in names]
        sd = [summary[n][metric][1] for n in names]
        ax.bar(np.arange(len(names)) + 0.38 * k - 0.19, mean, 0.36, yerr=sd, capsize=3,
               label=metric.replace("_", "-"))
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance (2 classes)")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"mean ± SD over {args.folds} folds")
    ax.set_title(f"{len(paths)} rendered sheets, 2 classes, grouped {args.folds}-fold CV "
                 "(mechanics only)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    png = save_figure(fig, args.out / "compare_predictors.png")
    print(f"wrote {md} and {png} ({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
