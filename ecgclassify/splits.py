"""Leakage-free splits: every copy of a sheet lands on one side.

Splits are by **group** (the SHA-256 of a file's bytes, see
:mod:`ecgclassify.datasets`), stratified by class, on scikit-learn's
:class:`~sklearn.model_selection.StratifiedGroupKFold`. The per-file
``"leaky"`` protocol exists only to reproduce published numbers; it must be
asked for explicitly and is labelled :data:`LEAKY_LABEL` in every report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ecgdigitize.errors import ConfigurationError, LeakageError

__all__ = [
    "GROUPED_LABEL",
    "LEAKY_LABEL",
    "Protocol",
    "check_no_leakage",
    "grouped_stratified_kfold",
    "grouped_train_test_split",
    "protocol_label",
]

Protocol = Literal["grouped", "leaky"]
#: Label of the per-file protocol, printed in every report that uses it.
LEAKY_LABEL = "LEAKY (per-file, duplicates cross the split)"
#: Label of the grouped protocol.
GROUPED_LABEL = "GROUPED (stratified, all copies of a group on one side)"


def protocol_label(protocol: str, group_name: str = "content sha256") -> str:
    """Human label of a protocol, e.g. ``"GROUPED by content sha256 (...)"``.

    Parameters
    ----------
    protocol : {"grouped", "leaky"}
        The split protocol.
    group_name : str, default "content sha256"
        What the groups are (written into the grouped label).

    Returns
    -------
    str
        The label printed in every report.

    Raises
    ------
    ConfigurationError
        Unknown protocol.

    Examples
    --------
    >>> protocol_label("grouped", "printed ID")
    'GROUPED by printed ID (stratified, all copies of a group on one side)'
    >>> protocol_label("leaky") == LEAKY_LABEL
    True
    """
    if protocol == "leaky":
        return LEAKY_LABEL
    if protocol == "grouped":
        return f"GROUPED by {group_name} (stratified, all copies of a group on one side)"
    raise ConfigurationError(f"protocol must be 'grouped' or 'leaky'; got {protocol!r}")


def check_no_leakage(train_groups: Sequence[Any], test_groups: Sequence[Any], *,
                     protocol: str = "grouped") -> None:
    """Raise :class:`LeakageError` if a group is on both sides of a split.

    Parameters
    ----------
    train_groups, test_groups : sequence
        Group of each training / test item.
    protocol : {"grouped", "leaky"}, default "grouped"
        ``"leaky"`` skips the check (explicit opt-in to per-file splits).

    Raises
    ------
    LeakageError
        Shared groups, naming how many and a few of them.

    Examples
    --------
    >>> check_no_leakage(["a", "b"], ["c"])
    >>> check_no_leakage(["a", "b"], ["b"])
    Traceback (most recent call last):
    ...
    ecgdigitize.errors.LeakageError: 1 group(s) on both sides of the split (e.g. 'b') ...
    """
    if protocol == "leaky":
        return
    protocol_label(protocol)
    shared = set(map(str, train_groups)) & set(map(str, test_groups))
    if shared:
        some = ", ".join(repr(s) for s in sorted(shared)[:3])
        raise LeakageError(
            f"{len(shared)} group(s) on both sides of the split (e.g. {some}) ; identical "
            "sheets would be trained and tested on. Split by group, or pass "
            "protocol='leaky' to reproduce per-file numbers knowingly")


def _check_inputs(y: Sequence[int] | np.ndarray, groups: Sequence[Any] | np.ndarray | None,
                  n_splits: int) -> tuple[np.ndarray, np.ndarray | None]:
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.size == 0:
        raise ConfigurationError(f"y must be a non-empty 1-D array; got shape {y_arr.shape}")
    g = None if groups is None else np.asarray([str(v) for v in groups], dtype=object)
    if g is not None and g.shape != y_arr.shape:
        raise ConfigurationError(f"groups has {g.size} items, y has {y_arr.size}")
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ConfigurationError(f"n_splits must be an integer >= 2; got {n_splits!r}")
    return y_arr, g


def grouped_stratified_kfold(y: Sequence[int] | np.ndarray,
                             groups: Sequence[Any] | np.ndarray | None, n_splits: int = 5,
                             seed: int = 0, *, protocol: Protocol = "grouped"
                             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(train_idx, test_idx)`` for stratified K-fold by group.

    Parameters
    ----------
    y : sequence of int
        Class of each item.
    groups : sequence
        Group of each item (required unless ``protocol="leaky"``).
    n_splits : int, default 5
    seed : int, default 0
        Shuffling seed.
    protocol : {"grouped", "leaky"}, default "grouped"
        ``"leaky"``: per-file :class:`~sklearn.model_selection.StratifiedKFold`
        (copies cross the split; only to reproduce published numbers).

    Yields
    ------
    train_idx, test_idx : ndarray of int
        Indices into ``y`` of each fold's training and test items.

    Raises
    ------
    ConfigurationError
        Bad inputs, fewer groups than folds, no groups for a grouped split
        (raised when iteration starts: this is a generator).
    LeakageError
        Never expected; a fold that shares a group (a bug) is refused.

    Examples
    --------
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> g = ["a", "a", "b", "c", "d", "d", "e", "f"]
    >>> folds = list(grouped_stratified_kfold(y, g, n_splits=2))
    >>> sorted(len(te) for _, te in folds)
    [4, 4]
    """
    y_arr, g = _check_inputs(y, groups, n_splits)
    if protocol == "leaky":
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        yield from splitter.split(np.zeros(y_arr.size), y_arr)
        return
    protocol_label(protocol)
    if g is None:
        raise ConfigurationError("a grouped split needs groups (e.g. the content sha256)")
    if len(set(g)) < n_splits:
        raise ConfigurationError(f"{len(set(g))} groups cannot make {n_splits} folds")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(y_arr.size), y_arr, g):
        check_no_leakage(g[train], g[test])
        yield train, test


def grouped_train_test_split(y: Sequence[int] | np.ndarray,
                             groups: Sequence[Any] | np.ndarray | None,
                             test_size: float = 0.2, seed: int = 0, *,
                             protocol: Protocol = "grouped") -> tuple[np.ndarray, np.ndarray]:
    """One stratified, grouped train/test split: ``(train_idx, test_idx)``.

    The test share is approximated by the fold size ``round(1 / test_size)``
    of :func:`grouped_stratified_kfold` (its first fold).

    Parameters
    ----------
    y, groups, seed, protocol
        As in :func:`grouped_stratified_kfold`.
    test_size : float, default 0.2
        Fraction of items in the test set, in (0, 0.5].

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Indices into ``y``; no group is on both sides.

    Raises
    ------
    ConfigurationError
        ``test_size`` out of range, or as in :func:`grouped_stratified_kfold`.

    Examples
    --------
    >>> tr, te = grouped_train_test_split([0] * 10 + [1] * 10, [i // 2 for i in range(20)],
    ...                                   test_size=0.2)
    >>> len(tr), len(te)
    (16, 4)
    """
    if not 0.0 < test_size <= 0.5:
        raise ConfigurationError(f"test_size must be in (0, 0.5]; got {test_size!r}")
    n_splits = max(2, round(1.0 / test_size))
    return next(iter(grouped_stratified_kfold(y, groups, n_splits, seed, protocol=protocol)))
