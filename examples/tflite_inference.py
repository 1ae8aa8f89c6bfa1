"""CNN inference with TensorFlow Lite (LiteRT): export, reload without TensorFlow, compare.

Trains a tiny MobileNetV2 :class:`~ecgclassify.cnn.CNNPredictor` on a few
rendered sheets (the set of :mod:`examples.compare_predictors`), exports it with
:func:`ecgclassify.tflite.export_tflite` (float32 weights, and float16), saves the LiteRT
predictor as one archive, reloads it with :func:`ecgclassify.load_predictor`
(only ``ai-edge-litert`` is needed for that part) and compares its
probabilities and latency with the Keras model. With ``--model FILE`` it only
loads that saved predictor and classifies the sheets. Writes
``tflite_inference.png`` to ``--out`` and ``tiny-cnn-lite.ecgmodel`` to ``--work``.

Run: ``python -m examples.tflite_inference [--out docs/img/examples]``
(about 1-2 min on a 2-core CPU: TensorFlow import and training; needs ``[cnn]``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, save_figure
from examples.compare_predictors import render_set


def latency_ms(predictor: Any, prepared: np.ndarray, repeat: int = 15) -> np.ndarray:
    """Wall time of one single-sheet ``predict_proba_prepared`` call, ms, ``repeat`` times."""
    out = []
    predictor.predict_proba_prepared(prepared[:1])  # warm-up
    for k in range(repeat):
        t0 = time.perf_counter()
        predictor.predict_proba_prepared(prepared[k % len(prepared)][None])
        out.append(1e3 * (time.perf_counter() - t0))
    return np.asarray(out)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", help="a saved predictor to run instead of training one")
    p.add_argument("--per-class", type=int, default=4, help="training sheets per class (4)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (10)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    from ecgclassify import CLASS_NAMES, load_predictor

    paths, labels = render_set(args.work / "compare" / "sheets", args.per_class)
    if args.model:
        lite = load_predictor(args.model)
        for path, proba in zip(paths, lite.predict_proba(paths), strict=True):
            k = int(np.argmax(proba))
            print(f"{path}: {CLASS_NAMES[int(lite.classes_[k])]} (p = {proba[k]:.2f})")
        return 0

    from ecgclassify.cnn import CNNPredictor
    from ecgclassify.tflite import export_tflite

    t0 = time.perf_counter()
    cnn = CNNPredictor(image_size=(96, 160), epochs=args.epochs, batch_size=8,
                       validation_fraction=0.0).fit(paths, labels)
    print(f"trained a tiny MobileNetV2 on {len(paths)} sheets in {time.perf_counter() - t0:.1f} s")
    saved = args.work / "tiny-cnn-lite.ecgmodel"
    export_tflite(cnn, saved)
    lite = load_predictor(saved)  # what a deployment does: no TensorFlow needed from here
    lite16 = export_tflite(cnn, quantization="float16")
    prepared = cnn.preprocess(paths)
    p_keras = cnn.predict_proba_prepared(prepared)
    p_lite, p_16 = lite.predict_proba(paths), lite16.predict_proba(paths)
    print(f"saved {saved} ({saved.stat().st_size // 1024} KB), reloaded as "
          f"{type(lite).__name__}")
    print("first sheet: Keras", p_keras[0].round(3), "TFLite", p_lite[0].round(3))
    print(f"max |p_keras - p_tflite| float32 {np.abs(p_keras - p_lite).max():.2e}, "
          f"float16 {np.abs(p_keras - p_16).max():.2e}")
    times = {"Keras": latency_ms(cnn, prepared), "TFLite float32": latency_ms(lite, prepared),
             "TFLite float16": latency_ms(lite16, prepared)}
    for name, t in times.items():
        print(f"{name:15s} one sheet: median {np.median(t):.1f} ms, "
              f"p95 {np.percentile(t, 95):.1f} ms (n={len(t)})")

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].scatter(p_keras[:, 1], p_lite[:, 1], label="float32", s=22)
    ax[0].scatter(p_keras[:, 1], p_16[:, 1], label="float16", s=22, marker="x")
    ax[0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax[0].set_xlabel(f"Keras p({CLASS_NAMES[int(cnn.classes_[1])]})")
    ax[0].set_ylabel("TFLite, same sheet")
    ax[0].legend(fontsize=8)
    ax[0].set_title("same probabilities from the exported model", fontsize=10)
    names = list(times)
    ax[1].bar(names, [np.median(times[n]) for n in names],
              yerr=[[0] * len(names), [np.percentile(times[n], 95) - np.median(times[n])
                                       for n in names]], capsize=4)
    ax[1].set_ylabel("ms per sheet (median, bar to p95)")
    ax[1].set_title("one prepared sheet per call (Keras: model.predict overhead included)",
                    fontsize=9)
    png = save_figure(fig, args.out / "tflite_inference.png")
    print(f"wrote {png} ({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
