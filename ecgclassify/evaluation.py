"""Evaluation of predictors: metrics, reports and grouped cross-validation.

:func:`evaluate_predictions` turns labels, predictions and probabilities into
an :class:`EvaluationReport` (accuracy, error rate, per-class and macro
precision / recall / F1, confusion matrix, one-vs-rest ROC AUC) that renders
to Markdown and JSON and saves a confusion-matrix figure.
:func:`cross_validate_predictors` compares several predictors on the same
folds and returns a :class:`CrossValidationResult` (mean ± SD per metric,
per-fold results, summed confusion matrices). The split protocol's label
(:func:`ecgclassify.splits.protocol_label`) is part of every report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from ecgdigitize.errors import ConfigurationError

from .splits import Protocol, check_no_leakage, grouped_stratified_kfold, protocol_label

__all__ = [
    "CrossValidationResult",
    "EvaluationReport",
    "cross_validate_predictors",
    "evaluate_predictions",
]

_SUMMARY_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "roc_auc_ovr")


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics of one set of predictions.

    Attributes
    ----------
    model : str
        Name of the predictor evaluated.
    protocol : str
        How train and test were split (a label from :func:`protocol_label`).
    class_names : tuple of str
    n_samples : int
    accuracy, error_rate : float
    precision, recall, f1 : tuple of float
        Per class, in ``class_names`` order.
    support : tuple of int
        Test items per class.
    macro_precision, macro_recall, macro_f1 : float
    confusion : tuple of tuple of int
        Rows = true class, columns = predicted class.
    roc_auc_ovr : float
        Macro one-vs-rest ROC AUC (NaN without probabilities or with one class).
    roc_auc_per_class : tuple of float
    notes : tuple of str

    Examples
    --------
    >>> r = evaluate_predictions([0, 1, 1], [0, 1, 0], model="demo", protocol="toy",
    ...                          class_names=["a", "b"])
    >>> r.error_rate, r.support, r.to_dict()["roc_auc_ovr"] is None
    (0.33333333333333337, (1, 2), True)
    >>> print(r.to_markdown().splitlines()[0])
    # Evaluation of `demo`
    """

    model: str
    protocol: str
    class_names: tuple[str, ...]
    n_samples: int
    accuracy: float
    error_rate: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion: tuple[tuple[int, ...], ...]
    roc_auc_ovr: float = float("nan")
    roc_auc_per_class: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (NaN as None), JSON-ready."""
        return _nan_to_none(asdict(self))

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """A Markdown report: protocol, summary metrics, per-class table, confusion matrix."""
        lines = [f"# Evaluation of `{self.model}`", "", f"**Protocol: {self.protocol}**", "",
                 f"- samples: {self.n_samples}",
                 f"- accuracy: {self.accuracy:.3f} (error rate {self.error_rate:.3f})",
                 f"- macro precision / recall / F1: {self.macro_precision:.3f} / "
                 f"{self.macro_recall:.3f} / {self.macro_f1:.3f}",
                 f"- one-vs-rest ROC AUC (macro): {_fmt(self.roc_auc_ovr)}", "",
                 "| class | precision | recall | F1 | ROC AUC | support |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]
        aucs = self.roc_auc_per_class or (float("nan"),) * len(self.class_names)
        for row in zip(self.class_names, self.precision, self.recall, self.f1, aucs,
                       self.support, strict=True):
            lines.append(f"| {row[0]} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3f} | "
                         f"{_fmt(row[4])} | {row[5]} |")
        lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
                  confusion_markdown(self.confusion, self.class_names)]
        lines += [f"\n> {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``report.md``, ``report.json`` and ``confusion_matrix.png``; return the folder."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")
        (out / "report.json").write_text(self.to_json(), encoding="utf-8")
        plot_confusion(self.confusion, self.class_names, out / "confusion_matrix.png",
                       title=f"{self.model}\n{self.protocol}")
        return out


def evaluate_predictions(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                         proba: np.ndarray | None = None, *, model: str = "model",
                         protocol: str = "unspecified", class_names: Sequence[str] | None = None,
                         labels: Sequence[int] | np.ndarray | None = None,
                         notes: Sequence[str] = ()) -> EvaluationReport:
    """Compute an :class:`EvaluationReport`.

    Parameters
    ----------
    y_true, y_pred : sequence of int
        True and predicted class indices.
    proba : ndarray (n, n_classes), optional
        Class probabilities, columns in ``labels`` order (for ROC AUC).
    model, protocol : str
        Names written into the report.
    class_names : sequence of str, optional
        Default: :data:`ecgclassify.base.CLASS_NAMES` for the labels.
    labels : sequence of int, optional
        Class indices, default ``0..max(y)``.
    notes : sequence of str, optional
        Remarks appended to the report.

    Returns
    -------
    EvaluationReport
        Accuracy, per-class and macro precision/recall/F1 (macro over the
        classes present in ``y_true``), confusion matrix, ROC AUC.

    Raises
    ------
    ConfigurationError
        Length mismatch, empty input, or ``proba`` not of shape (n, n_labels).

    Examples
    --------
    >>> r = evaluate_predictions([0, 0, 1, 1], [0, 1, 1, 1], labels=[0, 1],
    ...                          class_names=["a", "b"])
    >>> r.accuracy, r.confusion
    (0.75, ((1, 1), (0, 2)))
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.size == 0 or yt.shape != yp.shape:
        raise ConfigurationError(f"y_true {yt.shape} and y_pred {yp.shape} must match, non-empty")
    labs = np.asarray(labels) if labels is not None else np.arange(int(max(yt.max(), yp.max())) + 1)
    if proba is not None and np.shape(proba) != (yt.size, labs.size):
        raise ConfigurationError(f"proba must have shape {(yt.size, labs.size)} (samples, "
                                 f"labels); got {np.shape(proba)}")
    names = tuple(class_names) if class_names is not None else _default_names(labs)
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labs, zero_division=0)
    present = s > 0
    cm = confusion_matrix(yt, yp, labels=labs)
    auc, auc_cls = _roc_auc(yt, proba, labs)
    acc = float(np.mean(yt == yp))
    return EvaluationReport(
        model=model, protocol=protocol, class_names=names, n_samples=int(yt.size),
        accuracy=acc, error_rate=1.0 - acc, precision=_floats(p), recall=_floats(r),
        f1=_floats(f), support=tuple(int(v) for v in s),
        macro_precision=float(np.mean(p[present])), macro_recall=float(np.mean(r[present])),
        macro_f1=float(np.mean(f[present])),
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        roc_auc_ovr=auc, roc_auc_per_class=auc_cls, notes=tuple(notes))


