"""Model files that would run code when loaded are refused by ``ecgclassify.load_predictor``.

Every crafted file carries a payload that creates a marker file when
deserialised unsafely; each test first proves the payload *is* dangerous
(loading it the careless way creates the marker), then that the project's
loader refuses it with ``UnsafeModelError``/``ModelFormatError`` and that the
marker never appears.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ecgclassify.base import FORMAT_NAME, FORMAT_VERSION, load_predictor
from ecgdigitize.errors import ECGError, ModelFormatError, UnsafeModelError


class _TouchOnUnpickle:
    """Unpickling this object creates ``marker`` (what a malicious model file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (Path(self.marker),))


class TouchOnSetState:
    """Restoring this object's state creates the marker (a skops ObjectNode attack)."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()


def _manifest(kind: str = "features", **payload: Any) -> str:
    return json.dumps({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind,
                       "class": "FeaturePredictor", "params": {}, "classes": [0, 1, 2, 3],
                       "payload": payload})


def _archive(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _refused(path: Path, marker: Path, error: type[ECGError] = ModelFormatError) -> ECGError:
    with pytest.raises(error) as info:
        load_predictor(path)
    assert not marker.exists(), "loading the model ran its payload"
    assert info.value.path is not None and Path(info.value.path).name
    return info.value


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def test_the_pickle_payload_is_really_dangerous(marker: Path) -> None:
    pickle.loads(pickle.dumps(_TouchOnUnpickle(marker)))  # the careless way
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_raw_pickle_file_is_refused_as_unsafe(tmp_path: Path, marker: Path,
                                              protocol: int) -> None:
    path = tmp_path / "model.zip"
    path.write_bytes(pickle.dumps(_TouchOnUnpickle(marker), protocol=protocol))
    err = _refused(path, marker, UnsafeModelError)
    assert "pickle" in err.reason


def test_text_protocol_pickle_is_refused(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps(_TouchOnUnpickle(marker), protocol=0))
    _refused(path, marker, ModelFormatError)


@pytest.mark.parametrize("member", ["payload.pkl", "model/Weights.PICKLE", "est.joblib"])
def test_archive_with_a_pickle_member_is_refused(tmp_path: Path, marker: Path,
                                                 member: str) -> None:
    path = _archive(tmp_path / "m.zip", {
        "manifest.json": _manifest(file=member),
        member: pickle.dumps(_TouchOnUnpickle(marker)),
    })
    err = _refused(path, marker, UnsafeModelError)
    assert member in err.reason


def test_archive_member_escaping_the_folder_is_refused(tmp_path: Path, marker: Path) -> None:
    path = _archive(tmp_path / "m.zip", {"manifest.json": _manifest(),
                                          "../escaped.txt": "x"})
    _refused(path, marker, UnsafeModelError)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_skops_payload_with_untrusted_types_is_refused(tmp_path: Path, marker: Path) -> None:
    sio = pytest.importorskip("skops.io")
    evil = TouchOnSetState()
    evil.__dict__["marker"] = str(marker)
    skops_file = tmp_path / "pipeline.skops"
    sio.dump({"model": evil}, skops_file)
    # the careless way runs the payload ...
    sio.load(skops_file, trusted=sio.get_untrusted_types(file=skops_file))
    assert marker.exists()
    marker.unlink()
    # ... the predictor loader does not.
    path = _archive(tmp_path / "m.zip", {"manifest.json": _manifest(file="pipeline.skops"),
                                          "pipeline.skops": skops_file.read_bytes()})
    err = _refused(path, marker, UnsafeModelError)
    assert "TouchOnSetState" in err.reason


@pytest.mark.parametrize(("content", "match"), [
    (b"", "ZIP expected"),
    (b"PK\x03\x04 truncated zip", "ZIP expected|corrupt"),
])
def test_broken_files_are_format_errors(tmp_path: Path, marker: Path, content: bytes,
                                        match: str) -> None:
    path = tmp_path / "m.zip"
    path.write_bytes(content)
    err = _refused(path, marker)
    assert re.search(match, err.reason)


def test_archive_without_manifest_or_of_unknown_kind(tmp_path: Path, marker: Path) -> None:
    no_manifest = _archive(tmp_path / "a.zip", {"weights.json": "{}"})
    assert "manifest" in _refused(no_manifest, marker).reason
    unknown = _archive(tmp_path / "b.zip", {"manifest.json": _manifest(kind="trojan")})
    assert "unknown predictor kind" in _refused(unknown, marker).reason
    newer = _archive(tmp_path / "c.zip", {"manifest.json": _manifest().replace(
        f'"format_version": {FORMAT_VERSION}', '"format_version": 99')})
    assert "newer" in _refused(newer, marker).reason
    missing = tmp_path / "absent.zip"
    assert "no such model file" in _refused(missing, marker).reason
    for key in ("kind", "classes"):  # used to escape as a bare KeyError
        entry = json.loads(_manifest())
        del entry[key]
        lacking = _archive(tmp_path / f"no-{key}.zip", {"manifest.json": json.dumps(entry)})
        assert key in _refused(lacking, marker).reason


@pytest.mark.cnn
def test_keras_lambda_layer_is_refused_in_safe_mode(tmp_path: Path, marker: Path) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("ecgclassify.cnn")
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(
        lambda x, m=str(marker): (Path(m).touch(), x)[1])(inputs)  # type: ignore[func-returns-value]
    model_file = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(model_file)
    assert marker.exists()  # building the model ran the layer: it is live code
    marker.unlink()
    path = _archive(tmp_path / "m.zip", {
        "manifest.json": _manifest(kind="cnn", model="model.keras"),
        "model.keras": model_file.read_bytes(),
    })
    _refused(path, marker)
