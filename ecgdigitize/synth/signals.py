"""Signals to draw: simulated 12-lead records and WFDB records from disk."""

from __future__ import annotations

import os

import numpy as np

from ..errors import MissingDependencyError
from ..record import STANDARD_LEADS, ECGRecord

__all__ = ["load_record", "simulate_record"]


def simulate_record(duration_s: float = 10.0, fs: float = 500.0, heart_rate: float = 70.0,
                    seed: int = 0, *, noise_mv: float = 0.01) -> ECGRecord:
    """Simulate a 12-lead ECG with NeuroKit2 (``ecg_simulate(method="multileads")``).

    Parameters
    ----------
    duration_s : float, default 10
        Length, s.
    fs : float, default 500
        Sampling rate, Hz.
    heart_rate : float, default 70
        Beats per minute.
    seed : int, default 0
        Random state of the simulation.
    noise_mv : float, default 0.01
        Standard deviation of the simulated noise (NeuroKit2's ``noise``), mV.

    Returns
    -------
    ECGRecord
        Standard 12 leads in mV, named ``"sim<seed>"``.

    Raises
    ------
    MissingDependencyError
        If NeuroKit2 is not installed (``pip install ecgdigitize[classify]``).

    Examples
    --------
    >>> rec = simulate_record(duration_s=10, fs=250, seed=3)
    >>> rec.signal.shape, rec.lead_names[:3]
    ((2500, 12), ('I', 'II', 'III'))
    """
    try:
        import neurokit2 as nk
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "simulate_record needs neurokit2: pip install 'ecgdigitize[classify]'") from exc
    df = nk.ecg_simulate(duration=duration_s, sampling_rate=round(fs), noise=noise_mv,
                         heart_rate=heart_rate, method="multileads", random_state=seed)
    signal = np.column_stack([df[lead].to_numpy(dtype=float) for lead in STANDARD_LEADS])
    return ECGRecord(signal, fs=float(round(fs)), lead_names=STANDARD_LEADS, name=f"sim{seed}")


def load_record(path: str | os.PathLike[str]) -> ECGRecord:
    """Read a WFDB record (``.hea`` path, or path without extension).

    Parameters
    ----------
    path : str or os.PathLike
        The record's ``.hea`` file, or its path without extension.

    Returns
    -------
    ECGRecord
        Signal in mV, sampling rate and lead names of the record.

    Raises
    ------
    UnreadableImageError
        If the record cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> rec = simulate_record(fs=100)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     load_record(rec.to_wfdb(d)).n_leads
    12
    """
    return ECGRecord.from_wfdb(path)
