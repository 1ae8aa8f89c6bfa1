"""The 12-lead recording model shared by every part of the project.

An :class:`ECGRecord` carries the signal in millivolts together with its
sampling rate and lead names, as ``wfdb.Record`` does, and converts to and from
WFDB, CSV, NumPy and pandas. It is frozen: stages return new records.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigurationError, UnreadableImageError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["LIMB_LEADS", "PRECORDIAL_LEADS", "STANDARD_LEADS", "ECGRecord"]

LIMB_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF")
PRECORDIAL_LEADS: tuple[str, ...] = ("V1", "V2", "V3", "V4", "V5", "V6")
#: The standard 12 leads, in the order of most ECG files.
STANDARD_LEADS: tuple[str, ...] = LIMB_LEADS + PRECORDIAL_LEADS

#: WFDB stores integers; 1000 ADC units per mV keeps 1 µV resolution.
_WFDB_GAIN_ADU_PER_MV = 1000.0


@dataclass(frozen=True, eq=False)
class ECGRecord:
    """A multi-lead ECG recording in physical units.

    Parameters
    ----------
    signal : ndarray of shape (n_samples, n_leads)
        Voltage in mV (float64). ``NaN`` marks samples where a lead was not
        printed on the sheet or could not be recovered.
    fs : float
        Sampling rate in Hz.
    lead_names : sequence of str, default STANDARD_LEADS
        One name per column of ``signal``.
    name : str, default "ecg"
        Record name, used as the WFDB record name and file stem.
    lead_info : mapping of str to mapping, optional
        Optional per-lead metadata (for a digitized record: quality score,
        time window in s, ...), keyed by lead name.
    comments : sequence of str, optional
        Free-text comments, written to the WFDB header.

    Examples
    --------
    >>> import numpy as np
    >>> rec = ECGRecord(np.zeros((5000, 12)), fs=500)
    >>> rec.duration_s, rec.n_leads
    (10.0, 12)
    >>> rec.lead("II").shape
    (5000,)
    """

    signal: np.ndarray
    fs: float
    lead_names: tuple[str, ...] = STANDARD_LEADS
    name: str = "ecg"
    lead_info: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    comments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        sig = np.asarray(self.signal, dtype=np.float64)
        if sig.ndim == 1:
            sig = sig[:, None]
        if sig.ndim != 2:
            raise ConfigurationError(
                f"signal must be 2-D (n_samples, n_leads); got shape {sig.shape}"
            )
        names = tuple(str(n) for n in self.lead_names)
        if len(names) != sig.shape[1]:
            raise ConfigurationError(
                f"{len(names)} lead names for a signal with {sig.shape[1]} leads"
            )
        if len(set(names)) != len(names):
            raise ConfigurationError(f"lead names must be unique; got {names}")
        if not (np.isfinite(self.fs) and self.fs > 0):
            raise ConfigurationError(f"fs must be a positive number of Hz; got {self.fs!r}")
        sig.setflags(write=False)
        object.__setattr__(self, "signal", sig)
        object.__setattr__(self, "fs", float(self.fs))
        object.__setattr__(self, "lead_names", names)
        object.__setattr__(self, "comments", tuple(self.comments))
        object.__setattr__(self, "lead_info", {k: dict(v) for k, v in self.lead_info.items()})

    # --- basic properties --------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signal.shape[0])

    @property
    def n_leads(self) -> int:
        """Number of leads."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.n_samples / self.fs

    @property
    def time_s(self) -> np.ndarray:
        """Time of each sample in seconds, starting at 0."""
        return np.arange(self.n_samples) / self.fs

    def lead(self, name: str) -> np.ndarray:
        """Return one lead's signal in mV (a read-only view).

        Raises
        ------
        KeyError
            If the record has no lead of that name.
        """
        try:
            return self.signal[:, self.lead_names.index(name)]
        except ValueError:
            raise KeyError(f"no lead {name!r}; leads are {self.lead_names}") from None

    def replace(self, **changes: Any) -> ECGRecord:
        """Return a copy with some fields replaced (see :func:`dataclasses.replace`)."""
        return replace(self, **changes)

    def equals(self, other: ECGRecord) -> bool:
        """True when both records hold the same leads, rate and samples (NaN equal NaN)."""
        return (
            self.lead_names == other.lead_names
            and self.fs == other.fs
            and self.signal.shape == other.signal.shape
            and bool(np.array_equal(self.signal, other.signal, equal_nan=True))
        )

    # --- conversions -------------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """Return a writable copy of the signal, shape (n_samples, n_leads), mV."""
        return np.array(self.signal, dtype=np.float64, copy=True)

    def to_dataframe(self) -> pd.DataFrame:
        """Return a DataFrame indexed by time in s, one column per lead, in mV."""
        import pandas as pd

        index = pd.Index(self.time_s, name="time_s")
        return pd.DataFrame(self.to_numpy(), index=index, columns=list(self.lead_names))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write a CSV file: a ``time_s`` column then one column per lead in mV.

        Missing samples are written as empty cells. Returns the path written.
        """
        path = Path(path)
        self.to_dataframe().to_csv(path, float_format="%.4f", na_rep="")
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], *, name: str | None = None) -> ECGRecord:
        """Read a CSV file written by :meth:`to_csv`."""
        import pandas as pd

        df = pd.read_csv(path, index_col=0)
        t = df.index.to_numpy(dtype=float)
        fs = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        return cls(df.to_numpy(dtype=float), fs=round(fs, 6), lead_names=tuple(df.columns),
                   name=name or Path(path).stem)

    def to_wfdb(self, directory: str | os.PathLike[str] = ".", *, record_name: str | None = None,
                fmt: str = "16") -> Path:
        """Write the record as WFDB (``.hea`` + ``.dat``) in ``directory``.

        Samples are stored as integers at 1000 ADC units per mV (1 µV
        resolution); NaN samples are stored as WFDB's missing-value code and
        read back as NaN. Returns the path of the header file.

        Parameters
        ----------
        directory : path-like
            Folder to write into (created if needed).
        record_name : str, optional
            Defaults to :attr:`name`.
        fmt : str, default "16"
            WFDB storage format of every signal.
        """
        import wfdb

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        rec_name = record_name or self.name
        units = ["mV"] * self.n_leads
        d_signal = _to_digital(self.signal)
        wfdb.wrsamp(
            rec_name,
            fs=self.fs,
            units=units,
            sig_name=list(self.lead_names),
            d_signal=d_signal,
            fmt=[fmt] * self.n_leads,
            adc_gain=[_WFDB_GAIN_ADU_PER_MV] * self.n_leads,
            baseline=[0] * self.n_leads,
            comments=list(self.comments),
            write_dir=str(directory),
        )
        return directory / f"{rec_name}.hea"

    @classmethod
    def from_wfdb(cls, path: str | os.PathLike[str]) -> ECGRecord:
        """Read a WFDB record (path with or without the ``.hea`` extension).

        Raises
        ------
        UnreadableImageError
            If the record cannot be read.
        """
        import wfdb

        p = Path(path)
        if p.suffix in {".hea", ".dat", ".mat"}:
            p = p.with_suffix("")
        try:
            rec = wfdb.rdrecord(str(p))
        except Exception as exc:  # wfdb raises many types
            raise UnreadableImageError(f"cannot read WFDB record: {exc}", path=path) from exc
        sig = np.asarray(rec.p_signal, dtype=np.float64)
        return cls(sig, fs=float(rec.fs), lead_names=tuple(rec.sig_name), name=p.name,
                   comments=tuple(rec.comments or ()))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, fs={self.fs:g} Hz, "
                f"{self.n_samples} samples = {self.duration_s:g} s, leads={list(self.lead_names)})")


def _to_digital(signal: np.ndarray) -> np.ndarray:
    """Convert mV to int16 ADC units, NaN to WFDB's missing code (-32768)."""
    scaled = np.round(signal * _WFDB_GAIN_ADU_PER_MV)
    lim = np.iinfo(np.int16)
    scaled = np.clip(scaled, lim.min + 1, lim.max)
    scaled[~np.isfinite(signal)] = lim.min
    return scaled.astype(np.int16)


def align_leads(records: Sequence[ECGRecord], lead_names: Sequence[str]) -> list[np.ndarray]:
    """Return each record's signal re-ordered to ``lead_names`` (NaN for missing leads)."""
    out = []
    for rec in records:
        cols = [rec.lead(n) if n in rec.lead_names else np.full(rec.n_samples, np.nan)
                for n in lead_names]
        out.append(np.stack(cols, axis=1))
    return out
