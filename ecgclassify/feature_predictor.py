"""The classical predictor: digitize → NeuroKit2 features → scikit-learn model.

:class:`FeaturePredictor` takes sheet images (paths, bytes, arrays, PIL
images) or already-digitized :class:`~ecgdigitize.record.ECGRecord` objects.
Images are digitized with ``ecgdigitize.digitize(image, fs=500)`` through a
:class:`~ecgclassify.cache.DigitizationCache` keyed by content hash, so
repeated experiments never redo a sheet; features are cached beside them. A
sheet that fails to digitize gives an all-NaN feature row and a warning.

The model is ``Pipeline(SimpleImputer, StandardScaler, <model>)``; it is
saved with skops inside the archive of :meth:`BasePredictor.save` and loaded
with an explicit list of trusted types (nothing else is ever instantiated).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ecgdigitize.errors import (
    ConfigurationError,
    ECGError,
    MissingDependencyError,
    ModelFormatError,
    UnsafeModelError,
)
from ecgdigitize.record import STANDARD_LEADS, ECGRecord

from .base import BasePredictor, register_model, register_predictor
from .cache import CachedFailure, DigitizationCache, content_hash
from .features import (
    FEATURES_VERSION,
    GLOBAL_FEATURES,
    MEASURE_SUFFIXES,
    extract_features,
    feature_names,
)

__all__ = ["FEATURE_SETS", "MODEL_CHOICES", "TRUSTED_TYPES", "DigitizationWarning", "FeaturePredictor",
           "digitize_records", "make_model"]

#: Classifiers available as ``FeaturePredictor(model=...)``.
MODEL_CHOICES = ("hgb", "logreg", "rf", "ensemble")
#: Feature sets: global/territory summaries; plus per-lead measures; plus median-beat templates.
FEATURE_SETS = ("auto", "all", "measures", "summary")
#: The only types a saved feature model may hold; anything else is refused before loading.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.compose._column_transformer.ColumnTransformer",
    # ColumnTransformer's "passthrough"; a function it would call is its own schema node,
    # which is not in this list, so FunctionTransformer(func=<anything>) is still refused.
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "builtins.slice",
    "sklearn.ensemble._voting.VotingClassifier",
    "sklearn.decomposition._pca.PCA",
    "sklearn.utils._bunch.Bunch",
    "numpy.random._generator.Generator",
    "numpy.dtype",
)
#: Plain containers and arrays, always allowed.
_PLAIN_TYPES = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int",
    "builtins.float", "builtins.bool", "builtins.NoneType", "numpy.ndarray", "numpy.float64",
    "numpy.float32", "numpy.int64", "numpy.int32", "numpy.uint64", "numpy.uint8",
    "numpy.bool_", "numpy.intp"})
_PAYLOAD = "pipeline.skops"
#: In-process memo of feature rows by cache key (content hash + versions).
_FEATURE_MEMO: dict[str, dict[str, float]] = {}


class DigitizationWarning(UserWarning):
    """A sheet could not be digitized; its features are NaN."""


def make_model(name: str, random_state: int | None = 0, **params: Any) -> Any:
    """The classifier named ``name`` ("hgb", "logreg", "rf" or "ensemble"), with defaults.

    Parameters
    ----------
    name : {"hgb", "logreg", "rf", "ensemble"}
        Histogram gradient boosting, logistic regression, random forest, or
        a soft vote of logistic regression, random forest and logistic
        regression on a PCA of the median-beat templates (expects every
        column of :func:`~ecgclassify.features.feature_names`, unscaled).
    random_state : int or None, default 0
        Seed of the randomised models.
    **params
        Override the defaults (scikit-learn constructor parameters).

    Returns
    -------
    sklearn classifier
        Unfitted; class-balanced weights where the model supports them.

    Raises
    ------
    ConfigurationError
        Unknown name.

    Examples
    --------
    >>> make_model("logreg", C=2.0).get_params()["C"]
    2.0
    >>> type(make_model("hgb")).__name__
    'HistGradientBoostingClassifier'
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if name == "hgb":
        defaults: dict[str, Any] = dict(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                        l2_regularization=1.0, class_weight="balanced",
                                        random_state=random_state)
        return HistGradientBoostingClassifier(**{**defaults, **params})
    if name == "logreg":
        defaults = dict(C=0.5, max_iter=5000, class_weight="balanced")
        return LogisticRegression(**{**defaults, **params})
    if name == "rf":
        defaults = dict(n_estimators=500, class_weight="balanced", random_state=random_state,
                        n_jobs=1)
        return RandomForestClassifier(**{**defaults, **params})
    if name == "ensemble":
        return _make_ensemble(random_state, **params)
    raise ConfigurationError(f"model must be one of {MODEL_CHOICES}; got {name!r}")


