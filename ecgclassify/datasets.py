"""Data sets of ECG sheets: image folders, the reference set, the Challenge 2024 layout.

The reference set (Khan & Hussain 2021, "ECG Images dataset of Cardiac
Patients") holds many byte-identical copies inside each class, so every
loader returns a **group** per file: the SHA-256 of its bytes. Split by group
(:mod:`ecgclassify.splits`) so no copy of a test sheet is trained on. The
printed "ID" of the sheet header recurs across sheets and classes: it is not
a patient key, but ``groups_by="printed_id"`` gives it as a second, coarser
grouping.
"""

from __future__ import annotations

import csv
import os
import re
import tarfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ecgdigitize.errors import ConfigurationError, InputError, UnreadableImageError
from ecgdigitize.io import IMAGE_SUFFIXES
from ecgdigitize.record import ECGRecord

from .cache import content_hash

__all__ = [
    "REFERENCE_CLASS_NAMES",
    "ChallengeDataset",
    "DuplicateReport",
    "ImageDataset",
    "ensure_reference_images",
    "find_reference_archive",
    "lead_crops",
    "load_challenge_folder",
    "load_image_folder",
    "reference_label",
]

#: Class names of the reference set, by label.
REFERENCE_CLASS_NAMES: tuple[str, ...] = (
    "myocardial infarction", "abnormal heartbeat", "normal", "history of MI")
_REFERENCE_ARCHIVE = Path("ecg-images-cardiac-patients") / "images.tar.xz"


@dataclass(frozen=True)
class DuplicateReport:
    """Byte-identical copies in a data set.

    Attributes
    ----------
    n_files : int
        Files in the set.
    n_distinct : int
        Distinct contents (SHA-256 of the bytes).
    duplicate_groups : tuple of tuple of str
        Paths sharing one content, for every content present more than once.
    cross_class_groups : int
        Contents found under more than one label (label noise).

    Examples
    --------
    >>> rep = DuplicateReport(5, 3, (("a.png", "b.png"), ("c.png", "d.png")), 1)
    >>> rep.n_duplicate_files
    2
    >>> rep.summary()
    '5 files, 3 distinct contents, 2 byte-identical copies in 2 groups, 1 across classes'
    """

    n_files: int
    n_distinct: int
    duplicate_groups: tuple[tuple[str, ...], ...]
    cross_class_groups: int = 0

    @property
    def n_duplicate_files(self) -> int:
        """Files that are a copy of another file (``n_files - n_distinct``)."""
        return self.n_files - self.n_distinct

    def summary(self) -> str:
        """One line: files, distinct contents, copies."""
        return (f"{self.n_files} files, {self.n_distinct} distinct contents, "
                f"{self.n_duplicate_files} byte-identical copies in "
                f"{len(self.duplicate_groups)} groups, {self.cross_class_groups} across classes")


