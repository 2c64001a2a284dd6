"""Recordings in COMTRADE (IEEE C37.111-1999 and -2013): .cfg/.dat pairs and .cff files.

The ``comtrade`` package parses the configuration and the data (ASCII, BINARY, BINARY32 and
FLOAT32) and applies each channel's ``a·x + b``. This module finds the files, checks what the
package takes on trust (that the data hold every sample the configuration announces, that
the sampling is uniform), and converts to primary V and A: unit prefixes (``kV``, ``kA``) and,
for channels recorded on the secondary side (``PS`` = ``S``), the ``primary/secondary`` ratio.

Time: with one sample rate in the configuration the samples are ``1/samp`` apart from 0 s;
with ``nrates`` 0 the time stamps of the data are used and must be uniform. The channel time
skew is ignored (it is a fraction of a sample in real recorders).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import comtrade
import numpy as np

from emsbox.samples import FloatArray, Wiring
from emsbox.sources.base import SourceError
from emsbox.sources.comtrade_channels import AnalogChannel, assign_signals, unit_scale
from emsbox.sources.recorded import (
    Recorded,
    check_sample_count,
    count,
    describe_non_finite,
    first_non_finite,
    one_line,
    rate_from_times,
    recording_error,
)

FORMATS = ("ASCII", "BINARY", "BINARY32", "FLOAT32")
# Bytes per analog value in the binary formats; each row also holds a 4-byte sample number,
# a 4-byte time stamp and the status channels packed 16 to a 2-byte word.
_ANALOG_BYTES = {"BINARY": 2, "BINARY32": 4, "FLOAT32": 4}

# A section header of a .cff file, e.g. "--- file type: DAT BINARY: 123456 ---".
_CFF_HEADER = re.compile(
    rb"^---[ \t]*file type:[ \t]*([a-z]+)(?:[ \t]+([a-z0-9]+))?(?:[ \t]*:[ \t]*([0-9]+))?"
    rb"[ \t]*---[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class _Parts:
    """The configuration text and the data bytes, with the names messages give them."""

    cfg_label: str
    cfg_text: str
    dat_label: str
    dat: bytes


def read_comtrade(path: Path, wiring: Wiring) -> Recorded:
    """Read the channels ``wiring`` uses from a COMTRADE .cfg, .dat (either half) or .cff."""
    parts = _load_parts(path)
    cfg = _parse_cfg(parts)
    channels = [_channel_info(c) for c in cfg.analog_channels]
    assignment = assign_signals(parts.cfg_label, channels, wiring)
    n_samples = int(cfg.sample_rates[-1][1])
    check_sample_count(parts.cfg_label, n_samples)
    rate = _declared_rate(parts.cfg_label, cfg)
    data_format = _data_format(parts.cfg_label, cfg)
    dat = _complete_data(parts, cfg, data_format, n_samples)
    record = _parse_data(parts, dat, data_format, channels)
    signals = {
        signal: _physical(parts.dat_label, record.analog[index], channels[index], signal)
        for signal, index in assignment.items()
    }
    if rate is not None:
        return Recorded(sample_rate_hz=rate, start_s=0.0, signals=signals)
    t = np.asarray(record.time, dtype=np.float64)
    quantum = float(cfg.time_base) * float(cfg.timemult)
    rate = rate_from_times(parts.dat_label, t, lambda k: f"sample {k + 1}", quantum)
    return Recorded(sample_rate_hz=rate, start_s=float(t[0]), signals=signals)


def _load_parts(path: Path) -> _Parts:
    if path.suffix.lower() == ".cff":
        return _split_cff(path, _read_bytes(path))
    if path.suffix.lower() == ".cfg":
        cfg_path, dat_path = path, _partner(path, "dat", "data")
    else:
        cfg_path, dat_path = _partner(path, "cfg", "configuration"), path
    cfg_text = _decode_text(_read_bytes(cfg_path))
    return _Parts(str(cfg_path), cfg_text, str(dat_path), _read_bytes(dat_path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise recording_error(path, f"cannot read the file ({exc.strerror or exc})") from None


def _partner(path: Path, extension: str, role: str) -> Path:
    """The other file of a .cfg/.dat pair: same stem, extension in either case."""
    same_case = extension.upper() if path.suffix[1:].isupper() else extension
    for suffix in dict.fromkeys((same_case, extension, extension.upper())):
        candidate = path.with_suffix(f".{suffix}")
        if candidate.is_file():
            return candidate
    expected = path.with_suffix(f".{same_case}").name
    raise recording_error(path, f"the COMTRADE {role} file {expected} is missing beside it")


def _decode_text(raw: bytes) -> str:
    """Configuration text: UTF-8 as the 2013 revision says, else Latin-1 as older tools wrote."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split_cff(path: Path, content: bytes) -> _Parts:
    """The CFG and DAT sections of a single-file (2013) recording; INF and HDR are skipped."""
    headers = []
    for match in _CFF_HEADER.finditer(content):
        headers.append(match)
        if match.group(1).upper() == b"DAT":
            break  # the data come last; binary data may contain anything
    kinds = [m.group(1).upper() for m in headers]
    if b"CFG" not in kinds:
        raise recording_error(path, "not a COMTRADE .cff file: no '--- file type: CFG ---' line")
    if kinds[-1] != b"DAT":
        raise recording_error(path, "no '--- file type: DAT ... ---' section in the .cff file")
    cfg_index = kinds.index(b"CFG")
    cfg_bytes = content[_next_line(content, headers[cfg_index]) : headers[cfg_index + 1].start()]
    dat_header = headers[-1]
    start = _next_line(content, dat_header)
    declared_bytes = dat_header.group(3)
    if (dat_header.group(2) or b"").upper() in (b"", b"ASCII"):
        following = _CFF_HEADER.search(content, start)
        dat = content[start : following.start() if following else len(content)]
    elif declared_bytes is not None:
        dat = content[start : start + int(declared_bytes)]
    else:
        dat = content[start:]
    return _Parts(f"{path} (CFG section)", _decode_text(cfg_bytes), f"{path} (DAT section)", dat)


