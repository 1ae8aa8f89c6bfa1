"""Tests of ecgclassify.feature_predictor and ecgclassify.cache."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_features import gaussian_record

import ecgdigitize
from ecgclassify import feature_predictor as FP
from ecgclassify import load_predictor
from ecgclassify.base import available_models, make_predictor
from ecgclassify.cache import CachedFailure, DigitizationCache, content_hash
from ecgclassify.feature_predictor import DigitizationWarning, FeaturePredictor
from ecgdigitize.errors import (
    ConfigurationError,
    NotFittedError,
    NoTracesFoundError,
    UnsafeModelError,
)
from ecgdigitize.io import load_image
from ecgdigitize.record import ECGRecord


def _records(n: int, seed: int = 0) -> tuple[list[ECGRecord], np.ndarray]:
    """Class 0: regular ~60 bpm; class 1: irregular ~105 bpm."""
    rng = np.random.default_rng(seed)
    recs, y = [], []
    for i in range(n):
        label = i % 2
        hr = float(rng.uniform(55, 68) if label == 0 else rng.uniform(95, 115))
        recs.append(gaussian_record(hr, rr_jitter=0.15 * label, seed=seed * 1000 + i))
        y.append(label)
    return recs, np.asarray(y)


class FakeDigitizer:
    """Stands in for ecgdigitize.digitize: the first pixel codes heart rate and class."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: Any, fs: float = 500.0) -> ECGRecord:
        self.calls += 1
        px = load_image(image)[0, 0]
        if px[0] == 255:
            raise NoTracesFoundError("blank sheet", path=str(image))
        return gaussian_record(float(px[0]), rr_jitter=0.15 * int(px[1]), seed=int(px[2]))


def write_sheets(folder: Path, n_per_class: int = 8) -> list[tuple[Path, int]]:
    """Tiny PNG 'sheets' for FakeDigitizer, in class folders c0/ and c1/."""
    out = []
    for label, hrs in ((0, np.linspace(55, 68, n_per_class)), (1, np.linspace(95, 115, n_per_class))):
        for i, hr in enumerate(hrs):
            path = folder / f"c{label}" / f"s{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((70, 70, 3), (round(hr), label, i), np.uint8)).save(path)
            out.append((path, label))
    return out


@pytest.fixture
def fake_digitizer(monkeypatch: pytest.MonkeyPatch) -> FakeDigitizer:
    fake = FakeDigitizer()
    monkeypatch.setattr(ecgdigitize, "digitize", fake, raising=False)
    return fake


@pytest.mark.parametrize("model", ["logreg", "rf", "hgb", "ensemble"])
def test_fit_predict_on_records_generalizes(model: str) -> None:
    X, y = _records(60 if model == "hgb" else 24)
    Xt, yt = _records(16, seed=5)
    clf = FeaturePredictor(model=model, verbose=False, use_cache=False).fit(X, y)
    assert clf.classes_.tolist() == [0, 1]
    proba = clf.predict_proba(Xt)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(clf.predict(Xt) == yt) >= 0.9


def test_save_load_roundtrip_is_safe_and_exact(tmp_path: Path) -> None:
    X, y = _records(16)
    clf = FeaturePredictor(model="rf", verbose=False, model_params={"n_estimators": 20}).fit(X, y)
    path = clf.save(tmp_path / "m.ecgmodel")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "pipeline.skops"]
    loaded = load_predictor(path)
    assert isinstance(loaded, FeaturePredictor) and loaded.model == "rf"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params()["model_params"] == {"n_estimators": 20}


def test_untrusted_skops_payload_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = _records(8)
    clf = FeaturePredictor(model="logreg", verbose=False).fit(X, y)
    path = clf.save(tmp_path / "m.ecgmodel")
    evil = make_pipeline(FunctionTransformer(np.exp), clf.pipeline_.named_steps["model"])
    sio.dump(evil, tmp_path / "pipeline.skops")
    with zipfile.ZipFile(path, "a") as zf:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate member name: the later one wins
            zf.write(tmp_path / "pipeline.skops", "pipeline.skops")
    with pytest.raises(UnsafeModelError, match=r"numpy\.exp"):
        load_predictor(path)