@dataclass(frozen=True)
class ImageDataset:
    """A labelled list of sheet images with their leakage groups.

    Attributes
    ----------
    paths : tuple of str
        Image files, sorted by class then name.
    labels : ndarray of int
        Class index per file.
    groups : tuple of str
        Leakage group per file: SHA-256 of its bytes, or the printed ID
        (``groups_by="printed_id"``).
    class_names : tuple of str
        Name of each class index.
    duplicates : DuplicateReport
        Byte-identical copies found.
    content_hashes : tuple of str
        SHA-256 of each file (equal to ``groups`` when grouped by content).
    printed_ids : tuple of str or None
        Printed sheet ID from the manifest, when known.
    groups_by : str
        ``"content"`` or ``"printed_id"``: what ``groups`` holds.
    extra : mapping of str to str
        Free-form notes about the set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for c, names in (("a", ("1.png", "2.png")), ("b", ("3.png",))):
    ...     (root / c).mkdir()
    ...     for n in names:
    ...         _ = (root / c / n).write_bytes(n.encode())
    >>> ds = load_image_folder(root)
    >>> len(ds), ds.n_groups, ds.subset([0, 2]).labels.tolist()
    (3, 3, [0, 1])
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    groups: tuple[str, ...]
    class_names: tuple[str, ...]
    duplicates: DuplicateReport
    content_hashes: tuple[str, ...] = ()
    printed_ids: tuple[str, ...] | None = None
    groups_by: str = "content"
    extra: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def n_groups(self) -> int:
        """Distinct groups."""
        return len(set(self.groups))

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        """A data set of the files at ``indices`` (duplicate report recomputed)."""
        idx = [int(i) for i in np.asarray(indices).ravel()]
        paths = tuple(self.paths[i] for i in idx)
        labels = self.labels[idx]
        hashes = tuple(self.content_hashes[i] for i in idx)
        return ImageDataset(
            paths, labels, tuple(self.groups[i] for i in idx), self.class_names,
            _duplicate_report(paths, hashes, labels), hashes,
            None if self.printed_ids is None else tuple(self.printed_ids[i] for i in idx),
            self.groups_by)


def reference_label(folder_name: str) -> int | None:
    """Label of a reference-set class folder, by keywords (None if not recognised).

    "History of MI" also contains "MI", so it is tested first.

    Parameters
    ----------
    folder_name : str
        Name of a class folder of the reference set.

    Returns
    -------
    int or None
        0 MI, 1 abnormal heartbeat, 2 normal, 3 history of MI, or None.

    Examples
    --------
    >>> reference_label("ECG Images of Patient that have History of MI (172x12=2064)")
    3
    >>> reference_label("ECG Images of Myocardial Infarction Patients (240x12=2880)")
    0
    """
    name = folder_name.lower()
    if "history" in name:
        return 3
    if "abnormal" in name or "heartbeat" in name:
        return 1
    if "normal" in name:
        return 2
    if "myocardial" in name or "infarction" in name or re.search(r"\bmi\b", name):
        return 0
    return None


def _class_folders(root: Path, classes: Sequence[str] | Mapping[str, int] | None
                   ) -> tuple[dict[Path, int], tuple[str, ...]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError("no class folders (one sub-folder per class expected)", path=root)
    if isinstance(classes, Mapping):
        missing = [c for c in classes if not (root / c).is_dir()]
        if missing:
            raise ConfigurationError(f"class folders {missing} not found in {root}")
        n = max(classes.values()) + 1
        names = [str(i) for i in range(n)]
        for c, i in classes.items():
            names[i] = c
        return {root / c: int(i) for c, i in classes.items()}, tuple(names)
    if classes is not None:
        return _class_folders(root, {c: i for i, c in enumerate(classes)})
    ref = {p: reference_label(p.name) for p in folders}
    if all(v is not None for v in ref.values()) and len(set(ref.values())) == len(ref):
        return {p: int(v) for p, v in ref.items() if v is not None}, REFERENCE_CLASS_NAMES
    return {p: i for i, p in enumerate(folders)}, tuple(p.name for p in folders)


def load_image_folder(root: str | os.PathLike[str],
                      classes: Sequence[str] | Mapping[str, int] | None = None, *,
                      groups_by: Literal["content", "printed_id"] = "content",
                      manifest: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Load a folder with one sub-folder of images per class.

    Parameters
    ----------
    root : path-like
        The folder.
    classes : sequence of str or mapping of str to int, optional
        Sub-folders to use, in label order, or ``{folder: label}``. Default:
        the reference set's folders are recognised by keyword (0 MI,
        1 abnormal heartbeat, 2 normal, 3 history of MI); other folders get
        labels in alphabetical order.
    groups_by : {"content", "printed_id"}, default "content"
        Group files by SHA-256 of their bytes, or by the printed sheet ID
        from ``manifest`` (coarser: one ID may cover several sheets).
    manifest : path-like, optional
        The reference ``manifest.csv`` (columns ``original_relative_path``,
        ``printed_id``); needed for ``groups_by="printed_id"``.

    Returns
    -------
    ImageDataset

    Raises
    ------
    InputError
        ``root`` has no class folders, or a class folder has no image.
    ConfigurationError
        Unknown ``groups_by``, missing manifest or class folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("a", "b"):
    ...     (root / c).mkdir()
    ...     _ = (root / c / "x.png").write_bytes(b"same")
    >>> ds = load_image_folder(root)
    >>> ds.class_names, ds.labels.tolist(), ds.duplicates.n_distinct
    (('a', 'b'), [0, 1], 1)
    """
    root = Path(root)
    if not root.is_dir():
        raise UnreadableImageError("not a folder", path=root)
    if groups_by not in ("content", "printed_id"):
        raise ConfigurationError(f"groups_by must be 'content' or 'printed_id'; got {groups_by!r}")
    folder_labels, class_names = _class_folders(root, classes)
    paths: list[str] = []
    labels: list[int] = []
    for folder, label in sorted(folder_labels.items(), key=lambda kv: (kv[1], kv[0].name)):
        files = sorted((f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
                       key=_natural_key)
        if not files:
            raise InputError("class folder holds no image", path=folder)
        paths += [str(f) for f in files]
        labels += [label] * len(files)
    hashes = tuple(content_hash(p) for p in paths)
    labels_arr = np.asarray(labels, dtype=int)
    ids = _printed_ids(root, paths, manifest) if manifest is not None else None
    if groups_by == "printed_id":
        if ids is None:
            raise ConfigurationError("groups_by='printed_id' needs manifest=<manifest.csv>")
        groups = ids
    else:
        groups = hashes
    return ImageDataset(tuple(paths), labels_arr, groups, class_names,
                        _duplicate_report(tuple(paths), hashes, labels_arr), hashes, ids,
                        groups_by)


def _natural_key(p: Path) -> tuple[object, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def _printed_ids(root: Path, paths: Sequence[str], manifest: str | os.PathLike[str]
                 ) -> tuple[str, ...]:
    with open(manifest, newline="", encoding="utf-8") as fh:
        table = {row["original_relative_path"]: row["printed_id"] for row in csv.DictReader(fh)}
    ids = []
    for p in paths:
        rel = Path(p).relative_to(root).as_posix()
        if rel not in table:
            raise ConfigurationError(f"{rel!r} is not listed in the manifest {manifest}")
        ids.append(f"id:{table[rel]}")
    return tuple(ids)


def _duplicate_report(paths: tuple[str, ...], hashes: tuple[str, ...],
                      labels: np.ndarray) -> DuplicateReport:
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        by_hash[h].append(i)
    dup = tuple(tuple(paths[i] for i in idx) for idx in by_hash.values() if len(idx) > 1)
    cross = sum(len({int(labels[i]) for i in idx}) > 1 for idx in by_hash.values())
    return DuplicateReport(len(paths), len(by_hash), dup, cross)


def find_reference_archive() -> Path | None:
    """The reference ``images.tar.xz`` under a ``shared/data`` folder next to the repository.

    Looks in ``<repo>/../shared/data``, ``<repo>/shared/data`` and
    ``<cwd>/../shared/data``.

    Returns
    -------
    Path or None
        The archive, or None when it is not there.

    Examples
    --------
    >>> path = find_reference_archive()
    >>> path is None or path.name == "images.tar.xz"
    True
    """
    here = Path(__file__).resolve().parents[1]
    for base in (here.parent / "shared" / "data", here / "shared" / "data",
                 Path.cwd().parent / "shared" / "data"):
        if (base / _REFERENCE_ARCHIVE).is_file():
            return base / _REFERENCE_ARCHIVE
    return None


def ensure_reference_images(dest: str | os.PathLike[str] = "data/ecg-images", *,
                            archive: str | os.PathLike[str] | None = None) -> Path:
    """Unpack the reference sheets into ``dest`` unless already there; return ``dest``.

    Parameters
    ----------
    dest : path-like, default "data/ecg-images"
        Target folder (git-ignored in this repository).
    archive : path-like, optional
        The ``images.tar.xz``; default: ``../shared/data/ecg-images-cardiac-patients/``.

    Returns
    -------
    Path
        ``dest``, holding one sub-folder of ``.jpg`` sheets per class.

    Raises
    ------
    UnreadableImageError
        No archive found.

    Examples
    --------
    >>> import io, tarfile, tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> with tarfile.open(tmp / "images.tar.xz", "w:xz") as tar:
    ...     info = tarfile.TarInfo("Normal/1.jpg"); info.size = 3
    ...     tar.addfile(info, io.BytesIO(b"jpg"))
    >>> dest = ensure_reference_images(tmp / "images", archive=tmp / "images.tar.xz")
    >>> sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg"))
    ['Normal/1.jpg']
    """
    dest = Path(dest)
    if dest.is_dir() and any(dest.glob("*/*.jpg")):
        return dest
    src = Path(archive) if archive is not None else find_reference_archive()
    if src is None or not src.is_file():
        raise UnreadableImageError("reference archive images.tar.xz not found",
                                   path=archive or str(_REFERENCE_ARCHIVE))
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src, "r:xz") as tar:
        tar.extractall(dest, filter="data")
    return dest


# --- PhysioNet/CinC Challenge 2024 layout ------------------------------------------
@dataclass(frozen=True)
class ChallengeDataset:
    """Records of a PhysioNet/CinC Challenge 2024 folder.

    Attributes
    ----------
    records : tuple of str
        Header paths (``.hea``).
    image_paths : tuple of tuple of str
        Images of each record (from ``# Image:`` comment lines).
    labels : tuple of tuple of str
        Labels of each record (from ``# Labels:``), possibly empty.
    signals : tuple of ECGRecord or None
        The WFDB signal (ground truth), or None when the signal file is absent.

    Examples
    --------
    See :func:`load_challenge_folder`.

    >>> ChallengeDataset(("r1.hea",), (("r1-0.png",),), (("NORM",),), (None,)).labels[0]
    ('NORM',)
    """

    records: tuple[str, ...]
    image_paths: tuple[tuple[str, ...], ...]
    labels: tuple[tuple[str, ...], ...]
    signals: tuple[ECGRecord | None, ...]

    def __len__(self) -> int:
        return len(self.records)


_COMMENT_RE = re.compile(r"^#\s*(Image|Labels)\s*:\s*(.*)$", re.IGNORECASE)


def _parse_challenge_header(header: Path) -> tuple[list[str], list[str]]:
    images: list[str] = []
    labels: list[str] = []
    for line in header.read_text(errors="replace").splitlines():
        m = _COMMENT_RE.match(line.strip())
        if m is None:
            continue
        values = [v.strip() for v in m.group(2).split(",") if v.strip()]
        (images if m.group(1).lower() == "image" else labels).extend(values)
    return images, labels


def load_challenge_folder(root: str | os.PathLike[str], *,
                          load_signals: bool = True) -> ChallengeDataset:
    """Read a Challenge 2024 folder: WFDB headers with ``# Image:`` and ``# Labels:`` lines.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``.hea`` files.
    load_signals : bool, default True
        Read each record's signal as ground truth (None when unreadable).

    Returns
    -------
    ChallengeDataset
        Records sorted by header path; image paths are absolute when ``root`` is.

    Raises
    ------
    InputError
        No header in ``root``.

    Examples
    --------
    >>> import tempfile
    >>> rec = ECGRecord(np.zeros((500, 12)), fs=500, name="00001_hr",
    ...                 comments=("Image: 00001_hr-0.png", "Labels: NORM, MI"))
    >>> root = tempfile.mkdtemp()
    >>> _ = rec.to_wfdb(root)
    >>> ds = load_challenge_folder(root)
    >>> [Path(p).name for p in ds.image_paths[0]], ds.labels[0], ds.signals[0].fs
    (['00001_hr-0.png'], ('NORM', 'MI'), 500.0)
    """
    root = Path(root)
    headers = sorted(root.rglob("*.hea"), key=lambda p: p.as_posix())
    if not headers:
        raise InputError("no WFDB header (.hea) found", path=root)
    images, labels, signals = [], [], []
    for hea in headers:
        imgs, labs = _parse_challenge_header(hea)
        images.append(tuple(str(hea.parent / i) for i in imgs))
        labels.append(tuple(labs))
        sig = None
        if load_signals:
            try:
                sig = ECGRecord.from_wfdb(hea)
            except UnreadableImageError:
                sig = None
        signals.append(sig)
    return ChallengeDataset(tuple(str(h) for h in headers), tuple(images), tuple(labels),
                            tuple(signals))


# --- lead crops ----------------------------------------------------------------------------
def lead_crops(image: np.ndarray, result: object) -> dict[str, np.ndarray]:
    """Cut each lead's panel out of a sheet, given its digitization result.

    Uses ``ecgdigitize.layout.crop_panels`` when available; otherwise warps
    the image to the working frame with ``result.transform`` and crops each
    ``Panel.box_px``. A crop belongs to its sheet: give it the sheet's group
    when building a per-lead data set.

    Parameters
    ----------
    image : ndarray (H, W, 3) or (H, W)
        The sheet as given to ``digitize``.
    result : DigitizedECG
        Its digitization result (``panels``, ``transform``, ``working_shape``).

    Returns
    -------
    dict of str to ndarray
        Lead name → crop; a rhythm strip is keyed ``"<lead>_rhythm"``.

    Examples
    --------
    >>> from ecgdigitize.result import DigitizedECG, Panel
    >>> sheet = np.zeros((300, 800, 3), np.uint8)
    >>> res = DigitizedECG(np.zeros((5000, 12)), 500, working_shape=(300, 800), panels=(
    ...     Panel("I", (0.0, 0.0, 200.0, 100.0), 0.0, 2.5, 50.0, 0, 0),
    ...     Panel("II", (0.0, 200.0, 800.0, 300.0), 0.0, 10.0, 250.0, 3, 0, is_rhythm=True)))
    >>> {k: v.shape for k, v in lead_crops(sheet, res).items()}
    {'I': (100, 200, 3), 'II_rhythm': (100, 800, 3)}
    """
    try:
        from ecgdigitize import layout as _layout
    except ImportError:
        _layout = None  # type: ignore[assignment]
    crop = getattr(_layout, "crop_panels", None)
    if crop is not None:
        try:
            return dict(crop(image, result))
        except TypeError:  # a different signature: use the generic crop below
            pass
    return _crop_working_panels(image, result)


def _crop_working_panels(image: np.ndarray, result: object) -> dict[str, np.ndarray]:
    """Warp ``image`` to the working frame (``result.transform``) and cut each panel box."""
    import cv2

    h, w = getattr(result, "working_shape", (0, 0)) or (0, 0)
    transform = np.asarray(getattr(result, "transform", np.eye(3)), dtype=float)
    if h <= 0 or w <= 0:
        h, w = image.shape[:2]
    if np.allclose(transform, np.eye(3)) and (h, w) == image.shape[:2]:
        working = image
    else:
        working = cv2.warpPerspective(image, transform, (int(w), int(h)),
                                      flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    crops: dict[str, np.ndarray] = {}
    for panel in getattr(result, "panels", ()):
        x0, y0, x1, y1 = (round(v) for v in panel.box_px)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, working.shape[1]), min(y1, working.shape[0])
        if x1 > x0 and y1 > y0:
            key = f"{panel.lead}_rhythm" if panel.is_rhythm else panel.lead
            crops[key] = np.array(working[y0:y1, x0:x1])
    return crops
