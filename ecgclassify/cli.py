"""The ``ecgclassify`` command line: train, evaluate, predict, compare.

Examples (shell)::

    ecgclassify train data/ecg-images --model features-hgb --out model.ecgmodel
    ecgclassify evaluate model.ecgmodel held-out/ --report report/ --json
    ecgclassify predict model.ecgmodel sheet1.jpg sheet2.png
    ecgclassify compare data/ecg-images --models features-hgb,features-rf --folds 5 \\
        --protocol grouped --report results/

``DATA`` is a folder with one sub-folder of images per class (see
:func:`ecgclassify.datasets.load_image_folder`). Model names come from the
registry :data:`ecgclassify.base.MODEL_FACTORIES` (``features-hgb``,
``features-logreg``, ``features-rf``, and the CNNs when installed). Errors of
the project print one line ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecgdigitize.errors import ConfigurationError, ECGError

from .base import CLASS_NAMES, load_predictor, make_predictor

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ecgclassify`` (sub-commands train/evaluate/predict/compare).

    Returns
    -------
    argparse.ArgumentParser
        The sub-command name is stored in ``command``.

    Examples
    --------
    >>> args = build_parser().parse_args(["predict", "model.ecgmodel", "a.png", "--json"])
    >>> args.command, args.images, args.json
    ('predict', ['a.png'], True)
    """
    p = argparse.ArgumentParser(prog="ecgclassify",
                                description="Classify 12-lead ECG sheet images.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a folder of class sub-folders")
    t.add_argument("data", help="folder with one sub-folder of images per class")
    t.add_argument("--model", default="features-ensemble",
                   help="model name (default features-ensemble, the best feature model)")
    t.add_argument("--out", required=True, help="model file to write (.ecgmodel)")
    _common(t)

    e = sub.add_parser("evaluate", help="evaluate a saved model on a labelled folder")
    e.add_argument("model", help="saved model file")
    e.add_argument("data", help="folder with one sub-folder of images per class")
    e.add_argument("--report", help="folder for report.md, report.json, confusion_matrix.png")
    e.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    _common(e)

    pr = sub.add_parser("predict", help="classify sheet images with a saved model")
    pr.add_argument("model", help="saved model file")
    pr.add_argument("images", nargs="+", help="sheet images")
    pr.add_argument("--json", action="store_true", help="print one JSON object per line")

    x = sub.add_parser("export", help="convert a saved CNN model to TFLite (LiteRT) for "
                       "inference without TensorFlow")
    x.add_argument("model", help="saved CNN or 1-D CNN model file")
    x.add_argument("out", help="output: an .ecgmodel archive (load_predictor reads it), or a "
                   "bare .tflite flatbuffer")
    x.add_argument("--quantization", choices=("float32", "float16", "int8"), default="float16",
                   help="weights (default float16: half the size, same predictions on the "
                   "reference sheets)")
    x.add_argument("--representative", nargs="+", metavar="IMAGE",
                   help="sheets that calibrate int8 activations (50-200 are enough)")

    c = sub.add_parser("compare", help="cross-validate several models on the same folds")
    c.add_argument("data", help="folder with one sub-folder of images per class")
    c.add_argument("--models", default="features-ensemble,features-logreg,features-rf,features-hgb",
                   help="comma-separated model names")
    c.add_argument("--folds", type=int, default=5)
    c.add_argument("--protocol", choices=("grouped", "leaky"), default="grouped",
                   help="grouped (default, no duplicate crosses a split) or leaky (per file)")
    c.add_argument("--groups", choices=("content", "printed_id"), default="content",
                   help="grouping of the grouped protocol (printed_id needs --manifest)")
    c.add_argument("--manifest", help="reference manifest.csv (for --groups printed_id)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--report", help="folder for comparison.md/.json and confusion PNGs")
    c.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    _common(c)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="digitization cache (default $ECGDIGITIZE_CACHE or "
                   "~/.cache/ecgdigitize)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _model_kwargs(name: str, args: argparse.Namespace) -> dict[str, object]:
    kw: dict[str, object] = {}
    if name.startswith("features-") or name == "signal-cnn":  # models that digitize
        kw["verbose"] = not args.quiet
        if args.cache_dir:
            kw["cache_dir"] = args.cache_dir
    return kw


def _train(args: argparse.Namespace) -> int:
    from .datasets import load_image_folder

    ds = load_image_folder(args.data)
    model = make_predictor(args.model, **_model_kwargs(args.model, args))
    model.fit(list(ds.paths), ds.labels)
    out = model.save(args.out)
    print(f"trained {args.model} on {len(ds)} files ({ds.duplicates.n_distinct} distinct) "
          f"-> {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .datasets import load_image_folder
    from .evaluation import evaluate_predictions

    model = load_predictor(args.model)
    ds = load_image_folder(args.data)
    proba = model.predict_proba(list(ds.paths))
    classes = np.asarray(model.classes_)
    pred = classes[np.argmax(proba, axis=1)]
    labels = [int(c) for c in classes]
    report = evaluate_predictions(
        ds.labels, pred, proba, model=Path(args.model).name,
        protocol=f"evaluation on {args.data} (independent of training only if the folder is)",
        class_names=[CLASS_NAMES.get(c, str(c)) for c in labels], labels=labels)
    if args.report:
        report.save(args.report)
    print(report.to_json() if args.json else report.to_markdown())
    return 0


def _predict(args: argparse.Namespace) -> int:
    model = load_predictor(args.model)
    proba = model.predict_proba(list(args.images))
    classes = np.asarray(model.classes_)
    for path, row in zip(args.images, proba, strict=True):
        k = int(np.argmax(row))
        label = int(classes[k])
        name = CLASS_NAMES.get(label, str(label))
        if args.json:
            print(json.dumps({"path": path, "class": label, "name": name,
                              "probability": float(row[k])}))
        else:
            print(f"{path}\t{label}\t{name}\t{row[k]:.3f}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .tflite import export_tflite

    model = load_predictor(args.model)
    lite = export_tflite(model, args.out, quantization=args.quantization,
                         representative_images=args.representative)
    print(f"exported {args.model} -> {args.out} ({args.quantization}, "
          f"{len(lite.model_content_) / 1024:.0f} KiB of TFLite)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .datasets import load_image_folder
    from .evaluation import cross_validate_predictors

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise ConfigurationError("--models is empty")
    ds = load_image_folder(args.data, groups_by=args.groups, manifest=args.manifest)
    predictors = {n: make_predictor(n, **_model_kwargs(n, args)) for n in names}
    group_name = "content sha256" if args.groups == "content" else "printed ID"
    result = cross_validate_predictors(
        predictors, list(ds.paths), ds.labels, ds.groups, n_splits=args.folds,
        protocol=args.protocol, seed=args.seed, group_name=group_name,
        class_names=ds.class_names,
        leakage_groups=ds.content_hashes if args.protocol == "grouped" else None)
    if args.report:
        result.save(args.report)
    print(result.to_json() if args.json else result.to_markdown())
    return 0


_COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict,
             "export": _export, "compare": _compare}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ecgclassify`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 ok, 2 project error (printed as ``error: ...`` on
        stderr) or bad usage.

    Examples
    --------
    >>> main(["predict", "no/such/model.ecgmodel", "a.png"])  # prints "error: ..." on stderr
    2
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ECGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
