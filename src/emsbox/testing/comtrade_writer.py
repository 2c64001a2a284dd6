"""Writes COMTRADE recordings (IEEE Std C37.111-1999 and C37.111-2013) for tests.

Written from the field descriptions of IEEE C37.111 ("IEEE Standard Common Format for
Transient Data Exchange (COMTRADE) for Power Systems"; also IEC 60255-24):

Configuration file (.cfg), one record per line, fields separated by commas, CR LF endings::

    station_name,rec_dev_id,rev_year
    TT,##A,##D                          total, analog ("A") and status ("D") channel counts
    An,ch_id,ph,ccbm,uu,a,b,skew,min,max,primary,secondary,PS     one line per analog channel
    Dn,ch_id,ph,ccbm,y                  one line per status channel (y: normal state)
    lf                                  line frequency, Hz
    nrates                              number of sample rates; 0: time stamps give the time
    samp,endsamp                        rate (Hz) and last sample number; "0,N" when nrates is 0
    dd/mm/yyyy,hh:mm:ss.ssssss          time of the first data point
    dd/mm/yyyy,hh:mm:ss.ssssss          time of the trigger point
    ft                                  data file type: ASCII, BINARY, BINARY32, FLOAT32
    timemult                            multiplier of the data file time stamps
    time_code,local_code                (2013 only) time zone of the time stamps, here "0,0"
    tmq_code,leapsec                    (2013 only) time quality and leap second, here "0,0"

A channel's value is ``a·x + b`` of the stored number ``x``, in the unit ``uu``, on the
primary side of the instrument transformers (ratio ``primary:secondary``) if ``PS`` is ``P``,
on the secondary side if it is ``S``.

Data file (.dat), one row per sample: the sample number (from 1), the time stamp (in µs
times ``timemult``, from the first data point), the analog values, then the status values.
ASCII rows are comma-separated integers. Binary rows are little-endian: uint32 sample
number, uint32 time stamp, one int16 (BINARY), int32 (BINARY32) or float32 (FLOAT32) per
analog channel, and the status channels packed 16 to a uint16 (first channel in bit 0).
Missing values are 99999 (ASCII), 0x8000 (BINARY), 0x80000000 (BINARY32); a missing time
stamp is 0xFFFFFFFF. A ``.cff`` file (2013) holds the same in CFG, INF, HDR and DAT sections.

Quantisation: for the integer formats each channel gets ``b = (max + min) / 2`` and
``a = (max − min) / (2·R)``, so its values span the raw range ``−R..R`` with R = 99998
(ASCII), 32767 (BINARY) or 2147483647 (BINARY32); a value is then off by at most ``a/2``,
i.e. ``(max − min) / (4·R)`` (about 7.6e−6 of the span for BINARY, 2.5e−6 for ASCII). A
constant channel is stored exactly (``a = 1``, ``x = 0``). FLOAT32 stores the values with
``a = 1, b = 0``: a relative error of at most 2^-24 (6e−8).

The 1999 revision defines only ASCII and BINARY; BINARY32 and FLOAT32 under a 1999 header
are written anyway (readers that follow the data type field cope), for testing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from emsbox.samples import FloatArray

Revision = Literal["1999", "2013"]
DataFormat = Literal["ASCII", "BINARY", "BINARY32", "FLOAT32"]

# Largest stored magnitude of the integer formats: symmetric, clear of the "missing" codes.
RAW_LIMIT: dict[str, int] = {"ASCII": 99_998, "BINARY": 32_767, "BINARY32": 2_147_483_647}
MISSING: dict[str, int] = {"ASCII": 99_999, "BINARY": -32_768, "BINARY32": -2_147_483_648}
_ANALOG_DTYPE = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}
# Time stamps count microseconds (times timemult) in 32 bits; all ones means "missing".
TIME_BASE_S = 1e-6
MAX_TIME_STAMP = 0xFFFF_FFFE
_UNIT_PREFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "m": 1e-3, "u": 1e-6, "µ": 1e-6}
_CRLF = "\r\n"


def write_comtrade(
    cfg_path: Path,
    time: float | FloatArray,
    channels: Mapping[str, npt.ArrayLike],
    *,
    revision: Revision = "2013",
    data_format: DataFormat = "BINARY",
    units: Mapping[str, str] | None = None,
    phases: Mapping[str, str] | None = None,
    ratios: Mapping[str, tuple[float, float]] | None = None,
    secondary: bool = False,
    status: Mapping[str, npt.ArrayLike] | None = None,
    timestamps_only: bool = False,
    station_name: str = "emsbox test",
    rec_dev_id: str = "emsbox comtrade_writer",
    line_frequency_hz: float = 50.0,
    start: datetime = datetime(2024, 1, 1),
) -> list[Path]:
    """Write a COMTRADE recording; return the files written (.cfg and .dat, or one .cff).

    ``time`` is a sample rate in Hz, or the sample times in s: evenly spaced times give one
    sample rate (``nrates`` 1), others (or ``timestamps_only``) time stamps (``nrates`` 0).
    ``channels`` maps channel ids to values in V and A on the primary side (NaN: missing);
    ``units`` (default V for ids starting with V or U, A for I), ``phases`` (the ``ph``
    field) and ``ratios`` (``primary, secondary``) are per channel id. ``secondary`` stores
    values on the secondary side (``PS`` = ``S``). ``status`` maps status channel ids to
    0/1 values. A ``.cff`` path writes the 2013 single-file form.
    """
    values = {name: np.asarray(v, dtype=np.float64) for name, v in channels.items()}
    n = _common_length(values, status)
    rate, t_rel = _time_axis(time, n, timestamps_only)
    timemult = _time_multiplier(t_rel)
    stamps = np.rint(t_rel / (TIME_BASE_S * timemult)).astype(np.int64)
    analog_lines = []
    raws = []
    for number, (name, physical) in enumerate(values.items(), start=1):
        unit = (units or {}).get(name, _default_unit(name))
        primary, second = (ratios or {}).get(name, (1.0, 1.0))
        if not (primary > 0 and second > 0):
            raise ValueError(f"the ratio of {name} must be positive, got {primary}:{second}")
        stored = physical / _unit_factor(unit) / (primary / second if secondary else 1.0)
        a, b, raw_min, raw_max, raw = _scale(stored, data_format)
        raws.append(raw)
        fields = [number, name, (phases or {}).get(name, ""), "", unit, repr(a), repr(b)]
        fields += [0, raw_min, raw_max, repr(float(primary)), repr(float(second))]
        analog_lines.append(",".join(map(str, [*fields, "S" if secondary else "P"])))
    bits = {name: np.asarray(v).astype(bool) for name, v in (status or {}).items()}
    cfg = _cfg_text(
        header=f"{station_name},{rec_dev_id},{revision}",
        analog_lines=analog_lines,
        status_names=list(bits),
        line_frequency_hz=line_frequency_hz,
        rates=f"1{_CRLF}{rate!r},{n}" if rate is not None else f"0{_CRLF}0,{n}",
        start=start,
        data_format=data_format,
        timemult=timemult,
        revision=revision,
    )
    dat = _data(data_format, stamps, raws, list(bits.values()))
    return _write_files(Path(cfg_path), cfg, dat, data_format, revision)


def _common_length(
    values: Mapping[str, FloatArray], status: Mapping[str, npt.ArrayLike] | None
) -> int:
    lengths = {v.shape for v in values.values()}
    lengths |= {np.shape(v) for v in (status or {}).values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"channels must be 1-D arrays of one length, got shapes {lengths}")
    return int(next(iter(lengths))[0])


def _time_axis(
    time: float | FloatArray, n: int, timestamps_only: bool
) -> tuple[float | None, FloatArray]:
    """The sample rate (None for time stamps only) and the times from the first sample."""
    if isinstance(time, int | float):
        rate = float(time)
        return (None if timestamps_only else rate), np.arange(n) / rate
    t = np.asarray(time, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"time has shape {t.shape}, channels have {n} samples")
    # Times before the first sample (in deliberately bad recordings) still need stamps >= 0.
    t_rel = t - float(t.min())
    if timestamps_only or n < 2 or t_rel[-1] <= 0:
        return None, t_rel
    rate = (n - 1) / float(t_rel[-1])
    even = np.abs(t_rel - np.arange(n) / rate).max() <= 1e-6 / rate
    return (rate if even else None), t_rel


def _time_multiplier(t_rel: FloatArray) -> float:
    """1, or the whole factor that fits the last time stamp into 32 bits."""
    last = float(t_rel.max()) / TIME_BASE_S if t_rel.size else 0.0
    return float(max(1, math.ceil(last / MAX_TIME_STAMP)))


def _default_unit(name: str) -> str:
    first = name.strip()[:1].upper()
    return {"V": "V", "U": "V", "I": "A"}.get(first, "")


def _unit_factor(unit: str) -> float:
    """Size of ``unit`` in base units: 1000 for kV or kA."""
    unit = unit.strip()
    return _UNIT_PREFIX.get(unit[:-1], 1.0) if len(unit) > 1 else 1.0


def _scale(
    stored: FloatArray, data_format: str
) -> tuple[float, float, float | int, float | int, npt.NDArray[np.generic]]:
    """(a, b, min, max, raw values) of one channel; see the module docstring."""
    missing = np.isnan(stored)
    present = stored[~missing]
    lo = float(present.min()) if present.size else 0.0
    hi = float(present.max()) if present.size else 0.0
    if data_format == "FLOAT32":
        return 1.0, 0.0, float(np.float32(lo)), float(np.float32(hi)), stored.astype(np.float32)
    limit = RAW_LIMIT[data_format]
    b = (hi + lo) / 2
    a = (hi - lo) / (2 * limit) if hi > lo else 1.0
    raw = np.clip(np.rint((np.where(missing, b, stored) - b) / a), -limit, limit)
    raw = np.where(missing, MISSING[data_format], raw).astype(np.int64)
    return a, b, -limit, limit, raw


def _cfg_text(
    *,
    header: str,
    analog_lines: list[str],
    status_names: list[str],
    line_frequency_hz: float,
    rates: str,
    start: datetime,
    data_format: str,
    timemult: float,
    revision: str,
) -> str:
    n_a, n_d = len(analog_lines), len(status_names)
    when = f"{start:%d/%m/%Y},{start:%H:%M:%S.%f}"
    lines = [header, f"{n_a + n_d},{n_a}A,{n_d}D", *analog_lines]
    lines += [f"{k},{name},,,0" for k, name in enumerate(status_names, start=1)]
    lines += [f"{line_frequency_hz:g}", rates, when, when, data_format, f"{timemult:g}"]
    if revision == "2013":
        lines += ["0,0", "0,0"]
    return _CRLF.join(lines) + _CRLF


def _status_words(bits: list[npt.NDArray[np.bool_]], n: int) -> list[npt.NDArray[np.uint16]]:
    """Status channels packed 16 to a word, the first channel of a word in its bit 0."""
    words = []
    for first in range(0, len(bits), 16):
        word = np.zeros(n, dtype=np.uint16)
        for bit, values in enumerate(bits[first : first + 16]):
            word |= values.astype(np.uint16) << np.uint16(bit)
        words.append(word)
    return words


def _data(
    data_format: str,
    stamps: npt.NDArray[np.int64],
    raws: list[npt.NDArray[np.generic]],
    bits: list[npt.NDArray[np.bool_]],
) -> bytes:
    n = stamps.size
    numbers = np.arange(1, n + 1)
    if data_format == "ASCII":
        table = np.column_stack([numbers, stamps, *raws, *(b.astype(np.int64) for b in bits)])
        out = io.StringIO()
        np.savetxt(out, table.astype(np.int64), fmt="%d", delimiter=",", newline=_CRLF)
        return out.getvalue().encode("ascii")
    words = _status_words(bits, n)
    fields = [("n", "<u4"), ("t", "<u4")]
    fields += [(f"a{k}", _ANALOG_DTYPE[data_format]) for k in range(len(raws))]
    fields += [(f"d{k}", "<u2") for k in range(len(words))]
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["n"], rows["t"] = numbers, stamps
    for k, raw in enumerate(raws):
        rows[f"a{k}"] = raw
    for k, word in enumerate(words):
        rows[f"d{k}"] = word
    return rows.tobytes()


def _write_files(path: Path, cfg: str, dat: bytes, data_format: str, revision: str) -> list[Path]:
    if path.suffix.lower() == ".cff":
        if revision != "2013":
            raise ValueError("the single-file .cff form exists only in the 2013 revision")
        sections = (
            f"--- file type: CFG ---{_CRLF}{cfg}"
            f"--- file type: INF ---{_CRLF}--- file type: HDR ---{_CRLF}"
            f"--- file type: DAT {data_format}: {len(dat)} ---{_CRLF}"
        )
        path.write_bytes(sections.encode("utf-8") + dat)
        return [path]
    if path.suffix.lower() != ".cfg":
        raise ValueError(f"expected a .cfg or .cff path, got {path}")
    dat_path = path.with_suffix(".DAT" if path.suffix.isupper() else ".dat")
    path.write_bytes(cfg.encode("utf-8"))
    dat_path.write_bytes(dat)
    return [path, dat_path]
