"""The one-table summary of the CNN study (``benchmarks.cnn_summary``), on made-up records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.cnn_summary import cpu_inference, summary


def _fold(model: str, k: int, f1: float, acc: float, protocol: str = "grouped") -> dict:
    return {"model": model, "protocol": protocol, "fold": k, "n_splits": 5,
            "train_time_s": 100.0 * (k + 1), "infer_images_per_s": 12.0 + k,
            "report": {"accuracy": acc, "macro_precision": acc, "macro_recall": acc,
                       "macro_f1": f1, "error_rate": 1 - acc}}


def _bench(cases: dict[str, float]) -> dict:
    return {"by_case": {c: {"images_per_s": {"median": v}} for c, v in cases.items()}}


def _features(f1: list[float]) -> dict:
    folds = [{"accuracy": v, "macro_precision": v, "macro_recall": v, "macro_f1": v,
              "error_rate": 1 - v} for v in f1]
    grouped = {"n_splits": len(f1),
               "summary": {"features-a": {"macro_f1": {"mean": float(np.mean(f1)),
                                                       "sd": float(np.std(f1, ddof=1))}},
                           "features-b": {"macro_f1": {"mean": 0.1, "sd": 0.0}}},
               "folds": {"features-a": folds, "features-b": folds},
               "fit_time_s": {"features-a": [3.0, 5.0], "features-b": [1.0]}}
    return {"results": {"grouped": grouped}}


def test_the_table_reads_every_source(tmp_path: Path) -> None:
    res = tmp_path / "results"
    res.mkdir()
    cpu = [_fold("mobilenet_v2", k, f1, 0.6) for k, f1 in enumerate([0.5, 0.6, 0.7])]
    cpu += [_fold("mobilenet_v2-leads", 0, 0.4, 0.5)]
    gpu = [_fold("efficientnet_v2_b0-hi-augment-long-gpu", k, f1, 0.9)
           for k, f1 in ((2, 0.8), (1, 0.9))]
    (res / "cnn_compare.json").write_text(json.dumps({"runs": cpu}))
    (res / "cnn_compare_gpu.json").write_text(json.dumps({"runs": gpu}))
    (res / "bench_cnn_320x544.json").write_text(json.dumps(_bench(
        {"efficientnet_v2_b0 keras infer": 22.2, "efficientnet_v2_b0 tflite float32 infer": 30.5,
         "efficientnet_v2_b0 train": 9.5})))
    (res / "cnn_sizes.json").write_text(json.dumps({"sizes": {"efficientnet_v2_b0": {
        "keras": 24_600_000, "tflite_float32": 23_300_000, "tflite_float16": 11_700_000,
        "tflite_int8": 7_000_000}}}))
    feats = tmp_path / "feature_models.json"
    feats.write_text(json.dumps(_features([0.85, 0.9, 0.95])))

    lines = summary(res, feats).strip().splitlines()
    assert len(lines) == 2 + 3 + 1  # header, rule, three CNN configs, the features
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    mobile, leads, effnet, feat = lines[2:]
    # mean ± sample SD over the folds
    assert "| 3 of 5 | 0.600 ± 0.000 |" in mobile and "| 0.600 ± 0.100 |" in mobile
    assert "| 200 |" in mobile  # mean train time
    # no benchmark of lead crops: the CV's own timing; no sizes measured: dashes
    assert "| 12 / - |" in leads and "| - / - / - / - |" in leads
    # the GPU config: benchmarked speed at its input size, and its sizes
    assert "| 2 of 5 |" in effnet and "| 0.850 ± 0.071 |" in effnet
    assert "| 22 / 30 | 24.6 / 23.3 / 11.7 / 7.0 |" in effnet
    assert feat.startswith("| features-a (best feature model)")
    assert "| 0.900 ± 0.050 |" in feat and "| 4 (+ digitization" in feat


def test_cpu_inference_speeds_by_network_and_size() -> None:
    speed = cpu_inference({
        "bench_cnn": _bench({"mobilenet_v2 keras infer": 19.0, "mobilenet_v2 train": 32.0}),
        "bench_cnn_inference": _bench({"reference keras infer": 36.0,
                                       "reference tflite float32 infer": 385.0}),
        "bench_cnn_320x544": None})
    # the round-robin inference run overrides the first one's Keras time
    assert speed == {("mobilenet_v2_0.35", (160, 272)): {"keras": 36.0,
                                                         "tflite_float32": 385.0}}
    # the 1-D CNN's benchmark names its shipped model "reference" too: not a MobileNetV2
    speed = cpu_inference({"bench_cnn_signal": _bench({"reference keras infer": 250.0,
                                                       "reference tflite float16 infer": 900.0})})
    assert speed == {("resnet1d_32", (1000, 12)): {"keras": 250.0, "tflite_float16": 900.0}}


def test_configs_sharing_a_network_keep_their_own_cv_speed(tmp_path: Path) -> None:
    res = tmp_path / "results"
    res.mkdir()
    grouped = [dict(_fold("signal_resnet1d", k, 0.9, 0.9), infer_images_per_s=300.0)
               for k in range(2)]
    leaky = [dict(_fold("signal_resnet1d-leaky", k, 0.97, 0.97, "leaky"),
                  infer_images_per_s=370.0) for k in range(2)]
    (res / "cnn_compare.json").write_text(json.dumps({"runs": grouped + leaky}))
    lines = summary(res, tmp_path / "none.json").strip().splitlines()
    g, lk = lines[2:]
    assert "1-D ResNet" in g and "| grouped |" in g and "| 300 / - |" in g
    assert "| leaky |" in lk and "| 370 / - |" in lk
