"""ecgdigitize: paper 12-lead ECG sheets to calibrated signals.

The pipeline is a chain of small pure stages (load → grid → geometry →
layout → traces → calibrate → clean → output); :func:`digitize` strings them
together. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from .errors import ECGError
from .io import load_image
from .record import STANDARD_LEADS, ECGRecord

__version__ = "0.1.0"

__all__ = ["STANDARD_LEADS", "ECGError", "ECGRecord", "__version__", "load_image"]
