"""Tests of ecgclassify.splits: grouped folds never leak, leaky needs opting in."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgclassify.splits import (
    LEAKY_LABEL,
    check_no_leakage,
    grouped_stratified_kfold,
    grouped_train_test_split,
    protocol_label,
)
from ecgdigitize.errors import ConfigurationError, LeakageError


def _dataset(n_groups: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 1-4 identical copies, 4 classes; a group never spans classes."""
    rng = np.random.default_rng(seed)
    y, g = [], []
    for k in range(n_groups):
        copies = int(rng.integers(1, 5))
        y += [k % 4] * copies
        g += [f"h{k}"] * copies
    return np.asarray(y), np.asarray(g)


def test_grouped_folds_partition_and_never_share_a_group() -> None:
    y, g = _dataset()
    seen = np.zeros(y.size, int)
    for tr, te in grouped_stratified_kfold(y, g, n_splits=5, seed=1):
        assert not set(g[tr]) & set(g[te])
        assert set(np.unique(y[te])) == {0, 1, 2, 3}  # stratified: every class in every fold
        seen[te] += 1
    assert (seen == 1).all()


def test_seed_changes_folds_and_is_reproducible() -> None:
    y, g = _dataset()
    a = [te.tolist() for _, te in grouped_stratified_kfold(y, g, 5, seed=0)]
    b = [te.tolist() for _, te in grouped_stratified_kfold(y, g, 5, seed=0)]
    c = [te.tolist() for _, te in grouped_stratified_kfold(y, g, 5, seed=7)]
    assert a == b and a != c


def test_leaky_protocol_lets_copies_cross() -> None:
    y, g = _dataset()
    shared = [len(set(g[tr]) & set(g[te]))
              for tr, te in grouped_stratified_kfold(y, g, 5, seed=0, protocol="leaky")]
    assert sum(shared) > 0
    assert protocol_label("leaky") == LEAKY_LABEL == "LEAKY (per-file, duplicates cross the split)"
    assert "GROUPED by printed ID" in protocol_label("grouped", "printed ID")


def test_check_no_leakage() -> None:
    check_no_leakage(["a", "b"], ["c"])
    with pytest.raises(LeakageError, match="1 group"):
        check_no_leakage(["a", "b"], ["b", "c"])
    check_no_leakage(["a"], ["a"], protocol="leaky")  # explicit opt-in
    with pytest.raises(ConfigurationError, match="protocol"):
        check_no_leakage(["a"], ["b"], protocol="random")


def test_bad_inputs_are_refused() -> None:
    y, g = _dataset(10)
    with pytest.raises(ConfigurationError, match="groups"):
        list(grouped_stratified_kfold(y, None, 5))
    with pytest.raises(ConfigurationError, match="n_splits"):
        list(grouped_stratified_kfold(y, g, 1))
    with pytest.raises(ConfigurationError, match="items"):
        list(grouped_stratified_kfold(y, g[:-1], 5))
    with pytest.raises(ConfigurationError, match="cannot make"):
        list(grouped_stratified_kfold(y[:3], ["a", "a", "b"], 3))
    with pytest.raises(ConfigurationError, match="test_size"):
        grouped_train_test_split(y, g, test_size=0.9)


def test_train_test_split_share() -> None:
    y, g = _dataset(100, seed=2)
    tr, te = grouped_train_test_split(y, g, test_size=0.25, seed=0)
    assert not set(g[tr]) & set(g[te])
    assert 0.15 < te.size / y.size < 0.35
    assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == y.size


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4), min_size=10, max_size=40),
       st.integers(min_value=2, max_value=5), st.integers(0, 1000))
def test_no_group_crosses_any_fold(copies: list[int], n_splits: int, seed: int) -> None:
    y = np.concatenate([[k % 2] * c for k, c in enumerate(copies)])
    g = np.concatenate([[f"g{k}"] * c for k, c in enumerate(copies)])
    for tr, te in grouped_stratified_kfold(y, g, n_splits, seed):
        assert not set(g[tr]) & set(g[te])