def _make_ensemble(random_state: int | None, **params: Any) -> Any:
    """Soft vote of three models that err on different sheets; each brings its own preprocessing.

    - ``logreg``: logistic regression on the global/territory summaries;
    - ``rf``: a random forest on the summaries and the per-lead measures;
    - ``shape``: logistic regression (C=0.1: 20 more columns) on the
      summaries plus the first 20 principal components of the 12 median-beat
      templates (missing leads are flat: 0 mV), fitted on the training sheets.

    On the reference sheets (grouped 5-fold CV, mean over fold seeds 0-9,
    digitizer of 2026-11-27 05:00 UTC) the vote of three scores 0.893 ± 0.012
    macro-F1, logistic regression alone 0.877 and the random forest alone 0.871
    (docs/results/feature_models.md; on the digitizer of 2026-11-26 11:00 UTC,
    before its ink fit, 0.905, 0.884 and 0.881).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import VotingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    n_summary = len(GLOBAL_FEATURES)
    n_measures = n_summary + len(STANDARD_LEADS) * len(MEASURE_SUFFIXES)
    summary, measures = list(range(n_summary)), list(range(n_measures))
    templates = list(range(n_measures, len(feature_names(STANDARD_LEADS))))

    def scaled() -> Pipeline:
        return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("scale", StandardScaler())])

    linear = Pipeline([("select", ColumnTransformer([("summary", scaled(), summary)])),
                       ("clf", make_model("logreg", random_state))])
    forest = Pipeline([("select", ColumnTransformer([("measures", SimpleImputer(
        strategy="median", keep_empty_features=True), measures)])),
        ("clf", make_model("rf", random_state, n_estimators=300))])
    pca = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=0.0,
                                             keep_empty_features=True)),
                    ("pca", PCA(20, random_state=random_state)), ("scale", StandardScaler())])
    shape = Pipeline([("select", ColumnTransformer([("summary", scaled(), summary),
                                                    ("templates", pca, templates)])),
                      ("clf", make_model("logreg", random_state, C=0.1))])
    return VotingClassifier([("logreg", linear), ("rf", forest), ("shape", shape)],
                            voting="soft", **params)


@register_predictor("features")
class FeaturePredictor(BasePredictor):
    """Classify sheets from classical ECG features (NeuroKit2) with a scikit-learn model.

    Parameters
    ----------
    model : {"ensemble", "hgb", "logreg", "rf"}, default "ensemble"
        The best model on the reference sheets (see :func:`make_model`), or
        histogram gradient boosting, logistic regression, random forest. The
        ensemble is a soft vote of logistic regression (summary features), random forest
        (summaries and per-lead measures) and logistic regression on the
        summaries plus a PCA of the median-beat templates (see :func:`make_model`).
    digitize_kwargs : dict, optional
        Extra arguments for ``ecgdigitize.digitize`` (``fs=500`` is the default).
    cache_dir : str, optional
        Digitization cache folder; default ``$ECGDIGITIZE_CACHE`` or
        ``~/.cache/ecgdigitize``.
    use_cache : bool, default True
        Read and write the cache.
    random_state : int, default 0
    model_params : dict, optional
        Overrides of the classifier's parameters.
    feature_set : {"auto", "all", "measures", "summary"}, default "auto"
        Columns given to the classifier: every feature (with the per-lead
        median-beat templates), the summaries and per-lead measures, or the
        global and territory summaries only. ``"auto"``: "summary" for the
        linear model (per-lead columns mostly add noise to it; grouped CV on
        the reference set prefers it), "measures" for the tree models, "all"
        for the ensemble (which picks its members' columns itself).
    verbose : bool, default True
        Progress bar on a terminal (never when stderr is not a TTY).

    Examples
    --------
    >>> import neurokit2 as nk
    >>> from ecgdigitize.record import ECGRecord
    >>> recs = [ECGRecord(nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=hr,
    ...                                   random_state=i)[:, None], 500, ("II",))
    ...         for i, hr in enumerate([55, 60, 58, 110, 120, 115])]
    >>> clf = FeaturePredictor(model="logreg", verbose=False).fit(recs, [0, 0, 0, 1, 1, 1])
    >>> clf.predict(recs).tolist()
    [0, 0, 0, 1, 1, 1]
    """

    def __init__(self, model: str = "ensemble", digitize_kwargs: dict[str, Any] | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, random_state: int = 0,
                 model_params: dict[str, Any] | None = None, verbose: bool = True,
                 feature_set: str = "auto") -> None:
        self.model = model
        self.digitize_kwargs = digitize_kwargs
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.random_state = random_state
        self.model_params = model_params
        self.verbose = verbose
        self.feature_set = feature_set

    # --- features -------------------------------------------------------------------
    def _digitize_kwargs(self) -> dict[str, Any]:
        return _digitize_args(self.digitize_kwargs)

    def features(self, X: Sequence[Any]) -> np.ndarray:
        """Feature matrix (n_sheets, n_features) of sheets or records; NaN rows for failures."""
        if isinstance(X, str | Path | ECGRecord | bytes) or (
                isinstance(X, np.ndarray) and X.ndim == 3 and X.shape[-1] in (3, 4)
                and X.dtype == np.uint8):
            raise ConfigurationError("X must be a sequence of sheets (paths, arrays, records), "
                                     f"not a single {type(X).__name__}")
        names = feature_names(STANDARD_LEADS)
        cache = (DigitizationCache(self.cache_dir, digitize_kwargs=self._digitize_kwargs())
                 if self.use_cache else None)
        rows = []
        for item in _progress(list(X), self.verbose, "features"):
            feats = self._features_one(item, cache)
            rows.append([feats.get(n, np.nan) for n in names])
        return np.asarray(rows, dtype=float).reshape(len(rows), len(names))

    def _features_one(self, item: Any, cache: DigitizationCache | None) -> dict[str, float]:
        if isinstance(item, ECGRecord):
            # lead names are part of the key: the same samples under other names
            # (a single lead labelled "II" or "V5") give other features
            memo_key = (f"rec-{content_hash(item.signal)}-{item.fs}-"
                        f"{','.join(item.lead_names)}-{FEATURES_VERSION}")
            if memo_key not in _FEATURE_MEMO:
                _FEATURE_MEMO[memo_key] = extract_features(item)
            return _FEATURE_MEMO[memo_key]
        sha = _item_hash(item)
        # the in-process memo also keys on the cache folder and the digitizer object,
        # so a swapped digitizer (or another cache) never reuses features of the old one
        where = f"{cache.directory}" if cache is not None else "nocache"
        key = (cache.key(sha) if cache is not None
               else f"{sha}-{self._digitize_kwargs()}") + (
                   f"-f{FEATURES_VERSION}-{where}-{id(_digitizer())}")
        if key in _FEATURE_MEMO:
            if not _FEATURE_MEMO[key]:
                _warn_failed(item, "failed earlier in this process")
            return _FEATURE_MEMO[key]
        entry_key = cache.key(sha) if cache is not None else ""
        feats = cache.get_features(entry_key, FEATURES_VERSION) if cache is not None else None
        if feats is None:
            record = _digitize_one(item, cache, entry_key, self._digitize_kwargs())
            feats = extract_features(record) if record is not None else {}
            if cache is not None and record is not None:
                cache.put_features(entry_key, FEATURES_VERSION, feats)
        _FEATURE_MEMO[key] = feats
        return feats

    # --- estimator API -----------------------------------------------------------------
    def fit(self, X: Sequence[Any], y: Sequence[int] | np.ndarray) -> FeaturePredictor:
        """Digitize (cached), extract features and fit the pipeline; returns ``self``.

        Raises
        ------
        ConfigurationError
            Unknown model, ``len(X) != len(y)``, fewer than two classes.
        """
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        y_arr = np.asarray(y)
        if len(X) != y_arr.size:
            raise ConfigurationError(f"X has {len(X)} sheets but y has {y_arr.size} labels")
        if np.unique(y_arr).size < 2:
            raise ConfigurationError("y must hold at least two classes")
        clf = make_model(self.model, self.random_state, **(self.model_params or {}))
        columns = self._columns()
        feats = self.features(X)[:, columns]
        if self.model == "ensemble":  # PCA needs more sheets than components
            clf.set_params(shape__select__templates__pca__n_components=min(20, y_arr.size - 1))
        steps = [] if self.model == "ensemble" else [  # the ensemble's members preprocess
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler())]
        self.pipeline_ = Pipeline([*steps, ("model", clf)]).fit(feats, y_arr)
        self.classes_ = np.asarray(self.pipeline_.classes_)
        self.feature_names_ = np.asarray(feature_names(STANDARD_LEADS), dtype=object)[columns]
        return self

    def _columns(self) -> np.ndarray:
        """Indices of the feature columns used by the classifier."""
        if self.feature_set not in FEATURE_SETS:
            raise ConfigurationError(f"feature_set must be one of {FEATURE_SETS}; "
                                     f"got {self.feature_set!r}")
        if self.model == "ensemble" and self.feature_set not in ("auto", "all"):
            raise ConfigurationError("the ensemble needs feature_set 'auto' or 'all'; "
                                     f"got {self.feature_set!r}")
        chosen = self.feature_set
        if chosen == "auto":
            chosen = {"logreg": "summary", "ensemble": "all"}.get(self.model, "measures")
        n = {"summary": len(GLOBAL_FEATURES),
             "measures": len(GLOBAL_FEATURES) + len(STANDARD_LEADS) * len(MEASURE_SUFFIXES),
             "all": len(feature_names(STANDARD_LEADS))}[chosen]
        return np.arange(n)

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities, shape (n_sheets, n_classes), columns in ``classes_`` order."""
        self._check_fitted()
        names = list(feature_names(STANDARD_LEADS))
        columns = [names.index(str(n)) for n in self.feature_names_]
        return np.asarray(self.pipeline_.predict_proba(self.features(X)[:, columns]))

    # --- persistence -------------------------------------------------------------------
    def _save_payload(self, directory: Path) -> dict[str, Any]:
        import skops.io as sio

        sio.dump(self.pipeline_, directory / _PAYLOAD)
        return {"file": _PAYLOAD, "features_version": FEATURES_VERSION,
                "feature_names": [str(n) for n in self.feature_names_]}

    def _load_payload(self, directory: Path, info: dict[str, Any]) -> None:
        import skops.io as sio

        path = directory / str(info.get("file", _PAYLOAD))
        if not path.is_file():
            raise ModelFormatError("archive has no skops payload", path=path)
        untrusted = sorted(_payload_types(path) - _PLAIN_TYPES - set(TRUSTED_TYPES))
        untrusted += [t for t in sio.get_untrusted_types(file=path)
                      if t not in TRUSTED_TYPES and t not in untrusted]
        if untrusted:
            raise UnsafeModelError(f"skops payload holds untrusted types {untrusted}", path=path)
        self.pipeline_ = sio.load(path, trusted=list(TRUSTED_TYPES))
        if info.get("features_version") != FEATURES_VERSION:
            warnings.warn(f"model was trained on features version {info.get('features_version')}"
                          f", this library computes version {FEATURES_VERSION}", UserWarning,
                          stacklevel=2)
        self.feature_names_ = np.asarray(info.get("feature_names", feature_names()),
                                         dtype=object)
        unknown = sorted(set(map(str, self.feature_names_)) - set(feature_names()))
        if unknown:
            raise ModelFormatError(f"model uses features this library does not compute: "
                                   f"{unknown[:5]}", path=path)


