"""Tests of ecgclassify.datasets: folders, duplicates, groups, Challenge layout, crops."""

from __future__ import annotations

import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ecgclassify.datasets import (
    REFERENCE_CLASS_NAMES,
    ensure_reference_images,
    lead_crops,
    load_challenge_folder,
    load_image_folder,
    reference_label,
)
from ecgdigitize.errors import ConfigurationError, InputError, UnreadableImageError
from ecgdigitize.record import ECGRecord
from ecgdigitize.result import Panel

REF_FOLDERS = {
    "ECG Images of Myocardial Infarction Patients (240x12=2880)": 0,
    "ECG Images of Patient that have abnormal heartbeat (233x12=2796)": 1,
    "Normal Person ECG Images (284x12=3408)": 2,
    "ECG Images of Patient that have History of MI (172x12=2064)": 3,
}


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


@pytest.fixture
def ref_like(tmp_path: Path) -> Path:
    """The reference layout in miniature: 2 contents per class, one copied."""
    root = tmp_path / "ref"
    for folder, label in REF_FOLDERS.items():
        for i in range(2):
            _png(root / folder / f"S({i + 1}).png", 10 * label + i)
        _png(root / folder / "S(3).png", 10 * label)  # copy of S(1)
    return root


def test_reference_keywords() -> None:
    for folder, label in REF_FOLDERS.items():
        assert reference_label(folder) == label
    assert reference_label("PMI") is None and reference_label("cats") is None


def test_reference_layout_labels_groups_and_duplicates(ref_like: Path) -> None:
    ds = load_image_folder(ref_like)
    assert ds.class_names == REFERENCE_CLASS_NAMES
    assert np.bincount(ds.labels).tolist() == [3, 3, 3, 3]
    assert ds.duplicates.n_files == 12 and ds.duplicates.n_distinct == 8
    assert len(ds.duplicates.duplicate_groups) == 4 and ds.duplicates.cross_class_groups == 0
    assert ds.groups == ds.content_hashes and ds.n_groups == 8
    mi = [p for p, lab in zip(ds.paths, ds.labels, strict=True) if lab == 0]
    assert [Path(p).name for p in mi] == ["S(1).png", "S(2).png", "S(3).png"]
    assert ds.groups[0] == ds.groups[2] != ds.groups[1]
    sub = ds.subset([0, 2, 3])
    assert len(sub) == 3 and sub.duplicates.n_distinct == 2
    assert "8 distinct" in ds.duplicates.summary()


def test_generic_folders_alphabetical_and_mapping(tmp_path: Path) -> None:
    for name, v in (("zebra", 1), ("apple", 2)):
        _png(tmp_path / name / "a.png", v)
    (tmp_path / "apple" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path)
    assert ds.class_names == ("apple", "zebra") and ds.labels.tolist() == [0, 1]
    ds2 = load_image_folder(tmp_path, {"zebra": 0, "apple": 1})
    assert ds2.class_names == ("zebra", "apple") and Path(ds2.paths[0]).parent.name == "zebra"
    ds3 = load_image_folder(tmp_path, ["zebra"])
    assert len(ds3) == 1
    with pytest.raises(ConfigurationError, match="not found"):
        load_image_folder(tmp_path, ["pear"])


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="no class folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image"):
        load_image_folder(tmp_path)
    with pytest.raises(ConfigurationError, match="groups_by"):
        load_image_folder(tmp_path, groups_by="patient")  # type: ignore[arg-type]


def test_printed_id_groups(ref_like: Path, tmp_path: Path) -> None:
    ds = load_image_folder(ref_like)
    manifest = tmp_path / "manifest.csv"
    rows = ["original_relative_path,printed_id"]
    for i, p in enumerate(ds.paths):  # two sheets share each printed ID
        rows.append(f"\"{Path(p).relative_to(ref_like).as_posix()}\",{100 + i // 2}")
    manifest.write_text("\n".join(rows) + "\n")
    by_id = load_image_folder(ref_like, groups_by="printed_id", manifest=manifest)
    assert by_id.n_groups == 6 and by_id.groups[0] == by_id.groups[1] == "id:100"
    assert by_id.content_hashes == ds.content_hashes
    with pytest.raises(ConfigurationError, match="manifest"):
        load_image_folder(ref_like, groups_by="printed_id")


def test_ensure_reference_images_unpacks_once(ref_like: Path, tmp_path: Path) -> None:
    archive = tmp_path / "images.tar.xz"
    for f in ref_like.rglob("*.png"):  # the function looks for the reference's JPEGs
        f.rename(f.with_suffix(".jpg"))
    with tarfile.open(archive, "w:xz") as tar:
        for folder in REF_FOLDERS:
            tar.add(ref_like / folder, arcname=folder)
    dest = tmp_path / "unpacked"
    assert ensure_reference_images(dest, archive=archive) == dest
    assert len(list(dest.glob("*/*.jpg"))) == 12
    archive.unlink()
    assert ensure_reference_images(dest, archive=archive) == dest  # already there
    with pytest.raises(UnreadableImageError):
        ensure_reference_images(tmp_path / "other", archive=archive)


def test_challenge_folder(tmp_path: Path) -> None:
    sig = np.tile(np.sin(np.linspace(0, 20, 1000))[:, None], (1, 12))
    hea = ECGRecord(sig, fs=500, name="00001_hr").to_wfdb(tmp_path / "sub")
    hea.write_text(hea.read_text() + "#Image: 00001_hr-0.png, 00001_hr-1.png\n# Labels: NORM, MI\n")
    other = ECGRecord(sig, fs=500, name="00002_hr").to_wfdb(tmp_path / "tail")
    other.with_suffix(".dat").unlink()
    other.write_text(other.read_text() + "# Image: 00002_hr-0.png\n")
    ds = load_challenge_folder(tmp_path)
    assert len(ds) == 2
    assert ds.labels == (("NORM", "MI"), ())
    assert [Path(p).name for p in ds.image_paths[0]] == ["00001_hr-0.png", "00001_hr-1.png"]
    assert ds.signals[0] is not None and ds.signals[0].n_samples == 1000
    np.testing.assert_allclose(ds.signals[0].signal, sig, atol=1e-3)
    assert ds.signals[1] is None
    with pytest.raises(InputError):
        load_challenge_folder(tmp_path / "sub" / "none")


def test_lead_crops_identity_and_warped() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[10:30, 20:60] = 255
    panels = (Panel("I", (20, 10, 60, 30), 0.0, 2.5, 20.0, 0, 0),
              Panel("II", (0, 50, 200, 100), 0.0, 10.0, 75.0, 3, 0, is_rhythm=True))
    result = SimpleNamespace(panels=panels, transform=np.eye(3), working_shape=(100, 200))
    crops = lead_crops(img, result)
    assert set(crops) == {"I", "II_rhythm"}
    assert crops["I"].shape == (20, 40, 3) and crops["I"].min() == 255
    shift = np.array([[1, 0, 5], [0, 1, -3], [0, 0, 1]], float)  # input -> working: +5 x, -3 y
    warped = lead_crops(img, SimpleNamespace(panels=panels[:1], transform=shift,
                                             working_shape=(100, 200)))
    assert warped["I"][:17, 5:].min() == 255
    assert warped["I"][17:, :].max() == 0 and warped["I"][:, :5].max() == 0
