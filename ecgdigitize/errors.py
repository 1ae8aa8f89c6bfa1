"""The one error hierarchy of the project.

Every error raised on purpose by :mod:`ecgdigitize` or :mod:`ecgclassify`
derives from :class:`ECGError`, so a caller (a batch job, a web service) can
catch exactly the project's errors and let real bugs surface.

Errors about one input carry the offending ``path`` (or ``None`` for in-memory
input) and a short ``reason``; ``str(error)`` names both.

Examples
--------
>>> from ecgdigitize.errors import ECGError, NoGridFoundError
>>> try:
...     raise NoGridFoundError("no periodic grid found", path="sheet.png")
... except ECGError as err:
...     print(err)
sheet.png: no periodic grid found
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = [
    "ConfigurationError",
    "ConversionTimeoutError",
    "DigitizationError",
    "ECGError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InputError",
    "LayoutNotFoundError",
    "LeakageError",
    "MissingDependencyError",
    "ModelFormatError",
    "NoGridFoundError",
    "NoTracesFoundError",
    "NotFittedError",
    "UnreadableImageError",
    "UnsafeModelError",
    "WeightsUnavailableError",
]


class ECGError(Exception):
    """Base class of every error the project raises on purpose.

    Parameters
    ----------
    reason : str
        What went wrong, in one sentence a user can act on.
    path : str or os.PathLike, optional
        The file the error is about, if any.
    """

    def __init__(self, reason: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.reason = str(reason)
        super().__init__(self.reason)
        # set after the base __init__: ImportError's own __init__ resets ``path``
        self.path = None if path is None else os.fspath(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self) -> tuple[Callable[..., ECGError], tuple[Any, ...]]:
        # keep path across pickling (multiprocessing, Dask)
        return (_rebuild_error, (type(self), self.reason, self.path))


def _rebuild_error(cls: type[ECGError], reason: str, path: str | None) -> ECGError:
    return cls(reason, path=path)


# --- input -----------------------------------------------------------------
class InputError(ECGError, ValueError):
    """The input cannot be used: unreadable, too large, too small, wrong type."""


class UnreadableImageError(InputError):
    """The file is missing, a directory, empty, truncated or not an image/PDF."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured limit (decompression bomb guard)."""


class ImageTooSmallError(InputError):
    """The image is too small to hold a readable ECG."""


# --- digitization ----------------------------------------------------------
class DigitizationError(ECGError, RuntimeError):
    """A readable image in which no ECG could be found."""


class NoGridFoundError(DigitizationError):
    """Neither a grid, nor a calibration pulse, nor a usable page size gave a scale."""


class LayoutNotFoundError(DigitizationError):
    """No arrangement of lead panels could be found on the sheet."""


class NoTracesFoundError(DigitizationError):
    """The sheet holds no ECG trace (blank page, photo without an ECG...)."""


# --- configuration and models -----------------------------------------------
class ConversionTimeoutError(DigitizationError):
    """Converting one file took longer than the time limit set for it (``timeout_s``)."""


class ConfigurationError(ECGError, ValueError):
    """An argument or configuration value is invalid."""


class LeakageError(ECGError, ValueError):
    """A split would put the same group (identical sheet) on both sides."""


class NotFittedError(ECGError, AttributeError):
    """A predictor was used before ``fit`` (or ``load``)."""


class ModelFormatError(ECGError, ValueError):
    """A saved model is missing, corrupt, or of an unknown kind or version."""


class UnsafeModelError(ModelFormatError):
    """A model file would execute code when loaded (pickle, unsafe Keras layer)."""


class MissingDependencyError(ECGError, ImportError):
    """An optional dependency (TensorFlow, LiteRT, Dask...) is not installed."""


class WeightsUnavailableError(ECGError, RuntimeError):
    """Pretrained weights were asked for but cannot be downloaded or found."""