def _payload_types(path: Path) -> set[str]:
    """Every ``module.class`` named in a skops file's schema (read as JSON, nothing run)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            schema = json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelFormatError(f"corrupt skops payload: {exc}", path=path) from exc
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                found.add(f"{node.get('__module__', '')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def digitize_records(X: Sequence[Any], *, digitize_kwargs: dict[str, Any] | None = None,
                     cache_dir: str | None = None, use_cache: bool = True,
                     verbose: bool = False, consequence: str = "it is skipped"
                     ) -> list[ECGRecord | None]:
    """Digitize sheets through the :class:`~ecgclassify.cache.DigitizationCache`.

    The digitization every record-based predictor shares
    (:class:`FeaturePredictor`, :class:`~ecgclassify.signal_cnn.SignalCNNPredictor`).

    Parameters
    ----------
    X : sequence
        Sheets (paths, bytes, arrays, PIL images) or :class:`~ecgdigitize.record.ECGRecord`
        objects (returned as they are).
    digitize_kwargs : dict, optional
        Arguments of ``ecgdigitize.digitize``; ``fs=500`` unless given. Part of the cache key.
    cache_dir : str, optional
        Cache folder; default :func:`~ecgclassify.cache.default_cache_dir`.
    use_cache : bool, default True
    verbose : bool, default False
        Progress bar on a terminal.
    consequence : str, default "it is skipped"
        End of the :class:`DigitizationWarning` raised for a sheet that fails.

    Returns
    -------
    list of ECGRecord or None
        One per item; None where digitization failed (with a warning).

    Examples
    --------
    >>> import numpy as np
    >>> rec = ECGRecord(np.zeros((5000, 12)), fs=500)
    >>> digitize_records([rec], use_cache=False)[0] is rec   # records pass through
    True
    """
    kwargs = _digitize_args(digitize_kwargs)
    cache = DigitizationCache(cache_dir, digitize_kwargs=kwargs) if use_cache else None
    out: list[ECGRecord | None] = []
    for item in _progress(list(X), verbose, "digitize"):
        if isinstance(item, ECGRecord):
            out.append(item)
            continue
        key = cache.key(_item_hash(item)) if cache is not None else ""
        out.append(_digitize_one(item, cache, key, kwargs, consequence))
    return out


def _digitize_args(digitize_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Arguments of ``ecgdigitize.digitize``: ``fs=500`` unless given (part of the cache key)."""
    return {"fs": 500, **(digitize_kwargs or {})}