def _next_line(content: bytes, header: re.Match[bytes]) -> int:
    """Where the line after a section header starts."""
    end = header.end()
    return end + 1 if content[end : end + 1] == b"\n" else end


class _LineCounter:
    """Text handed to the package line by line, remembering the last line (for messages)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(text.splitlines(keepends=True))
        self.line_number = 0
        self.last_line = ""

    def readline(self) -> str:
        """The next line, counted; "" at the end, as files do."""
        line = next(self._lines, "")
        self.line_number += 1
        self.last_line = line.strip()
        return line


def _parse_cfg(parts: _Parts) -> Any:
    """The package's parsed configuration (``comtrade.Cfg``)."""
    if not parts.cfg_text.strip():
        raise recording_error(parts.cfg_label, "the COMTRADE configuration is empty")
    cfg = comtrade.Cfg(ignore_warnings=True)
    lines = _LineCounter(parts.cfg_text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg.read(lines)
    # The package's parser raises whatever its code hits on malformed text (ValueError,
    # IndexError, TypeError, ...); every one of them means the same to the user.
    except Exception as exc:
        where = f"line {lines.line_number}"
        where += f" {lines.last_line[:60]!r}" if lines.last_line else " (missing)"
        raise recording_error(
            parts.cfg_label, f"malformed COMTRADE configuration at {where}: {_cfg_problem(exc)}"
        ) from None
    if not cfg.sample_rates:
        raise recording_error(
            parts.cfg_label, f"malformed COMTRADE configuration: nrates is {cfg.nrates}"
        )
    return cfg


def _channel_info(channel: Any) -> AnalogChannel:
    return AnalogChannel(
        number=int(channel.n),
        ident=str(channel.name),
        phase=str(channel.ph),
        unit=str(channel.uu),
        primary=float(channel.primary),
        secondary=float(channel.secondary),
        ps=str(channel.pors),
    )


def _declared_rate(label: str, cfg: Any) -> float | None:
    """The one sample rate of the configuration, or None when time stamps give the time."""
    if cfg.timestamp_critical:
        return None
    rates = sorted({float(samp) for samp, _ in cfg.sample_rates})
    for rate in rates:
        if not math.isfinite(rate) or rate <= 0:
            raise recording_error(
                label,
                f"sample rate {rate:g} Hz in the COMTRADE configuration is not positive "
                "(only nrates 0 declares sampling by time stamps)",
            )
    if len(rates) > 1:
        listed = ", ".join(f"{r:g}" for r in rates)
        raise recording_error(
            label,
            f"the recording switches between {len(rates)} sample rates ({listed} Hz); "
            "only recordings at one rate can be replayed",
        )
    return rates[0]


def _data_format(label: str, cfg: Any) -> str:
    data_format = str(cfg.ft).strip().upper()
    if data_format not in FORMATS:
        raise recording_error(
            label,
            f"data file type '{str(cfg.ft).strip()}' is not supported "
            f"(expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]})",
        )
    return data_format


def _complete_data(parts: _Parts, cfg: Any, data_format: str, n_samples: int) -> bytes | list[str]:
    """The data of exactly ``n_samples`` rows, refusing data that end early.

    ASCII data come back as lines, binary data as bytes, as the package's reader takes them.
    """
    if not parts.dat:
        raise recording_error(parts.dat_label, "the COMTRADE data file is empty")
    if data_format == "ASCII":
        lines = parts.dat.decode("latin-1").splitlines()
        # A trailing end-of-file mark (Ctrl-Z) and blank lines are not samples.
        while lines and not lines[-1].replace("\x1a", "").strip():
            lines.pop()
        if len(lines) < n_samples:
            raise recording_error(
                parts.dat_label,
                f"data are truncated: {count(len(lines), 'line')} for the {n_samples} samples "
                "the configuration announces",
            )
        return lines[:n_samples]
    row = 8 + _ANALOG_BYTES[data_format] * int(cfg.analog_count)
    row += 2 * math.ceil(int(cfg.status_count) / 16)
    if len(parts.dat) < row * n_samples:
        raise recording_error(
            parts.dat_label,
            f"data are truncated: {len(parts.dat)} bytes hold {len(parts.dat) // row} of the "
            f"{n_samples} samples the configuration announces ({row} bytes each in "
            f"{data_format})",
        )
    return parts.dat[: row * n_samples]


def _parse_data(
    parts: _Parts, dat: bytes | list[str], data_format: str, channels: list[AnalogChannel]
) -> Any:
    """The package's parsed recording (``comtrade.Comtrade``)."""
    record = comtrade.Comtrade(
        ignore_warnings=True, use_numpy_arrays=True, use_double_precision=True
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record.read(parts.cfg_text, dat)
    # As for the configuration: any exception of the package's reader means malformed data.
    except Exception as exc:
        located = (
            _locate_bad_ascii(parts.dat_label, dat, channels) if data_format == "ASCII" else None
        )
        raise located or recording_error(
            parts.dat_label, f"malformed COMTRADE data ({_detail(exc)})"
        ) from None
    return record


def _locate_bad_ascii(
    label: str, dat: bytes | list[str], channels: list[AnalogChannel]
) -> SourceError | None:
    """The first ASCII data line with a missing field or a non-number, as an error."""
    if isinstance(dat, bytes):
        return None
    for number, line in enumerate(dat, start=1):
        fields = line.strip().split(",")
        if len(fields) < 2 + len(channels):
            return recording_error(
                label,
                f"line {number} has {count(len(fields), 'field')}; a sample needs its number, "
                f"its time stamp and {len(channels)} analog values, then the status values",
            )
        names = ["sample number", "time stamp", *(c.describe() for c in channels)]
        for position, (name, field) in enumerate(zip(names, fields, strict=False), start=1):
            if position == 2 and not field.strip():
                continue  # a time stamp may be left blank when the sample rate gives the time
            try:
                # The package reads sample numbers as integers, everything else as reals.
                int(field) if position == 1 else float(field)
            except ValueError:
                kind = "an integer" if position == 1 else "a number"
                return recording_error(
                    label, f"line {number}, field {position} ({name}): {field!r} is not {kind}"
                )
        for position, field in enumerate(fields[len(names) :], start=len(names) + 1):
            if not field.strip().lstrip("+-").isdigit():
                return recording_error(
                    label, f"line {number}, field {position} (status): {field!r} is not 0 or 1"
                )
    return None


def _physical(label: str, values: Any, channel: AnalogChannel, signal: str) -> FloatArray:
    """A channel's values in primary V or A, refusing missing and non-finite ones."""
    scale = unit_scale(channel.unit, signal) or 1.0
    if channel.ps.strip().upper() == "S":
        if not (channel.primary > 0 and channel.secondary > 0):
            raise recording_error(
                label,
                f"{channel.describe()} holds secondary values (PS 'S') but its ratio "
                f"{channel.primary:g}:{channel.secondary:g} cannot convert them to primary",
            )
        scale *= channel.primary / channel.secondary
    physical = np.asarray(values, dtype=np.float64) * scale
    bad = first_non_finite(physical)
    if bad is not None:
        raise recording_error(
            label,
            f"sample {bad + 1} of {channel.describe()} is missing or not finite "
            f"({describe_non_finite(physical[bad])})",
        )
    return physical


def _detail(exc: Exception) -> str:
    return one_line(str(exc)) or type(exc).__name__


def _cfg_problem(exc: Exception) -> str:
    """What the package's parser hit, in the words of the file rather than of Python."""
    text = one_line(str(exc))
    for start, kind in (
        ("invalid literal for int()", "a whole number"),
        ("could not convert string to float", "a number"),
    ):
        if text.startswith(start):
            value = text.partition(": ")[2]
            return (
                f"an empty field where {kind} must be"
                if value == "''"
                else f"{value} is not {kind}"
            )
    if text.startswith("not enough values to unpack") or isinstance(exc, IndexError):
        return "the line has fewer fields than it must"
    if text.startswith("too many values to unpack"):
        return "the line has more fields than it may"
    return text or type(exc).__name__