def test_images_go_through_the_cache(tmp_path: Path, fake_digitizer: FakeDigitizer) -> None:
    sheets = write_sheets(tmp_path / "data", 6)
    paths = [str(p) for p, _ in sheets]
    y = [lab for _, lab in sheets]
    cache_dir = tmp_path / "cache"
    clf = FeaturePredictor(model="logreg", cache_dir=str(cache_dir), verbose=False).fit(paths, y)
    assert fake_digitizer.calls == 12
    assert np.mean(clf.predict(paths) == np.asarray(y)) == 1.0
    assert fake_digitizer.calls == 12  # features memoised in-process
    FP._FEATURE_MEMO.clear()
    FeaturePredictor(model="logreg", cache_dir=str(cache_dir), verbose=False).features(paths)
    assert fake_digitizer.calls == 12  # read back from disk
    assert len(list(cache_dir.glob("*.npz"))) == 12
    cache = DigitizationCache(cache_dir, digitize_kwargs={"fs": 500})
    rec = cache.get(cache.key(content_hash(paths[0])))
    assert isinstance(rec, ECGRecord) and rec.fs == 500 and rec.n_leads == 12


def test_failed_sheet_gives_nan_row_and_warning(tmp_path: Path,
                                                fake_digitizer: FakeDigitizer) -> None:
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((70, 70, 3), 255, np.uint8)).save(blank)
    clf = FeaturePredictor(model="logreg", cache_dir=str(tmp_path / "c"), verbose=False)
    with pytest.warns(DigitizationWarning, match="blank sheet"):
        row = clf.features([str(blank)])
    assert row.shape == (1, 459) and np.isnan(row).all()
    FP._FEATURE_MEMO.clear()
    with pytest.warns(DigitizationWarning, match="cached"):
        clf.features([str(blank)])
    assert fake_digitizer.calls == 1
    cache = DigitizationCache(tmp_path / "c", digitize_kwargs={"fs": 500})
    assert isinstance(cache.get(cache.key(content_hash(blank))), CachedFailure)
    X, y = _records(8)
    fitted = FeaturePredictor(model="logreg", cache_dir=str(tmp_path / "c"), verbose=False)
    fitted.fit(X, y)
    with pytest.warns(DigitizationWarning):
        assert fitted.predict_proba([str(blank)]).shape == (1, 2)


def test_feature_sets() -> None:
    X, y = _records(12)
    lin = FeaturePredictor(model="logreg", verbose=False).fit(X, y)
    assert len(lin.feature_names_) == 39 and "V2_st60_mv" not in set(lin.feature_names_)
    trees = FeaturePredictor(model="rf", verbose=False, model_params={"n_estimators": 10})
    names = set(trees.fit(X, y).feature_names_)
    assert len(names) == 39 + 7 * 12 and "V2_st60_mv" in names and "V2_beat_+0ms" not in names
    full = FeaturePredictor(model="logreg", feature_set="all", verbose=False).fit(X, y)
    assert len(full.feature_names_) == 459 and full.feature_names_[-1] == "V6_beat_+460ms"
    assert full.predict_proba(X).shape == lin.predict_proba(X).shape == (12, 2)
    with pytest.raises(ConfigurationError, match="feature_set"):
        FeaturePredictor(feature_set="some", verbose=False).fit(X, y)
    with pytest.raises(ConfigurationError, match="ensemble needs"):
        FeaturePredictor(model="ensemble", feature_set="summary", verbose=False).fit(X, y)


