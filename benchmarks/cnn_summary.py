"""One table of every CNN measured on the reference sheets, next to the best feature model.

The CNN study ran in pieces: the 2-core CPU study (``benchmarks.compare_cnn``,
``cnn_compare.json``), three sessions on lent GPUs (``benchmarks.gpu_cnn_study``,
``cnn_compare_gpu.json``), the speed benchmarks (``bench_cnn*.json``) and the
feature study (``docs/results/feature_models.json``). This script reads them all
and writes the one table the comparison needs: accuracy, macro precision,
recall and F1, error rate, where and how long each fold trained, inference
speed on this CPU (Keras and LiteRT) and the model's size (``.keras`` and the
three TFLite exports), per network and input. It trains nothing.

Sizes come from ``benchmarks/results/cnn_sizes.json``, written by
``--measure-sizes`` (untrained networks with 4 classes, saved as predictors save
them: weights only; TFLite flatbuffers from :func:`ecgclassify.tflite.tflite_bytes`;
about a minute, needs TensorFlow). A network's size does not depend on its input
size (global pooling).

Run: ``python -m benchmarks.cnn_summary`` (instant) or
``python -m benchmarks.cnn_summary --measure-sizes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = RESULTS / "cnn_sizes.json"
DOC = ROOT / "docs" / "results" / "cnn_summary.md"


@dataclass(frozen=True)
class Row:
    """One row: which records, and what they were."""

    source: str  #: "cpu" (cnn_compare.json) or "gpu" (cnn_compare_gpu.json)
    model: str  #: the model name in that file
    network: str  #: key of :data:`NETWORKS`
    input: str  #: "sheet HxW colour, augmentation" or "16 lead crops HxW"
    hw: tuple[int, int]  #: network input (px), to look up the CPU inference speed
    trained: str  #: where and how long


#: network key -> (label, backbone, alpha: MobileNetV2's width multiplier, or the 1-D
#: ResNet's width of :func:`ecgclassify.signal_cnn.build_signal_model`)
NETWORKS: dict[str, tuple[str, str, float]] = {
    "mobilenet_v2_0.35": ("MobileNetV2 α 0.35", "mobilenet_v2", 0.35),
    "mobilenet_v2_1.0": ("MobileNetV2 α 1.0", "mobilenet_v2", 1.0),
    "efficientnet_v2_b0": ("EfficientNetV2-B0", "efficientnet_v2_b0", 1.0),
    "resnet1d_32": ("1-D ResNet, width 32", "resnet1d", 32),
}
_S, _H, _L = (160, 272), (320, 544), (64, 112)
_SIG = (1000, 12)  #: 1-D input: 10 s at 100 Hz, 12 leads
_SIG_INPUT = "12 digitized leads, 10 s at 100 Hz (+ digitization ~1 s/sheet)"
#: The table's rows, grouped first, in the order a reader compares them.
ROWS: list[Row] = [
    Row("cpu", "mobilenet_v2", "mobilenet_v2_0.35", "sheet 160x272 RGB", _S, "CPU, ≤ 20 epochs"),
    Row("cpu", "mobilenet_v2-leads", "mobilenet_v2_0.35", "16 lead crops 64x112 RGB", _L,
        "CPU, ≤ 8 epochs"),
    Row("cpu", "efficientnet_v2_b0", "efficientnet_v2_b0", "sheet 160x272 RGB", _S,
        "CPU, ≤ 8 epochs"),
    Row("cpu", "efficientnet_v2_b0-leads", "efficientnet_v2_b0", "16 lead crops 64x112 RGB", _L,
        "CPU, ≤ 6 epochs"),
    Row("gpu", "efficientnet_v2_b0-gpu", "efficientnet_v2_b0", "sheet 160x272 RGB", _S,
        "H100, to convergence"),
    Row("gpu", "efficientnet_v2_b0-leads-gpu", "efficientnet_v2_b0", "16 lead crops 64x112 RGB",
        _L, "H100, cut at 7-9 epochs"),
    Row("gpu", "mobilenet_v2-hi-augment-gpu", "mobilenet_v2_1.0",
        "sheet 320x544 grey, augmented", _H, "H200, cut at ~60 epochs"),
    Row("gpu", "efficientnet_v2_b0-hi-augment-gpu", "efficientnet_v2_b0",
        "sheet 320x544 grey, augmented", _H, "H200, cut at ~60 epochs"),
    Row("cpu", "efficientnet_v2_b0-hi-augment", "efficientnet_v2_b0",
        "sheet 320x544 RGB, augmented", _H, "CPU, 60 epochs"),
    Row("cpu", "efficientnet_v2_b0-hi-augment-grey", "efficientnet_v2_b0",
        "sheet 320x544 grey, augmented", _H, "CPU, 90 epochs"),
    Row("gpu", "efficientnet_v2_b0-hi-augment-long-gpu", "efficientnet_v2_b0",
        "sheet 320x544 grey, augmented", _H, "H200, to convergence"),
    Row("cpu", "signal_resnet1d", "resnet1d_32", _SIG_INPUT, _SIG, "CPU, 60 epochs"),
    Row("cpu", "mobilenet_v2-leaky", "mobilenet_v2_0.35", "sheet 160x272 RGB", _S,
        "CPU, ≤ 20 epochs"),
    Row("cpu", "mobilenet_v2-paper", "mobilenet_v2_0.35",
        "sheet 160x272 RGB, paper's augmentation", _S, "CPU, ≤ 20 epochs"),
    Row("gpu", "efficientnet_v2_b0-hi-augment-leaky-gpu", "efficientnet_v2_b0",
        "sheet 320x544 grey, augmented", _H, "H200, cut at ~60 epochs"),
    Row("cpu", "signal_resnet1d-leaky", "resnet1d_32", _SIG_INPUT, _SIG, "CPU, 60 epochs"),
]


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def cpu_inference(bench: dict[str, Any]) -> dict[tuple[str, tuple[int, int]], dict[str, float]]:
    """Median sheets/s on this CPU by (network, input size): ``keras`` and ``tflite``.

    From the ``bench_cnn*.json`` records (batch 16, per-batch medians); the
    shipped reference model is MobileNetV2 α 0.35 at 160x272, and in
    ``bench_cnn_signal`` the shipped 1-D ResNet (width 32, 10 s at 100 Hz).
    """
    speed: dict[tuple[str, tuple[int, int]], dict[str, float]] = {}
    names = {"mobilenet_v2": "mobilenet_v2_0.35", "mobilenet_v2_1": "mobilenet_v2_1.0",
             "efficientnet_v2_b0": "efficientnet_v2_b0", "reference": "mobilenet_v2_0.35"}
    # the inference-only run timed Keras and LiteRT round-robin: it wins where it has a case
    for name in ("bench_cnn", "bench_cnn_320x544", "bench_cnn_inference", "bench_cnn_signal"):
        rec = bench.get(name)
        if not rec:
            continue
        hw = _H if "320x544" in name else _SIG if name == "bench_cnn_signal" else _S
        table_names = {"reference": "resnet1d_32"} if name == "bench_cnn_signal" else names
        for case, stats in rec["by_case"].items():
            parts = case.split()
            if parts[-1] != "infer" or parts[0] not in table_names:
                continue
            kind = "keras" if parts[1] == "keras" else f"tflite_{parts[2]}"
            speed.setdefault((table_names[parts[0]], hw), {})[kind] = float(
                stats["images_per_s"]["median"])
    return speed


def _ms(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}"


def row_text(row: Row, runs: list[dict[str, Any]], sizes: dict[str, Any],
             speed: dict[tuple[str, tuple[int, int]], dict[str, float]],
             cv_speed: dict[Any, float]) -> str:
    """The Markdown row of one config from its fold records (``compare_cnn`` format).

    The Keras speed is the benchmark's for that network and input size, else (lead
    crops; the 1-D network without ``bench_cnn_signal``) the CPU study's own timing inside
    its CV (``cv_speed``: that config's own, keyed by its model name, else any CPU config
    of the same network and input, keyed by ``(network, hw)``).
    """
    reps = [r["report"] for r in runs]
    n_splits = runs[0]["n_splits"]
    sz = sizes.get(row.network, {})
    sp = speed.get((row.network, row.hw), {})
    keras = sp.get("keras", cv_speed.get(row.model, cv_speed.get((row.network, row.hw))))
    lite = sp.get("tflite_float32")
    return (f"| {NETWORKS[row.network][0]} | {row.input} | {runs[0]['protocol']} | "
            f"{len(runs)} of {n_splits} | "
            + " | ".join(_ms([x[k] for x in reps]) for k in
                         ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                          "error_rate"))
            + f" | {row.trained} | {np.mean([r['train_time_s'] for r in runs]):.0f} | "
            f"{'-' if keras is None else f'{keras:.0f}'} / {'-' if lite is None else f'{lite:.0f}'} | "
            f"{_mb(sz.get('keras'))} / {_mb(sz.get('tflite_float32'))} / "
            f"{_mb(sz.get('tflite_float16'))} / {_mb(sz.get('tflite_int8'))} |")


def feature_text(features: dict[str, Any] | None) -> str | None:
    """The best grouped feature model's row (:func:`benchmarks.compare_cnn.feature_cells`)."""
    if features is None:
        return None
    from benchmarks.compare_cnn import feature_cells

    best, cells, fit_s, n = feature_cells(features)
    return (f"| {best} (best feature model) | 12 digitized leads, NeuroKit2 features | grouped | "
            f"{n} | " + " | ".join(cells)
            + f" | CPU | {fit_s:.0f} (+ digitization ~1 s/sheet, cached) | - | - |")