def _digitize_one(item: Any, cache: DigitizationCache | None, key: str,
                  kwargs: dict[str, Any], consequence: str = "its features are NaN"
                  ) -> ECGRecord | None:
    cached = cache.get(key) if cache is not None else None
    if isinstance(cached, CachedFailure):
        _warn_failed(item, f"{cached.error}: {cached.message} (cached)", consequence)
        return None
    if isinstance(cached, ECGRecord):
        return cached
    digitize = _digitizer()
    try:
        record = digitize(item, **kwargs)
    except ECGError as exc:
        if cache is not None:
            cache.put(key, exc)
        _warn_failed(item, str(exc), consequence)
        return None
    except Exception as exc:  # a bug in the digitizer must not stop a whole experiment
        _warn_failed(item, f"{type(exc).__name__}: {exc}", consequence)
        return None
    if cache is not None:
        cache.put(key, record, extra={"source": str(item) if isinstance(item, str | Path)
                                      else None})
    return record


def _item_hash(item: Any) -> str:
    if isinstance(item, str | Path | bytes):
        try:
            return content_hash(item)
        except OSError:
            return content_hash(str(item).encode())  # missing file: digitize() names it
    if isinstance(item, np.ndarray):
        return content_hash(item)
    try:  # PIL image
        return content_hash(np.asarray(item))
    except Exception as exc:
        raise ConfigurationError(f"cannot use a {type(item).__name__} as a sheet") from exc


def _digitizer() -> Any:
    try:
        from ecgdigitize import digitize  # type: ignore[attr-defined]
    except ImportError:
        pass
    else:
        return digitize
    try:
        from ecgdigitize.pipeline import digitize
    except ImportError as exc:
        raise MissingDependencyError(
            "ecgdigitize.digitize is not available in this installation; pass ECGRecord "
            "objects instead of images") from exc
    return digitize


def _warn_failed(item: Any, reason: str, consequence: str = "its features are NaN") -> None:
    name = str(item) if isinstance(item, str | Path) else type(item).__name__
    warnings.warn(f"{name}: cannot digitize ({reason}); {consequence}",
                  DigitizationWarning, stacklevel=4)


def _progress(items: list[Any], verbose: bool, desc: str) -> Any:
    if not verbose or len(items) < 2 or not sys.stderr.isatty():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="sheet", leave=False)


for _m in MODEL_CHOICES:
    register_model(f"features-{_m}",
                   lambda _m=_m, **kw: FeaturePredictor(model=_m, **kw))
