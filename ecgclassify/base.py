"""The one predictor interface shared by every model of :mod:`ecgclassify`.

Every predictor follows scikit-learn's estimator API (``__init__`` only
stores parameters; ``fit(X, y)`` learns and returns ``self``; learned state
ends in ``_``) and adds :meth:`BasePredictor.save` / :meth:`BasePredictor.load`.
``X`` is a sequence of sheet images: paths, PIL images or arrays.

A saved predictor is one file: a ZIP archive holding ``manifest.json`` (kind,
format version, parameters, classes) and the kind's payload files (a skops
file, a ``.keras`` model, a ``.tflite`` model...). Nothing in it is ever
unpickled; :func:`load_predictor` reads the manifest and hands the archive to
the class registered for its kind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ecgdigitize.errors import ModelFormatError, NotFittedError, UnsafeModelError

__all__ = [
    "CLASS_NAMES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MODEL_FACTORIES",
    "BasePredictor",
    "available_models",
    "load_predictor",
    "make_predictor",
    "register_model",
    "register_predictor",
]

#: The four classes of the reference data set, by label index.
CLASS_NAMES: dict[int, str] = {
    0: "myocardial infarction",
    1: "abnormal heartbeat",
    2: "normal",
    3: "history of MI",
}
FORMAT_NAME = "ecgclassify-predictor"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_REGISTRY: dict[str, type[BasePredictor]] = {}
#: Named model recipes for the CLI and comparisons: ``name -> factory(**kwargs)``
#: (``"features-hgb"``, ``"mobilenet_v2"``...). Filled by :func:`register_model`.
MODEL_FACTORIES: dict[str, Callable[..., BasePredictor]] = {}
#: Archive members that could execute code when loaded by careless tools.
_FORBIDDEN_SUFFIXES = (".pkl", ".pickle", ".joblib", ".npy_pickle", ".dill", ".cloudpickle")


def register_predictor(kind: str) -> Callable[[type[BasePredictor]], type[BasePredictor]]:
    """Class decorator: make ``load_predictor`` know a predictor kind.

    Parameters
    ----------
    kind : str
        Name stored in the ``manifest.json`` of saved archives; must be unique.

    Returns
    -------
    callable
        The decorator; it sets ``cls._kind`` and returns ``cls`` unchanged.

    Examples
    --------
    >>> @register_predictor("doctest-constant")
    ... class Constant(BasePredictor):
    ...     pass
    >>> Constant._kind
    'doctest-constant'
    """

    def deco(cls: type[BasePredictor]) -> type[BasePredictor]:
        cls._kind = kind
        _REGISTRY[kind] = cls
        return cls

    return deco


def register_model(name: str, factory: Callable[..., BasePredictor]) -> None:
    """Make a named model recipe known to :func:`make_predictor` and the CLI.

    Parameters
    ----------
    name : str
        Model name (``"features-hgb"``...); a second registration replaces the first.
    factory : callable
        ``factory(**kwargs) -> BasePredictor``, an unfitted predictor.

    Examples
    --------
    >>> from ecgclassify.feature_predictor import FeaturePredictor
    >>> register_model("doctest-hgb", lambda **kw: FeaturePredictor(**kw))
    >>> type(make_predictor("doctest-hgb")).__name__
    'FeaturePredictor'
    >>> del MODEL_FACTORIES["doctest-hgb"]  # keep the registry as it was
    """
    MODEL_FACTORIES[name] = factory


def available_models() -> list[str]:
    """Names accepted by :func:`make_predictor` (modules that register them are imported).

    Returns
    -------
    list of str
        Sorted model names.

    Examples
    --------
    >>> "features-hgb" in available_models()
    True
    """
    _ensure_registered()
    return sorted(MODEL_FACTORIES)


def make_predictor(name: str, **kwargs: Any) -> BasePredictor:
    """A new, unfitted predictor from a registered model name (``"features-hgb"``...).

    Parameters
    ----------
    name : str
        One of :func:`available_models`.
    **kwargs
        Passed to the model's factory (its constructor parameters).

    Returns
    -------
    BasePredictor
        Unfitted; call ``fit`` next.

    Raises
    ------
    ConfigurationError
        Unknown name (the message lists the known ones).

    Examples
    --------
    >>> type(make_predictor("features-hgb")).__name__
    'FeaturePredictor'
    """
    from ecgdigitize.errors import ConfigurationError

    names = available_models()
    if name not in MODEL_FACTORIES:
        raise ConfigurationError(f"unknown model {name!r}; known models: {', '.join(names)}")
    return MODEL_FACTORIES[name](**kwargs)


class BasePredictor(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Base class: fit / predict / predict_proba / classes_ / save / load.

    Subclasses implement :meth:`fit`, :meth:`predict_proba`,
    :meth:`_save_payload` and :meth:`_load_payload`.

    Attributes
    ----------
    classes_ : ndarray of int
        Class labels seen by ``fit`` (see :data:`CLASS_NAMES`); set by ``fit`` or ``load``.

    Examples
    --------
    A predictor that always gives the class frequencies seen in ``fit``:

    >>> import tempfile
    >>> @register_predictor("doctest-prior")
    ... class Prior(BasePredictor):
    ...     def fit(self, X, y):
    ...         self.classes_, counts = np.unique(y, return_counts=True)
    ...         self.prior_ = counts / counts.sum()
    ...         return self
    ...     def predict_proba(self, X):
    ...         self._check_fitted()
    ...         return np.tile(self.prior_, (len(X), 1))
    ...     def _save_payload(self, directory):
    ...         return {"prior": self.prior_.tolist()}
    ...     def _load_payload(self, directory, info):
    ...         self.prior_ = np.asarray(info["prior"])
    >>> model = Prior().fit(["a.png", "b.png", "c.png"], [2, 2, 0])
    >>> model.predict(["d.png"])
    array([2])
    >>> path = model.save(Path(tempfile.mkdtemp()) / "prior.zip")
    >>> load_predictor(path).predict_proba(["d.png"]).round(2)
    array([[0.33, 0.67]])
    """

    _kind: ClassVar[str] = "base"

    # --- the estimator API -------------------------------------------------
    def fit(self, X: Sequence[Any], y: Sequence[int] | np.ndarray) -> BasePredictor:  # pragma: no cover
        raise NotImplementedError

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:  # pragma: no cover
        """Class probabilities, shape (n_sheets, n_classes), columns in ``classes_`` order."""
        raise NotImplementedError

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        """Predicted class index per sheet (values from ``classes_``)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_)[np.argmax(proba, axis=1)]

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit() or load() first"
            )

    # --- persistence ---------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted predictor to one file (a ZIP archive, no pickle).

        Returns the path written. The file is written atomically (temporary
        file, then rename).
        """
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self._kind,
            "class": type(self).__name__,
            "params": _json_safe(self.get_params(deep=False)),
            "classes": [int(c) for c in self.classes_],
            "library_version": _library_version(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            payload_dir = Path(tmp) / "payload"
            payload_dir.mkdir()
            manifest["payload"] = self._save_payload(payload_dir) or {}
            tmp_zip = path.with_name(path.name + ".tmp")
            with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(_MANIFEST, json.dumps(manifest, indent=2))
                for f in sorted(payload_dir.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(payload_dir).as_posix())
            os.replace(tmp_zip, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BasePredictor:
        """Load a predictor saved by :meth:`save` (safely: nothing is unpickled)."""
        manifest, tmp = _open_archive(path)
        try:
            kind = manifest.get("kind")
            if not isinstance(kind, str) or "classes" not in manifest:
                raise ModelFormatError("manifest.json lacks 'kind' or 'classes'", path=path)
            if cls is not BasePredictor and kind != cls._kind:
                raise ModelFormatError(
                    f"file holds a {kind!r} predictor, not a {cls._kind!r} one; "
                    "use ecgclassify.load_predictor() to load any kind", path=path)
            target = _REGISTRY.get(kind)
            if target is None:
                raise ModelFormatError(f"unknown predictor kind {kind!r}", path=path)
            params = dict(manifest.get("params", {}))
            est = target(**{k: v for k, v in params.items() if k in target._param_names()})
            est.classes_ = np.asarray(manifest["classes"])
            est._load_payload(Path(tmp.name), manifest.get("payload", {}))
            return est
        finally:
            tmp.cleanup()

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(cls._get_param_names())

    def _save_payload(self, directory: Path) -> dict[str, Any] | None:  # pragma: no cover
        raise NotImplementedError

    def _load_payload(self, directory: Path, info: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError


def load_predictor(path: str | os.PathLike[str]) -> BasePredictor:
    """Load any saved predictor, whatever its kind.

    Parameters
    ----------
    path : path-like
        A file written by :meth:`BasePredictor.save`.

    Returns
    -------
    BasePredictor
        Fitted, of the class registered for the archive's kind.

    Raises
    ------
    ModelFormatError
        Missing or corrupt file, unknown kind or format version.
    UnsafeModelError
        The archive carries a pickle-like member.

    Examples
    --------
    >>> load_predictor("no/such/model.zip")
    Traceback (most recent call last):
    ...
    ecgdigitize.errors.ModelFormatError: no/such/model.zip: no such model file

    See :class:`BasePredictor` for a save/load round trip.
    """
    _ensure_registered()
    return BasePredictor.load(path)


def _ensure_registered() -> None:
    # Import the modules that register kinds; heavy ones import their
    # frameworks lazily, so this stays cheap.
    import importlib

    for mod in ("ecgclassify.feature_predictor", "ecgclassify.cnn", "ecgclassify.signal_cnn",
                "ecgclassify.tflite"):
        try:
            importlib.import_module(mod)
        except ImportError:
            continue


def _open_archive(path: str | os.PathLike[str]) -> tuple[dict[str, Any],
                                                         tempfile.TemporaryDirectory[str]]:
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError("no such model file", path=path)
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"}q", b"]q"):
        raise UnsafeModelError("this is a pickle file; pickles can run code and are never "
                               "loaded", path=path)
    if not zipfile.is_zipfile(p):
        raise ModelFormatError("not an ecgclassify model archive (ZIP expected)", path=path)
    tmp = tempfile.TemporaryDirectory()
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            if _MANIFEST not in names:
                raise ModelFormatError("archive has no manifest.json", path=path)
            for n in names:
                if n.lower().endswith(_FORBIDDEN_SUFFIXES) or n.startswith("/") or ".." in n:
                    raise UnsafeModelError(f"archive member {n!r} is refused (pickle-like "
                                           "or unsafe path)", path=path)
            manifest = json.loads(zf.read(_MANIFEST))
            if manifest.get("format") != FORMAT_NAME:
                raise ModelFormatError("manifest is not an ecgclassify predictor", path=path)
            if int(manifest.get("format_version", -1)) > FORMAT_VERSION:
                raise ModelFormatError(
                    f"format version {manifest.get('format_version')} is newer than this "
                    f"library reads ({FORMAT_VERSION}); upgrade ecgdigitize", path=path)
            for n in names:
                if n != _MANIFEST:
                    zf.extract(n, tmp.name)
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError) as exc:
        tmp.cleanup()
        raise ModelFormatError(f"corrupt model archive: {exc}", path=path) from exc
    except BaseException:
        tmp.cleanup()
        raise
    return manifest, tmp


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def _library_version() -> str:
    from ecgdigitize import __version__

    return __version__
