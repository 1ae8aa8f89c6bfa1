"""The GPU CNN study's host-side pieces: padding to one compiled shape, and the report.

The training itself needs Keras on a GPU machine (``benchmarks/gpu_cnn_study.py run``);
these parts run anywhere and decide what the published table says.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import gpu_cnn_study as study


@pytest.mark.parametrize(("n", "multiple"), [(10, 4), (8, 4), (1, 32), (33, 32)])
def test_pad_to_gives_whole_batches_and_keeps_every_item(n: int, multiple: int) -> None:
    idx = study._pad_to(n, multiple, np.random.default_rng(0))
    assert len(idx) % multiple == 0
    assert len(idx) - n < multiple
    np.testing.assert_array_equal(idx[:n], np.arange(n))
    assert idx.min() >= 0 and idx.max() < n


def _fold(k: int, epochs: int, cut: bool, test: list[int], proba: list[list[float]]) -> dict:
    hist = {"loss": [1.0] * epochs, "val_loss": [1.2] * epochs, "accuracy": [0.5] * epochs,
            "epoch_time_s": [60.0] + [0.2] * (epochs - 1), "best_epoch": [epochs - 1],
            "stopped_by_deadline": [float(cut)]}
    return {"fold": k, "n_train_contents": 10, "n_val_contents": 2, "train_time_s": 61.0,
            "train_images_per_s": 10.0, "history": hist, "infer_s": 0.1,
            "infer_images_per_s": 40.0, "test_index": test, "proba": proba,
            "n_test_contents_in_train": 0}


def test_report_scores_per_file_and_leaves_out_folds_cut_while_compiling(tmp_path, monkeypatch):
    arrays = tmp_path / "gpu"
    arrays.mkdir()
    labels = [0, 1, 2, 3, 0, 1, 2, 3]
    (arrays / "meta.json").write_text(json.dumps({
        "labels": labels, "class_names": ["mi", "abnormal", "normal", "history"]}))
    monkeypatch.setattr(study, "ARRAYS", arrays)
    monkeypatch.setattr(study, "RESULTS", tmp_path / "out.json")
    monkeypatch.setattr(study, "FIGURE", tmp_path / "curves.png")
    eye = np.eye(4).tolist()
    wrong = [eye[1], eye[1], eye[2], eye[3]]  # files 4-7: 3 of 4 right
    runs = {"runs": {"net-gpu": {
        "model": "net-gpu", "protocol": "grouped", "params": {}, "backend": "jax",
        "device": "test", "build_s": 1.0,
        "folds": [_fold(0, 1, True, [0, 1, 2, 3], eye),       # one epoch, cut: left out
                  _fold(1, 30, False, [4, 5, 6, 7], wrong)]}}}
    src = tmp_path / "gpu_results.json"
    src.write_text(json.dumps(runs))
    table = study.report([src])
    row = next(line for line in table.splitlines() if line.startswith("| net-gpu "))
    assert "| 1 of 5 |" in row
    assert "| 0.750 ± 0.000 |" in row  # accuracy of the kept fold alone
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["training"]["net-gpu"]["left_out"] == [0]
    assert [r["fold"] for r in out["runs"]] == [1]
    assert out["training"]["net-gpu"]["folds"][1]["median_epoch_s"] == pytest.approx(0.2)


def test_curves_figure_draws_the_kept_folds(tmp_path) -> None:
    merged = {"efficientnet_v2_b0-gpu": {"folds": [_fold(0, 1, True, [0], [[1, 0, 0, 0]]),
                                                   _fold(1, 30, False, [1], [[0, 1, 0, 0]])]}}
    out = study.plot_curves(merged, tmp_path / "c.png")
    assert out is not None and out.stat().st_size > 5000
    assert study.plot_curves({"other": merged["efficientnet_v2_b0-gpu"]}, tmp_path / "d.png") is None



def _image(h: int = 9, w: int = 9) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 200, (h, w, 3)).astype(np.uint8)


def test_warp_affine_identity_and_shift_in_px() -> None:
    img = _image(7, 11)
    same = study.warp_affine(np, img, 0.0, np.zeros(2), 0.0, 1.0, 255.0)
    np.testing.assert_array_equal(same, img)
    moved = study.warp_affine(np, img, 0.0, np.array([3.0, -2.0]), 0.0, 1.0, 255.0)
    np.testing.assert_array_equal(moved[:-2, 3:], img[2:, :-3])  # right 3 px, up 2 px
    assert (moved[:, :3] == 255).all() and (moved[-2:] == 255).all()


def test_warp_affine_quarter_turn_is_a_clockwise_rot90() -> None:
    img = _image()
    out = study.warp_affine(np, img, np.pi / 2, np.zeros(2), 0.0, 1.0, 255.0)
    np.testing.assert_allclose(out, np.rot90(img, k=-1), atol=1e-3)


def test_warp_affine_zoom_and_shear_sample_where_the_maths_says() -> None:
    img = np.zeros((9, 9, 1), np.float32)
    img[4, 6] = 100.0  # 2 px right of the centre
    zoomed = study.warp_affine(np, img, 0.0, np.zeros(2), 0.0, 2.0, 0.0)
    assert zoomed[4, 8, 0] == pytest.approx(100.0)  # 2 px -> 4 px from the centre
    assert zoomed[4, 4, 0] == 0.0
    half = study.warp_affine(np, img, 0.0, np.zeros(2), 0.0, 4.0 / 3.0, 0.0)
    # output 2 px from the centre samples 1.5 px, output 3 px samples 2.25 px: bilinear weights
    assert (half[4, 6, 0], half[4, 7, 0]) == (pytest.approx(50.0), pytest.approx(75.0))
    img = np.zeros((9, 9, 1), np.float32)
    img[6, 4] = 100.0  # 2 px below the centre
    sheared = study.warp_affine(np, img, 0.0, np.zeros(2), 0.5, 1.0, 0.0)
    assert sheared[6, 5, 0] == pytest.approx(100.0)  # x += 0.5 * y


class _StubModel:
    def __init__(self) -> None:
        self.stop_training = False
        self.weights = 0

    def get_weights(self) -> list[int]:
        return [self.weights]

    def set_weights(self, w: list[int]) -> None:
        self.weights = w[0]


@pytest.mark.parametrize(("min_epochs", "stops_after"), [(0, 5), (8, 8)])
def test_best_keeper_waits_for_min_epochs_and_restores_the_best(min_epochs: int,
                                                               stops_after: int) -> None:
    keras = pytest.importorskip("keras")
    import time

    keeper = study._BestKeeper(keras, patience=3, deadline=time.monotonic() + 60,
                               min_epochs=min_epochs)
    model = _StubModel()
    keeper.callback.set_model(model)
    losses = [1.0, 0.5, 0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6]  # best at epoch 2 (index 1)
    for epoch, loss in enumerate(losses):
        model.weights = epoch
        keeper.callback.on_epoch_begin(epoch)
        keeper.callback.on_epoch_end(epoch, {"val_loss": loss})
        if keeper.stopped:
            break
    assert epoch + 1 == stops_after and model.stop_training
    assert not keeper.hit_deadline
    keeper.restore(model)
    assert model.weights == 1 and keeper.best_epoch == 1


def test_best_keeper_halves_the_rate_after_lr_patience_epochs_without_progress() -> None:
    keras = pytest.importorskip("keras")
    import time

    keeper = study._BestKeeper(keras, patience=50, deadline=time.monotonic() + 60,
                               lr_patience=2, lr_factor=0.5, min_lr=0.2)
    model = _StubModel()
    keeper.callback.set_model(model)
    rate, rates = 1.0, []
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9]):
        keeper.callback.on_epoch_begin(epoch)
        keeper.callback.on_epoch_end(epoch, {"val_loss": loss})
        rate = keeper.next_learning_rate(rate)
        rates.append(rate)
    # best at epoch 1: cut after epoch 3 and again 2 epochs later; best at 6: cut after 8,
    # then held at min_lr
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]
    assert keeper.rates[:4] == [1.0, 1.0, 1.0, 1.0]
    off = study._BestKeeper(keras, patience=50, deadline=time.monotonic() + 60)
    off.callback.set_model(_StubModel())
    for epoch in range(5):
        off.callback.on_epoch_begin(epoch)
        off.callback.on_epoch_end(epoch, {"val_loss": 1.0})
        assert off.next_learning_rate(0.1) == 0.1


def test_merge_records_joins_the_folds_of_one_config_in_order(tmp_path) -> None:
    for k in (1, 0):
        rec = {"model": "a-gpu", "protocol": "grouped", "build_s": 1.0 + k,
               "warm_up_s": 50.0 - k, "folds": [_fold(k, 3, False, [k], [[1, 0, 0, 0]])]}
        (tmp_path / f"a-gpu.fold{k}.json").write_text(json.dumps(rec))
    (tmp_path / "b-gpu.json").write_text(json.dumps({"model": "b-gpu", "folds": []}))
    runs = study.merge_records(tmp_path, ["a-gpu", "b-gpu", "missing-gpu"])
    assert sorted(runs) == ["a-gpu", "b-gpu"]
    assert [f["fold"] for f in runs["a-gpu"]["folds"]] == [0, 1]
    assert runs["a-gpu"]["build_s"] == 2.0 and runs["a-gpu"]["warm_up_s"] == 50.0
    assert not list(tmp_path.iterdir())  # read and removed


def test_report_adds_tta_and_ensemble_rows(tmp_path, monkeypatch) -> None:
    arrays = tmp_path / "gpu"
    arrays.mkdir()
    labels = [0, 1, 2, 3]
    (arrays / "meta.json").write_text(json.dumps({
        "labels": labels, "class_names": ["mi", "abnormal", "normal", "history"]}))
    monkeypatch.setattr(study, "ARRAYS", arrays)
    monkeypatch.setattr(study, "RESULTS", tmp_path / "out.json")
    monkeypatch.setattr(study, "FIGURE", tmp_path / "curves.png")
    monkeypatch.setattr(study, "ENSEMBLES", {"pair-gpu": ["a-gpu", "b-gpu"]})
    eye = np.eye(4)
    # a: right on files 0-2, wrong on 3 (says 0.6 class 0); b: wrong on 0 (0.9 class 1)
    pa = eye.copy()
    pa[3] = [0.6, 0, 0, 0.4]
    pb = eye.copy()
    pb[0] = [0.1, 0.9, 0, 0]
    runs = {}
    for name, proba in (("a-gpu", pa), ("b-gpu", pb)):
        f = _fold(0, 30, False, labels, proba.tolist())
        f["proba_tta"] = eye.tolist()
        f["infer_tta_images_per_s"] = 5.0
        runs[name] = {"model": name, "protocol": "grouped", "params": {}, "backend": "jax",
                      "device": "test", "build_s": 1.0, "folds": [f]}
    src = tmp_path / "gpu_results.json"
    src.write_text(json.dumps({"runs": runs}))
    table = study.report([src])
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()
            if line.startswith("| ") and "-gpu" in line.split(" | ")[0]}
    assert set(rows) == {"a-gpu", "a-gpu+tta", "b-gpu", "b-gpu+tta", "pair-gpu", "pair-gpu+tta"}
    assert "| 0.750 ± 0.000 |" in rows["a-gpu"] and "| 0.750 ± 0.000 |" in rows["b-gpu"]
    # averaged: file 0 -> (1 + 0.1) / 2 = 0.55 class 0; file 3 -> 0.7 class 3: all right
    assert "| 1.000 ± 0.000 |" in rows["pair-gpu"]
    out = json.loads((tmp_path / "out.json").read_text())
    pair = next(r for r in out["runs"] if r["model"] == "pair-gpu")
    assert pair["train_time_s"] == pytest.approx(122.0)
    assert pair["infer_images_per_s"] == pytest.approx(20.0)  # two models of 40/s in turn
    assert next(r for r in out["runs"] if r["model"] == "a-gpu+tta")["infer_images_per_s"] == 5.0


def test_parse_job_reads_the_folds_and_refuses_unknown_names() -> None:
    name = "efficientnet_v2_b0-hi-augment-long-gpu"
    assert study.parse_job(name, 5) == (name, None)
    assert study.parse_job(f"{name}:0,4", 5) == (name, [0, 4])
    with pytest.raises(SystemExit, match="folds run from 0 to 4"):
        study.parse_job(f"{name}:5", 5)
    with pytest.raises(SystemExit, match="unknown config"):
        study.parse_job("no-such-gpu", 5)
    for spec in study.DEFAULT_RUN:  # the default run names real configs and folds
        study.parse_job(spec, 5)


def test_configs_that_differ_only_in_training_share_one_compiled_program() -> None:
    key = study._program_key
    assert key("efficientnet_v2_b0-hi-augment-long-gpu") == key(
        "efficientnet_v2_b0-hi-augment-plateau-gpu")  # seed, epochs, rate: not compiled in
    assert key("efficientnet_v2_b0-hi-augment-gpu") != key("efficientnet_v2_b0-hi-gpu")
    assert key("efficientnet_v2_b0-gpu") != key("efficientnet_v2_b0-hi-gpu")


def test_the_library_recipe_is_the_gpu_study_best_config() -> None:
    """``make_predictor("efficientnet_v2_b0-hi")`` trains what the GPU study measured."""
    from ecgclassify.base import make_predictor
    from ecgclassify.imagedata import Augmentation

    p = make_predictor("efficientnet_v2_b0-hi").get_params()
    protocol, gpu = study.GPU_CONFIGS["efficientnet_v2_b0-hi-augment-long-gpu"]
    assert protocol == "grouped" and gpu["images"] == "sheets_hi" and gpu["augment"]
    for key in ("backbone", "alpha", "input", "batch_size", "learning_rate", "epochs",
                "patience", "min_epochs"):
        assert p[key] == gpu[key], key
    assert tuple(p["image_size"]) == study.SHEET_HI_HW and p["color"] == "grey"
    assert p["augmentation"] == Augmentation()  # the ranges of the study's jitted warp