def test_ensemble_members_and_roundtrip(tmp_path: Path) -> None:
    X, y = _records(12)  # fewer sheets than PCA components: the PCA shrinks to 11
    clf = FeaturePredictor(model="ensemble", verbose=False, use_cache=False).fit(X, y)
    vote = clf.pipeline_.named_steps["model"]
    assert [n for n, _ in vote.estimators] == ["logreg", "rf", "shape"]
    pca = vote.named_estimators_["shape"].named_steps["select"].named_transformers_[
        "templates"].named_steps["pca"]
    assert pca.n_components_ == 11 and pca.n_features_in_ == 12 * 28
    proba = clf.predict_proba(X)
    members = np.mean([m.predict_proba(clf.features(X)) for m in vote.estimators_], axis=0)
    np.testing.assert_allclose(proba, members)  # an equal-weight soft vote
    loaded = load_predictor(clf.save(tmp_path / "e.ecgmodel"))
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=0, atol=1e-12)


def test_errors() -> None:
    X, y = _records(4)
    with pytest.raises(NotFittedError):
        FeaturePredictor().predict(X)
    with pytest.raises(ConfigurationError, match="model must be"):
        FeaturePredictor(model="svm", verbose=False).fit(X, y)
    with pytest.raises(ConfigurationError, match="labels"):
        FeaturePredictor(verbose=False).fit(X, y[:2])
    with pytest.raises(ConfigurationError, match="two classes"):
        FeaturePredictor(verbose=False).fit(X, [0] * 4)
    with pytest.raises(ConfigurationError, match="sequence"):
        FeaturePredictor(verbose=False).features(X[0])  # type: ignore[arg-type]


def test_model_registry() -> None:
    assert {"features-hgb", "features-logreg", "features-rf"} <= set(available_models())
    est = make_predictor("features-rf", verbose=False)
    assert isinstance(est, FeaturePredictor) and est.model == "rf" and not est.verbose
    with pytest.raises(ConfigurationError, match="known models"):
        make_predictor("no-such-model")


def test_cache_keys_and_corrupt_entries(tmp_path: Path) -> None:
    a = DigitizationCache(tmp_path, version="1", digitize_kwargs={"fs": 500})
    b = DigitizationCache(tmp_path, version="2", digitize_kwargs={"fs": 500})
    c = DigitizationCache(tmp_path, version="1", digitize_kwargs={"fs": 250})
    h = content_hash(b"sheet")
    assert len({a.key(h), b.key(h), c.key(h)}) == 3
    rec = gaussian_record(70)
    a.put(a.key(h), rec)
    back = a.get(a.key(h))
    assert isinstance(back, ECGRecord) and back.lead_names == rec.lead_names
    np.testing.assert_allclose(back.signal, rec.signal, atol=1e-5)  # float32 storage
    assert np.isnan(back.signal).sum() == np.isnan(rec.signal).sum()
    (tmp_path / f"{a.key(h)}.npz").write_bytes(b"garbage")
    assert a.get(a.key(h)) is None
    a.put("no-fs", rec)
    meta = tmp_path / "no-fs.json"
    meta.write_text(meta.read_text().replace('"fs"', '"fs_hz"'))  # an entry of another version
    assert a.get("no-fs") is None  # used to raise KeyError
    a.put_features("k", "1", {"x": 1.5, "y": float("nan")})
    got = a.get_features("k", "1")
    assert got is not None and got["x"] == 1.5 and np.isnan(got["y"])
    assert a.get_features("k", "2") is None


def test_default_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ecgclassify.cache import default_cache_dir

    monkeypatch.setenv("ECGDIGITIZE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("ECGDIGITIZE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "ecgdigitize"


def test_records_with_same_samples_but_other_lead_names_are_not_confused() -> None:
    sig = gaussian_record(layout="full").lead("II")[:, None]
    as_ii, as_v5 = ECGRecord(sig, 500, ("II",)), ECGRecord(sig, 500, ("V5",))
    fp = FeaturePredictor(verbose=False, use_cache=False)
    f_ii, f_v5 = fp.features([as_ii])[0], fp.features([as_v5])[0]
    names = FP.feature_names()
    r_ii, r_v5 = names.index("II_r_amp_mv"), names.index("V5_r_amp_mv")
    assert f_ii[r_ii] == pytest.approx(1.0, abs=0.1) and np.isnan(f_ii[r_v5])
    assert f_v5[r_v5] == pytest.approx(1.0, abs=0.1) and np.isnan(f_v5[r_ii])
