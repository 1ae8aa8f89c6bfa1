"""CNN speed on this CPU: training and inference images/s, Keras vs TFLite (float32/float16/int8).

Per-batch wall times (median and p95) of

- a training step (MobileNetV2 alpha 0.35 and EfficientNetV2-B0, 160x272 px, batch 16),
- Keras inference (batch 16),
- LiteRT inference of the TFLite exports (batch 16),

plus the agreement of each TFLite export with Keras on the reference sheets
(identical predicted class, max |p_lite - p_keras|), using the shipped
reference model when it exists.

``--signal`` does the TFLite part for the shipped 1-D CNN on digitized leads
(``reference-signal-cnn.ecgmodel``; inputs digitized through the cache, which is
not timed) and saves the table as ``bench_cnn_signal``.

Usage (2-core CPU, no GPU)::

    nice -n 10 .venv/bin/python -m benchmarks.bench_cnn [--sheets 200] [--repeat 20]

At another input size (``--image-size 320 544``: the input of the best CNN of the GPU
study) the shipped model does not apply: the TFLite float32/float16 exports of each
backbone (untrained weights, which do not change the speed) are timed instead, and the
table is saved as ``bench_cnn_320x544``. ``--backbones efficientnet_v2_b0:1.0
mobilenet_v2:1.0`` picks the networks (name:alpha).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.runner import Table, timer
from ecgclassify import load_predictor
from ecgclassify.cnn import CNNPredictor, build_model
from ecgclassify.datasets import load_image_folder
from ecgclassify.signal_cnn import SignalCNNPredictor
from ecgclassify.tflite import _flat_inputs, export_tflite

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
REFERENCE = ROOT / "ecgclassify" / "models" / "reference-cnn.ecgmodel"
SIGNAL_REFERENCE = ROOT / "ecgclassify" / "models" / "reference-signal-cnn.ecgmodel"
BATCH = 16
HW = (160, 272)


def model_sizes(model: Any, x: np.ndarray, hw: tuple[int, int] = HW,
                quantizations: tuple[str, ...] = ("float32", "float16", "int8")
                ) -> dict[str, int]:
    """Bytes of the ``.keras`` file and of the float32/float16/int8 TFLite flatbuffers.

    ``x`` calibrates int8: images (n, h, w, 3), taken as uint8 pixels, or float signals.
    """
    import tempfile

    from ecgclassify.cnn import weights_only
    from ecgclassify.tflite import tflite_bytes

    with tempfile.TemporaryDirectory() as tmp:  # as predictors save: no optimizer state
        weights_only(model).save(Path(tmp) / "m.keras")
        sizes = {"keras": (Path(tmp) / "m.keras").stat().st_size}
    reps = x.astype(np.uint8) if x.ndim == 4 else x
    for q in quantizations:
        sizes[f"tflite_{q}"] = len(tflite_bytes(model, hw, q, reps))
    return sizes


def _lite_speed(table: Table, name: str, model: Any, x: np.ndarray, hw: tuple[int, int],
                repeat: int) -> None:
    """LiteRT inference time of the float32 and float16 exports of an untrained model."""
    from ecgclassify.tflite import TFLitePredictor, tflite_bytes

    for q in ("float32", "float16"):
        lite = TFLitePredictor(batch_size=BATCH)
        lite.model_content_ = tflite_bytes(model, hw, q, x.astype(np.uint8))
        lite._invoke(x)  # allocate and warm up
        for _ in range(repeat):
            with timer() as t:
                lite._invoke(x)
            table.add(f"{name} tflite {q} infer", batch_s=t.elapsed_s,
                      images_per_s=BATCH / t.elapsed_s)


#: Backbones timed by default: (name, alpha).
BACKBONES = (("mobilenet_v2", 0.35), ("efficientnet_v2_b0", 1.0))


def bench_training(table: Table, repeat: int, hw: tuple[int, int] = HW,
                   backbones: tuple[tuple[str, float], ...] = BACKBONES, *,
                   lite: bool = False) -> dict[str, Any]:
    """Per-batch training-step and Keras inference times of the backbones, model sizes.

    ``lite=True`` also times LiteRT inference of each backbone's float32 and float16
    exports (used where the shipped model does not match ``hw``).
    """
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (BATCH, *hw, 3)).astype(np.float32)
    y = rng.integers(0, 4, BATCH)
    sizes: dict[str, Any] = {}
    for backbone, alpha in backbones:
        # rows keep their old names; a MobileNetV2 of another width says which
        name = (f"{backbone}_{alpha:g}" if backbone == "mobilenet_v2" and alpha != 0.35
                else backbone)
        model = build_model(backbone, (*hw, 3), 4, alpha=alpha)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy")
        for _ in range(2):  # trace + warm up
            model.train_on_batch(x, y)
            model(x, training=False)
        for _ in range(repeat):
            with timer() as t:
                model.train_on_batch(x, y)
            table.add(f"{name} train", batch_s=t.elapsed_s, images_per_s=BATCH / t.elapsed_s)
        for _ in range(repeat):
            with timer() as t:
                model(x, training=False)
            table.add(f"{name} keras infer", batch_s=t.elapsed_s,
                      images_per_s=BATCH / t.elapsed_s)
        if lite:
            _lite_speed(table, name, model, x, hw, repeat)
        sizes[name] = {"params": int(model.count_params()),
                       **model_sizes(model, x, hw, ("float32", "float16") if lite
                                     else ("float32", "float16", "int8"))}
    return sizes


def _reference_model(ds: Any) -> CNNPredictor:
    if REFERENCE.is_file():
        model = load_predictor(REFERENCE)
        assert isinstance(model, CNNPredictor)
        return model
    idx = np.arange(0, len(ds), 4)  # quick stand-in when no shipped model exists
    return CNNPredictor(image_size=HW, epochs=3).fit([ds.paths[i] for i in idx],
                                                    ds.labels[idx])


def bench_tflite(table: Table, n_sheets: int, repeat: int, *, signal: bool = False
                 ) -> dict[str, Any]:
    """TFLite vs Keras inference speed and agreement on reference sheets.

    ``signal=True``: the shipped 1-D CNN (:data:`SIGNAL_REFERENCE`) instead of the image CNN.
    """
    import warnings

    ds = load_image_folder(DATA)
    _, first = np.unique(np.asarray(ds.content_hashes), return_index=True)
    pick = np.random.default_rng(0).permutation(first)[:n_sheets]
    paths = [ds.paths[i] for i in pick]
    if signal:
        model: Any = load_predictor(SIGNAL_REFERENCE)
        name = SIGNAL_REFERENCE.name
    else:
        model = _reference_model(ds)
        name = REFERENCE.name if REFERENCE.is_file() else "stand-in"
    with warnings.catch_warnings():  # a sheet that fails to digitize is already reported
        warnings.simplefilter("ignore")
        images = model.preprocess(paths)
    ref = model.predict_proba_prepared(images)
    flat = _flat_inputs(images, isinstance(model, SignalCNNPredictor)).astype(np.float32)
    batches = [flat[i:i + BATCH] for i in range(0, len(flat) - BATCH + 1, BATCH)]
    agreement: dict[str, Any] = {"model": name, "n_sheets": len(paths)}
    lites = {}
    for q in ("float32", "float16", "int8"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lite = export_tflite(model, quantization=q, representative_images=paths[:100])
        lite.batch_size = BATCH
        proba = lite.predict_proba_prepared(images)  # also warms the interpreter up
        agreement[q] = {"same_class_fraction": float((proba.argmax(1) == ref.argmax(1)).mean()),
                        "max_abs_proba_diff": float(np.abs(proba - ref).max()),
                        "size_bytes": len(lite.model_content_)}
        lites[q] = lite
    # round-robin, so load drift on a shared CPU hits every variant alike
    for i in range(repeat):
        batch = batches[i % len(batches)]
        with timer() as t:
            model.model_(batch, training=False)
        table.add("reference keras infer", batch_s=t.elapsed_s, images_per_s=BATCH / t.elapsed_s)
        for q, lite in lites.items():
            with timer() as t:
                lite._invoke(batch)
            table.add(f"reference tflite {q} infer", batch_s=t.elapsed_s,
                      images_per_s=BATCH / t.elapsed_s)
    return agreement


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sheets", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--signal", action="store_true",
                    help="only the TFLite part, for the shipped 1-D CNN on digitized leads")
    ap.add_argument("--image-size", type=int, nargs=2, default=list(HW), metavar=("H", "W"))
    ap.add_argument("--backbones", nargs="+", default=[f"{n}:{a:g}" for n, a in BACKBONES],
                    help="name:alpha of each network")
    args = ap.parse_args(argv)
    hw = (args.image_size[0], args.image_size[1])
    backbones = tuple((b.split(":")[0], float(b.split(":")[1]) if ":" in b else 1.0)
                      for b in args.backbones)
    other_size = hw != HW
    if args.signal:
        table = Table("bench_cnn_signal", notes=f"batch {BATCH}, 1-D CNN input 1000 samples x "
                      "12 leads (10 s at 100 Hz), float32; per-batch wall times")
        agreement: Any = bench_tflite(table, args.sheets, args.repeat, signal=True)
        table.notes += f"; TFLite agreement with Keras: {agreement}"
        table.print()
        print("agreement:", agreement)
        table.save()
        return
    name = ("bench_cnn_inference" if args.skip_training
            else f"bench_cnn_{hw[0]}x{hw[1]}" if other_size else "bench_cnn")
    table = Table(name, notes=f"batch {BATCH}, input {hw[0]}x{hw[1]} px, float32 "
                                     "input; per-batch wall times")
    sizes = ({} if args.skip_training
             else bench_training(table, args.repeat, hw, backbones, lite=other_size))
    agreement = ("not measured: the shipped model is 160x272" if other_size
                 else bench_tflite(table, args.sheets, args.repeat))
    table.notes += f"; TFLite agreement with Keras: {agreement}; model sizes (bytes): {sizes}"
    table.print()
    print("agreement:", agreement)
    print("sizes:", sizes)
    table.save()


if __name__ == "__main__":
    main()
