"""ecgdigitize: paper 12-lead ECG sheets to calibrated signals.

The pipeline is a chain of small pure stages (load → grid → geometry →
layout → traces → calibrate → clean → output); :func:`digitize` strings them
together. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from .config import DigitizeConfig
from .errors import ECGError
from .io import load_image
from .pipeline import digitize, digitize_panels
from .record import STANDARD_LEADS, ECGRecord
from .result import DigitizedECG

__version__ = "0.1.0"

__all__ = [
    "STANDARD_LEADS",
    "DigitizeConfig",
    "DigitizedECG",
    "ECGError",
    "ECGRecord",
    "__version__",
    "digitize",
    "digitize_panels",
    "load_image",
]