def _roc_auc(yt: np.ndarray, proba: np.ndarray | None, labs: np.ndarray
             ) -> tuple[float, tuple[float, ...]]:
    from sklearn.metrics import roc_auc_score

    if proba is None:
        return float("nan"), ()
    proba = np.asarray(proba, dtype=float)
    per = []
    for k, lab in enumerate(labs):
        pos = yt == lab
        per.append(float(roc_auc_score(pos, proba[:, k])) if 0 < pos.sum() < yt.size
                   else float("nan"))
    finite = [a for a in per if np.isfinite(a)]
    return (float(np.mean(finite)) if finite else float("nan")), tuple(per)


@dataclass(frozen=True)
class CrossValidationResult:
    """Comparison of predictors over the same folds.

    Attributes
    ----------
    protocol : str
        Split protocol label (LEAKY or GROUPED ...).
    n_splits, seed : int
    class_names : tuple of str
    folds : mapping of str to tuple of EvaluationReport
        Per model, one report per fold.
    pooled : mapping of str to EvaluationReport
        Per model, the report of all out-of-fold predictions together
        (its confusion matrix is the sum over folds).
    fit_time_s : mapping of str to tuple of float
        Per model, fit + predict wall time per fold, s.

    Examples
    --------
    See :func:`cross_validate_predictors`.

    >>> rep = evaluate_predictions([0, 1], [0, 1], model="m")
    >>> cv = CrossValidationResult("toy", 2, 0, rep.class_names, {"m": (rep, rep)}, {"m": rep})
    >>> cv.summary()["m"]["accuracy"]
    (1.0, 0.0)
    """

    protocol: str
    n_splits: int
    seed: int
    class_names: tuple[str, ...]
    folds: Mapping[str, tuple[EvaluationReport, ...]]
    pooled: Mapping[str, EvaluationReport]
    fit_time_s: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """``{model: {metric: (mean, sd)}}`` over folds."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for name, reports in self.folds.items():
            out[name] = {}
            for metric in _SUMMARY_METRICS:
                v = np.array([getattr(r, metric) for r in reports], dtype=float)
                sd = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan")
                out[name][metric] = (float(np.nanmean(v)) if np.isfinite(v).any()
                                     else float("nan"), sd)
        return out

    def to_markdown(self) -> str:
        """Comparison table (mean ± SD over folds) plus each model's summed confusion matrix."""
        head = " | ".join(_SUMMARY_METRICS)
        lines = [f"**Protocol: {self.protocol}** — {self.n_splits}-fold, seed {self.seed}", "",
                 f"| model | {head} |", "| --- |" + " ---: |" * len(_SUMMARY_METRICS)]
        for name, metrics in self.summary().items():
            cells = " | ".join(f"{_fmt(m)} ± {_fmt(s)}" for m, s in metrics.values())
            lines.append(f"| {name} | {cells} |")
        for name, rep in self.pooled.items():
            lines += ["", f"Summed confusion matrix, `{name}` ({self.protocol}); "
                      f"pooled accuracy {rep.accuracy:.3f}, macro-F1 {rep.macro_f1:.3f}:", "",
                      confusion_markdown(rep.confusion, self.class_names)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: protocol, summary, per-fold and pooled reports."""
        return _nan_to_none({
            "protocol": self.protocol, "n_splits": self.n_splits, "seed": self.seed,
            "class_names": list(self.class_names),
            "summary": {m: {k: {"mean": v[0], "sd": v[1]} for k, v in s.items()}
                        for m, s in self.summary().items()},
            "folds": {m: [asdict(r) for r in reps] for m, reps in self.folds.items()},
            "pooled": {m: asdict(r) for m, r in self.pooled.items()},
            "fit_time_s": {m: list(v) for m, v in self.fit_time_s.items()},
        })

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``comparison.md``, ``comparison.json`` and one confusion PNG per model."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.md").write_text(self.to_markdown(), encoding="utf-8")
        (out / "comparison.json").write_text(self.to_json(), encoding="utf-8")
        for name, rep in self.pooled.items():
            plot_confusion(rep.confusion, self.class_names, out / f"confusion_{name}.png",
                           title=f"{name}\n{self.protocol}")
        return out


def cross_validate_predictors(predictors: Mapping[str, Any], X: Sequence[Any],
                              y: Sequence[int] | np.ndarray,
                              groups: Sequence[Any] | np.ndarray | None = None,
                              n_splits: int = 5, protocol: Protocol = "grouped", seed: int = 0,
                              *, group_name: str = "content sha256",
                              class_names: Sequence[str] | None = None,
                              leakage_groups: Sequence[Any] | np.ndarray | None = None,
                              progress: Callable[[str], None] | None = None
                              ) -> CrossValidationResult:
    """Cross-validate several predictors on the same stratified folds.

    Parameters
    ----------
    predictors : mapping of str to predictor
        Unfitted estimators (cloned for each fold).
    X : sequence
        Sheets (paths, arrays) or records.
    y : sequence of int
    groups : sequence, optional
        Group per item (required for ``protocol="grouped"``).
    n_splits : int, default 5
    protocol : {"grouped", "leaky"}, default "grouped"
        ``"leaky"`` splits per file (duplicates cross the split).
    seed : int, default 0
    group_name : str, default "content sha256"
        What ``groups`` are, for the protocol label.
    class_names : sequence of str, optional
    leakage_groups : sequence, optional
        Content hashes to check against leakage in every fold when ``groups``
        are something else (e.g. printed IDs).
    progress : callable, optional
        Called with a short message after each fold (for scripts).

    Returns
    -------
    CrossValidationResult
        Per-fold and pooled out-of-fold reports of every predictor, and fit times.

    Raises
    ------
    ConfigurationError
        No predictors, length mismatch, bad protocol.
    LeakageError
        A fold shares a group (or a leakage group) between train and test.

    Examples
    --------
    Any scikit-learn classifier works; here on one feature per item:

    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X = [[float(i % 2)] for i in range(12)]
    >>> y = [i % 2 for i in range(12)]
    >>> groups = [f"sheet{i // 2}" for i in range(12)]  # copies share a group
    >>> cv = cross_validate_predictors({"knn": KNeighborsClassifier(1),
    ...                                 "prior": DummyClassifier()}, X, y, groups, n_splits=3)
    >>> {m: rep.accuracy for m, rep in cv.pooled.items()}
    {'knn': 1.0, 'prior': 0.5}
    """
    if not predictors:
        raise ConfigurationError("predictors is empty")
    y_arr = np.asarray(y)
    if len(X) != y_arr.size:
        raise ConfigurationError(f"X has {len(X)} items, y has {y_arr.size}")
    label = protocol_label(protocol, group_name)
    labs = np.unique(y_arr)
    names = tuple(class_names) if class_names is not None else _default_names(labs)
    folds: dict[str, list[EvaluationReport]] = {m: [] for m in predictors}
    times: dict[str, list[float]] = {m: [] for m in predictors}
    oof_pred = {m: np.zeros(y_arr.size, dtype=y_arr.dtype) for m in predictors}
    oof_proba = {m: np.full((y_arr.size, labs.size), np.nan) for m in predictors}
    splits = grouped_stratified_kfold(y_arr, groups, n_splits, seed, protocol=protocol)
    for k, (tr, te) in enumerate(splits):
        if leakage_groups is not None:
            lg = np.asarray([str(v) for v in leakage_groups], dtype=object)
            check_no_leakage(lg[tr], lg[te], protocol=protocol)
        for name, est in predictors.items():
            t0 = time.perf_counter()
            fitted = clone(est).fit([X[i] for i in tr], y_arr[tr])
            proba = _aligned_proba(fitted, [X[i] for i in te], labs)
            pred = labs[np.argmax(proba, axis=1)]
            times[name].append(time.perf_counter() - t0)
            oof_pred[name][te], oof_proba[name][te] = pred, proba
            folds[name].append(evaluate_predictions(
                y_arr[te], pred, proba, model=name, protocol=f"{label}, fold {k + 1}",
                class_names=names, labels=labs))
            if progress is not None:
                progress(f"fold {k + 1}/{n_splits} {name}: macro-F1 "
                         f"{folds[name][-1].macro_f1:.3f}")
    pooled = {m: evaluate_predictions(y_arr, oof_pred[m], oof_proba[m], model=m, protocol=label,
                                      class_names=names, labels=labs) for m in predictors}
    return CrossValidationResult(label, n_splits, seed, names,
                                 {m: tuple(v) for m, v in folds.items()}, pooled,
                                 {m: tuple(v) for m, v in times.items()})


def _aligned_proba(fitted: Any, X: Sequence[Any], labs: np.ndarray) -> np.ndarray:
    """predict_proba with columns for every label (a class absent from a fold gets 0)."""
    proba = np.asarray(fitted.predict_proba(X), dtype=float)
    out = np.zeros((proba.shape[0], labs.size))
    for j, c in enumerate(np.asarray(fitted.classes_)):
        out[:, int(np.flatnonzero(labs == c)[0])] = proba[:, j]
    return out


# --- rendering helpers ------------------------------------------------------------------
def confusion_markdown(cm: Sequence[Sequence[int]], class_names: Sequence[str]) -> str:
    """A confusion matrix as a Markdown table (rows true, columns predicted)."""
    head = "| true \\ predicted | " + " | ".join(class_names) + " |"
    sep = "| --- |" + " ---: |" * len(class_names)
    rows = [f"| {n} | " + " | ".join(str(int(v)) for v in row) + " |"
            for n, row in zip(class_names, cm, strict=True)]
    return "\n".join([head, sep, *rows])


def plot_confusion(cm: Sequence[Sequence[int]], class_names: Sequence[str],
                   path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Save a confusion-matrix heat map (matplotlib, Agg backend) to ``path``."""
    from matplotlib.figure import Figure

    arr = np.asarray(cm, dtype=float)
    fig = Figure(figsize=(5.5, 4.8), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(arr, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=8)
    for i, j in np.ndindex(arr.shape):
        ax.text(j, i, f"{int(arr[i, j])}", ha="center", va="center",
                color="white" if arr[i, j] > arr.max() / 2 else "black", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def _default_names(labs: np.ndarray) -> tuple[str, ...]:
    from .base import CLASS_NAMES

    return tuple(CLASS_NAMES.get(int(v), str(v)) for v in labs)


def _floats(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in a)


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