HEADER = ("| network | input | protocol | folds | accuracy | macro precision | macro recall "
          "| macro-F1 | error rate | trained on | train time / fold (s) "
          "| CPU inference, Keras / TFLite float32 (sheets/s) "
          "| size: .keras / TFLite float32 / float16 / int8 (MB) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def summary(results: Path = RESULTS,
            features_path: Path = ROOT / "docs" / "results" / "feature_models.json") -> str:
    """The Markdown table (rows whose records are missing are left out)."""
    by_source: dict[str, dict[str, list[dict[str, Any]]]] = {"cpu": {}, "gpu": {}}
    for source, name in (("cpu", "cnn_compare.json"), ("gpu", "cnn_compare_gpu.json")):
        for r in (_load(results / name) or {"runs": []})["runs"]:
            by_source[source].setdefault(r["model"], []).append(r)
    bench = {n: _load(results / f"{n}.json")
             for n in ("bench_cnn", "bench_cnn_320x544", "bench_cnn_inference",
                       "bench_cnn_signal")}
    speed = cpu_inference(bench)
    sizes = (_load(results / SIZES.name) or {}).get("sizes", {})
    own = {row.model: float(np.median([r["infer_images_per_s"]
                                       for r in by_source["cpu"][row.model]]))
           for row in ROWS if row.source == "cpu" and row.model in by_source["cpu"]}
    cv_speed: dict[Any, float] = {(row.network, row.hw): own[row.model]
                                  for row in ROWS if row.model in own}
    cv_speed.update(own)
    lines = [HEADER]
    for row in ROWS:
        runs = by_source[row.source].get(row.model)
        if runs:
            lines.append(row_text(row, sorted(runs, key=lambda r: r["fold"]), sizes, speed,
                                  cv_speed))
    feat = feature_text(_load(features_path))
    if feat:
        lines.append(feat)
    return "\n".join(lines) + "\n"


