"""Tests for ecgdigitize/errors.py: one hierarchy, messages that name the file."""

from __future__ import annotations

import pickle

import pytest

from ecgdigitize import errors


def _all_error_classes() -> list[type[errors.ECGError]]:
    return [getattr(errors, n) for n in errors.__all__]


@pytest.mark.parametrize("cls", _all_error_classes())
def test_every_error_derives_from_the_base(cls: type[errors.ECGError]) -> None:
    assert issubclass(cls, errors.ECGError)
    err = cls("something failed", path="dir/sheet.png")
    assert str(err) == "dir/sheet.png: something failed"
    assert err.path == "dir/sheet.png"
    assert err.reason == "something failed"


@pytest.mark.parametrize("cls", _all_error_classes())
def test_errors_survive_pickling_with_their_path(cls: type[errors.ECGError]) -> None:
    # Batch workers send errors across processes.
    err = pickle.loads(pickle.dumps(cls("bad", path="x.jpg")))
    assert type(err) is cls
    assert (err.path, err.reason) == ("x.jpg", "bad")


def test_errors_keep_builtin_bases_for_plain_except_clauses() -> None:
    assert issubclass(errors.UnreadableImageError, ValueError)
    assert issubclass(errors.NoGridFoundError, RuntimeError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert str(errors.ConfigurationError("fs must be positive")) == "fs must be positive"
