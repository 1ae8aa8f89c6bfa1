"""Tests of ecgclassify.imagedata and ecgclassify.cnn (tiny drawn sheets, alpha 0.35, 2-4 epochs)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgclassify.imagedata import (
    LEAD_GRID_NAMES,
    Augmentation,
    find_grid_area,
    fit_to_size,
    prepare_batch,
    prepare_leads,
    prepare_sheet,
)
from ecgdigitize.errors import ConfigurationError, NotFittedError, WeightsUnavailableError

HAS_TF = importlib.util.find_spec("tensorflow") is not None and \
    importlib.util.find_spec("keras") is not None
needs_tf = pytest.mark.skipif(not HAS_TF, reason="TensorFlow/Keras not installed")
FRAME = (20, 30, 220, 150)  # x0, y0, x1, y1 of the drawn grid frame, px
PINK = (240, 130, 150)


def make_sheet(label: int, seed: int) -> np.ndarray:
    """A 180x240 'sheet': header text block, pink frame + dotted grid, 4 rows of black traces.

    Class 0 draws slow sine waves, class 1 sharp spikes: easy to learn.
    """
    rng = np.random.default_rng(seed)
    img = np.full((180, 240, 3), 255, np.uint8)
    img[5:15, 10:120] = 0  # "header text": must be cropped away
    img[160:170, 150:230] = 0  # "footer text"
    x0, y0, x1, y1 = FRAME
    img[y0:y1:6, x0:x1:2] = PINK
    img[[y0, y1 - 1], x0:x1] = PINK
    img[y0:y1, [x0, x1 - 1]] = PINK
    xs = np.arange(x0 + 2, x1 - 2)
    phase = rng.uniform(0, 2 * np.pi)
    for row in range(4):
        base = y0 + 15 + row * 30
        if label == 0:
            ys = base + 8 * np.sin(xs / rng.uniform(6, 9) + phase)
        else:
            ys = base - 12 * ((xs + int(phase * 5)) % rng.integers(18, 24) < 2)
        for dx in (0, 1):
            img[np.clip(ys.astype(int) + dx, 0, 179), xs] = 0
    return img


def make_sheets(n: int = 12, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    y = np.arange(n) % 2
    return [make_sheet(int(c), seed * 1000 + i) for i, c in enumerate(y)], y


# --- imagedata (no TensorFlow) -------------------------------------------------------
def test_find_grid_area_drops_header_and_footer() -> None:
    img = make_sheet(0, 1)
    x0, y0, x1, y1 = find_grid_area(img)
    assert abs(x0 - FRAME[0]) <= 1 and abs(y0 - FRAME[1]) <= 1
    assert abs(x1 - FRAME[2]) <= 1 and abs(y1 - FRAME[3]) <= 1
    crop = img[y0:y1, x0:x1]
    assert crop.shape[0] < img.shape[0] - 40  # header and footer rows gone


def test_find_grid_area_without_grid_colour_is_whole_image() -> None:
    img = np.full((100, 150, 3), 255, np.uint8)
    img[40:60, 10:140] = 0
    assert find_grid_area(img) == (0, 0, 150, 100)


@pytest.mark.shared
def test_find_grid_area_on_a_reference_sheet(reference_images_dir: Path) -> None:
    from ecgdigitize.io import load_image

    sheet = sorted(reference_images_dir.glob("Normal*/*.jpg"))[0]
    x0, y0, x1, y1 = find_grid_area(load_image(sheet))
    # the README puts the frame at x = 68-2176 px, y = 283-1517 px
    assert abs(x0 - 68) <= 3 and abs(x1 - 2177) <= 3
    assert abs(y0 - 283) <= 3 and abs(y1 - 1518) <= 3


def test_fit_to_size_keeps_aspect_and_pads_white() -> None:
    img = np.zeros((50, 200, 3), np.uint8)
    out = fit_to_size(img, (64, 128))
    assert out.shape == (64, 128, 3)
    # 200x50 -> 128x32: 16 white rows above and below
    assert (out[:15] == 255).all() and (out[-15:] == 255).all()
    assert (out[17:47] == 0).all()


def test_prepare_sheet_and_leads_shapes_and_cache(tmp_path: Path) -> None:
    from PIL import Image

    img = make_sheet(1, 3)
    path = tmp_path / "s.png"
    Image.fromarray(img).save(path)
    sheet = prepare_sheet(path, (48, 80))
    assert sheet.shape == (48, 80, 3) and sheet.dtype == np.uint8
    assert np.array_equal(sheet, prepare_sheet(img, (48, 80)))
    leads = prepare_leads(img, (32, 48))
    assert leads.shape == (len(LEAD_GRID_NAMES), 32, 48, 3)
    batch = prepare_batch([path, path], (48, 80))
    assert np.array_equal(batch[0], sheet) and np.array_equal(batch[1], sheet)
    from ecgclassify import imagedata

    cached = [k for k in imagedata._CACHE if k[0] == str(path.resolve())]
    assert len(cached) == 1  # decoded once, then served from the cache
    with pytest.raises(ConfigurationError):
        prepare_batch([img], (48, 80), input="pixels")
    with pytest.raises(ConfigurationError):
        prepare_sheet(img, (8, 80))


def test_digitizer_lead_source_falls_back_to_fixed_split() -> None:
    img = make_sheet(0, 4)  # too small and odd for the digitizer
    with pytest.warns(RuntimeWarning, match="fixed 3x4"):
        crops = prepare_leads(img, 32, lead_source="digitizer")
    np.testing.assert_array_equal(crops, prepare_leads(img, 32))
    with pytest.raises(ConfigurationError):
        prepare_leads(img, 32, lead_source="ocr")


def test_augmentation_defaults_and_paper() -> None:
    assert not Augmentation().horizontal_flip
    paper = Augmentation.paper()
    assert paper.horizontal_flip and paper.rotation_deg == 20.0 and paper.zoom == 0.2
    assert Augmentation(**paper.to_dict()) == paper


def test_import_does_not_load_tensorflow() -> None:
    code = ("import sys, ecgdigitize, ecgclassify, ecgclassify.cnn, ecgclassify.tflite, "
            "ecgclassify.imagedata; ecgclassify.load_predictor; "
            "sys.exit(int(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_unfitted_and_bad_params() -> None:
    from ecgclassify.cnn import CNNPredictor

    with pytest.raises(NotFittedError):
        CNNPredictor().predict_proba([make_sheet(0, 0)])
    with pytest.raises(ConfigurationError):
        CNNPredictor(backbone="resnet").fit([make_sheet(0, 0)] * 2, [0, 1])


# --- training (TensorFlow) -------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted() -> tuple[object, list[np.ndarray], np.ndarray]:
    if not HAS_TF:
        pytest.skip("TensorFlow/Keras not installed")
    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(16)
    clf = CNNPredictor(backbone="mobilenet_v2", alpha=0.35, image_size=(64, 96), epochs=4,
                       batch_size=8, learning_rate=3e-3, augmentation=None,
                       validation_fraction=0.0, bn_momentum=0.5, seed=0)
    return clf.fit(X, y), X, y


@pytest.mark.cnn
@needs_tf
def test_fit_loss_falls_and_predicts(fitted: tuple) -> None:
    clf, X, _ = fitted
    loss = clf.history_["loss"]
    assert len(loss) == 4 and loss[-1] < loss[0]
    assert len(clf.history_["epoch_time_s"]) == 4
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(clf.predict(X)) <= {0, 1}


@pytest.mark.cnn
@needs_tf
def test_plot_history(fitted: tuple) -> None:
    import matplotlib

    matplotlib.use("Agg")
    clf, _, _ = fitted
    ax = clf.plot_history()
    labels = sorted(line.get_label() for line in ax.get_lines())
    assert labels == ["accuracy", "loss"]  # no validation split in this fit
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), clf.history_["loss"])


@pytest.mark.cnn
@needs_tf
def test_save_load_identical_predictions(fitted: tuple, tmp_path: Path) -> None:
    from ecgclassify import load_predictor
    from ecgclassify.cnn import CNNPredictor

    clf, X, _ = fitted
    path = clf.save(tmp_path / "m.ecgmodel")
    back = load_predictor(path)
    assert isinstance(back, CNNPredictor)
    assert back.image_size_ == (64, 96) and back.augmentation is None
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.history_["loss"] == clf.history_["loss"]
    # weights only: Adam's moments would triple the file
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as outer, zipfile.ZipFile(io.BytesIO(outer.read("model.keras"))) as k, \
            h5py.File(io.BytesIO(k.read("model.weights.h5"))) as h5:
        assert "optimizer" not in h5
        assert k.getinfo("model.weights.h5").file_size < 1.3 * 4 * clf.model_.count_params()


@pytest.mark.cnn
@needs_tf
def test_resume_from_checkpoint(fitted: tuple, tmp_path: Path) -> None:
    from ecgclassify.cnn import CNNPredictor

    clf, X, y = fitted
    archive = clf.save(tmp_path / "m.ecgmodel")
    clf.model_.save(tmp_path / "ckpt.keras")
    expected = clf.predict_proba(X)
    for source in (archive, tmp_path / "ckpt.keras"):
        # zero further epochs: the resumed network is exactly the checkpoint
        resumed = CNNPredictor(**{**clf.get_params(), "epochs": 0}).fit(X, y, resume_from=source)
        np.testing.assert_allclose(resumed.predict_proba(X), expected, atol=1e-6)
    fresh = CNNPredictor(**{**clf.get_params(), "epochs": 0, "seed": 7}).fit(X, y)
    assert np.abs(fresh.predict_proba(X) - expected).max() > 1e-3


@pytest.mark.cnn
@needs_tf
def test_lead_input_is_aggregated_per_sheet_and_deterministic() -> None:
    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(8, seed=2)
    params = dict(input="leads", image_size=(32, 48), epochs=1, batch_size=32,
                  validation_fraction=0.25, patience=1, seed=3)
    a = CNNPredictor(**params).fit(X, y)
    b = CNNPredictor(**params).fit(X, y)
    pa = a.predict_proba(X)
    assert pa.shape == (8, 2)
    assert "val_loss" in a.history_  # grouped validation split was used
    np.testing.assert_array_equal(pa, b.predict_proba(X))


@pytest.mark.cnn
@needs_tf
def test_augmented_dataset_is_seeded_and_fills_white() -> None:
    from ecgclassify.imagedata import make_dataset

    imgs = np.zeros((4, 40, 60, 3), np.uint8)  # black images: anything white was filled in
    aug = Augmentation(rotation_deg=20, shift_fraction=0.2, shear=0.2, zoom=0.2)

    def epochs(seed: int) -> list[np.ndarray]:
        ds = make_dataset(imgs, np.zeros(4), batch_size=4, augmentation=aug, seed=seed)
        return [next(iter(ds))[0].numpy() for _ in range(2)]

    a, b = epochs(1), epochs(1)
    np.testing.assert_array_equal(a[0], b[0])  # same seed, same transforms
    assert not np.array_equal(a[0], a[1])  # a new transform every epoch
    assert a[0].shape == (4, 40, 60, 3) and a[0].max() == 255.0
    plain = next(iter(make_dataset(imgs, np.zeros(4), batch_size=4)))[0].numpy()
    assert plain.max() == 0.0


@pytest.mark.cnn
@needs_tf
def test_imagenet_offline_raises_clear_error(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import keras

    from ecgclassify.cnn import build_model

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("URL fetch failure: network is unreachable")

    # force the download path even where a cached file exists
    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="offline"):
        build_model("mobilenet_v2", (96, 96, 3), 4, alpha=0.35, weights="imagenet")


def test_grey_input_is_the_luma_in_three_channels() -> None:
    from ecgclassify.imagedata import grey_levels

    sheet = make_sheet(1, 4)
    rgb = prepare_batch([sheet], (64, 96))
    grey = prepare_batch([sheet], (64, 96), color="grey")
    assert grey.shape == rgb.shape and grey.dtype == np.uint8
    assert (grey == grey[..., :1]).all()  # one level, three channels
    # ITU-R 601: the pink grid (240, 130, 150) is a light grey, the black trace stays black
    np.testing.assert_array_equal(grey_levels(np.array(PINK, np.uint8)), 165)
    np.testing.assert_array_equal(grey[..., 0], grey_levels(rgb))
    leads = prepare_batch([sheet], (32, 48), input="leads", color="grey")
    assert leads.shape == (1, 16, 32, 48, 3) and (leads == leads[..., :1]).all()
    with pytest.raises(ConfigurationError, match="color"):
        prepare_batch([sheet], 32, color="gray")


def test_color_and_min_epochs_are_checked() -> None:
    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(4)
    with pytest.raises(ConfigurationError, match="color"):
        CNNPredictor(color="bw").fit(X, y)
    with pytest.raises(ConfigurationError, match="min_epochs"):
        CNNPredictor(min_epochs=-1).fit(X, y)


@pytest.mark.cnn
@needs_tf
def test_min_epochs_holds_off_early_stopping_but_keeps_the_best_epoch(
        tmp_path: Path) -> None:
    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(16, seed=3)
    # a learning rate this high makes the validation loss rise after the first epochs,
    # so patience 1 alone stops early
    params = dict(image_size=(48, 64), epochs=7, batch_size=8, learning_rate=0.05,
                  augmentation=None, validation_fraction=0.25, patience=1, seed=0)
    free = CNNPredictor(**params).fit(X, y)
    held = CNNPredictor(**params, min_epochs=6,
                        checkpoint_path=str(tmp_path / "best.keras")).fit(X, y)
    n_free, n_held = len(free.history_["loss"]), len(held.history_["loss"])
    assert n_free < 6 <= n_held
    # the same seed: the epochs both ran are the same epochs
    np.testing.assert_allclose(held.history_["val_loss"][:n_free], free.history_["val_loss"],
                               rtol=1e-4)
    # the best epoch came before min_epochs, and its weights (the checkpoint's) are restored
    assert int(np.argmin(held.history_["val_loss"])) < 5
    best = CNNPredictor(**{**params, "epochs": 0}).fit(X, y, resume_from=tmp_path / "best.keras")
    np.testing.assert_allclose(held.predict_proba(X), best.predict_proba(X), atol=1e-6)


@pytest.mark.cnn
@needs_tf
def test_grey_predictor_saves_its_colour(tmp_path: Path) -> None:
    from ecgclassify import load_predictor
    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(8, seed=6)
    clf = CNNPredictor(image_size=(48, 64), epochs=1, batch_size=8, augmentation=None,
                       validation_fraction=0.0, color="grey").fit(X, y)
    back = load_predictor(clf.save(tmp_path / "g.ecgmodel"))
    assert back.color == "grey"
    np.testing.assert_array_equal(back.preprocess(X[:2]), clf.preprocess(X[:2]))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
