"""ecgclassify: 4-class ECG sheet classification, classical features and CNNs side by side.

Classes (as in the reference data set): 0 myocardial infarction, 1 abnormal
heartbeat, 2 normal, 3 history of MI. TensorFlow is imported only by the CNN
predictor, when it is used.
"""

from __future__ import annotations

from .base import CLASS_NAMES, BasePredictor, load_predictor

__all__ = ["CLASS_NAMES", "BasePredictor", "load_predictor"]