def measure_sizes(out: Path = SIZES) -> dict[str, Any]:
    """Bytes of each network saved as predictors save it, and of its TFLite exports."""
    from benchmarks.bench_cnn import model_sizes
    from ecgclassify.cnn import build_model
    from ecgclassify.signal_cnn import build_signal_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, *_S, 3)).astype(np.float32)
    sizes: dict[str, Any] = {}
    for key, (_, backbone, alpha) in NETWORKS.items():
        if backbone == "resnet1d":
            model = build_signal_model(*_SIG, 4, width=int(alpha))
            sig = rng.normal(0.0, 0.3, (8, *_SIG)).astype(np.float32)  # mV-like
            sizes[key] = {"params": int(model.count_params()), **model_sizes(model, sig, _SIG)}
            print(key, sizes[key], flush=True)
            continue
        model = build_model(backbone, (*_S, 3), 4, alpha=alpha)
        sizes[key] = {"params": int(model.count_params()), **model_sizes(model, x, _S)}
        print(key, sizes[key], flush=True)
    rec = {"date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "command": "python -m benchmarks.cnn_summary --measure-sizes",
           "notes": "untrained, 4 classes, input 160x272 (sizes do not depend on it); "
                    ".keras weights only, as predictors save; int8 calibrated on 8 random images",
           "sizes": sizes}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1))
    return rec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure-sizes", action="store_true",
                    help="build each network and measure its file sizes first (needs TensorFlow)")
    args = ap.parse_args(argv)
    if args.measure_sizes:
        measure_sizes()
    table = summary()
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
