"""Recordings in CSV: a header row, then one row per sample.

The header names the columns: ``t`` (seconds) and signal names from ``emsbox.samples.SIGNALS``
(``v_l1``, ``v_l12``, ``i_l1``, ``i_n``, ...; case does not matter), in any order, in V and
A. Columns the wiring does not use, known or not, are ignored and may hold anything. Values
are separated by commas; empty lines are skipped.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emsbox.samples import SIGNALS, FloatArray, Wiring
from emsbox.sources.base import SourceError
from emsbox.sources.recorded import (
    Recorded,
    check_sample_count,
    count,
    describe_non_finite,
    rate_from_times,
    recording_error,
    signals_for,
)

TIME_COLUMN = "t"

# Data rows are decoded as Latin-1: it accepts any byte, so stray non-ASCII text in ignored
# columns cannot fail the read, and the numbers we use are plain ASCII either way.
DATA_ENCODING = "latin-1"


def read_csv(path: Path, wiring: Wiring) -> Recorded:
    """Read the columns ``wiring`` uses from a CSV recording."""
    header = _read_header(path)
    columns = _column_positions(path, header)
    signals = signals_for(
        path, wiring, (n for n in columns if n != TIME_COLUMN), f"its columns: {', '.join(header)}"
    )
    names = [TIME_COLUMN, *signals]
    usecols = [_unique_position(path, columns, n) for n in names]
    data = _load_columns(path, usecols, header)
    check_sample_count(path, data.shape[0])
    _check_finite(path, data, names)
    t = data[:, 0]
    rate = rate_from_times(path, t, lambda row: f"line {_line_of_row(path, row)}")
    return Recorded(
        sample_rate_hz=rate,
        start_s=float(t[0]),
        signals={n: np.ascontiguousarray(data[:, i + 1]) for i, n in enumerate(signals)},
    )


def _read_header(path: Path) -> list[str]:
    """The column names of the first line, stripped of blanks and quotes, in lower case."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline()
    if not first:
        raise recording_error(path, "file is empty")
    if not first.strip():
        raise recording_error(path, "the first line must be the header naming the columns")
    return [name.strip().strip('"').strip().lower() for name in next(csv.reader([first]))]


def _column_positions(path: Path, header: list[str]) -> dict[str, list[int]]:
    """Where the time column and each known signal column are (unknown names are skipped)."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        if name in SIGNALS or name == TIME_COLUMN:
            positions.setdefault(name, []).append(index)
    if TIME_COLUMN not in positions:
        if not all(name.replace("\t", " ").isprintable() for name in header):
            raise recording_error(path, "the first line is not a header of column names: not text")
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
            hint = "; columns must be separated by commas"
        found = ", ".join(header)
        found = found if len(found) <= 80 else found[:77] + "..."
        raise recording_error(
            path, f"the header has no time column '{TIME_COLUMN}' (found: {found}){hint}"
        )
    return positions


def _unique_position(path: Path, positions: dict[str, list[int]], name: str) -> int:
    """The one column holding ``name``; a column used twice would be ambiguous."""
    if len(positions[name]) > 1:
        raise recording_error(
            path, f"column '{name}' appears {len(positions[name])} times in the header"
        )
    return positions[name][0]


def _load_columns(path: Path, usecols: list[int], header: list[str]) -> FloatArray:
    """The selected columns of every data row as a (rows, columns) float64 array."""
    try:
        with warnings.catch_warnings():
            # A header-only file makes numpy warn; the sample count check reports it instead.
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(
                path,
                dtype=np.float64,
                delimiter=",",
                skiprows=1,
                usecols=usecols,
                comments=None,
                quotechar='"',
                ndmin=2,
                encoding=DATA_ENCODING,
            )
    except ValueError as exc:
        # numpy's message counts rows its own way; find the line and column ourselves.
        raise _locate_bad_row(path, usecols, header) or recording_error(
            path, f"unreadable CSV data ({exc})"
        ) from None
    return np.asarray(data, dtype=np.float64)


def _data_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-empty line after the header, as numpy reads them."""
    with path.open(encoding=DATA_ENCODING) as f:
        for number, line in enumerate(f, start=1):
            text = line.rstrip("\n")
            if number > 1 and text:
                yield number, text


def _locate_bad_row(path: Path, usecols: list[int], header: list[str]) -> SourceError | None:
    """The first row with too few fields or a non-number in a used column, as an error."""
    for number, text in _data_lines(path):
        fields = next(csv.reader([text]))
        if len(fields) <= max(usecols):
            return recording_error(
                path,
                f"line {number} has {count(len(fields), 'field')}, "
                f"but the header has {len(header)}",
            )
        for col in usecols:
            try:
                float(fields[col])
            except ValueError:
                return recording_error(
                    path,
                    f"line {number}, column '{header[col]}': {fields[col].strip()!r} "
                    "is not a number",
                )
    return None


def _line_of_row(path: Path, row: int) -> int:
    """The file line holding data row ``row`` (0-based), allowing for skipped empty lines."""
    for index, (number, _) in enumerate(_data_lines(path)):
        if index == row:
            return number
    return row + 2


def _check_finite(path: Path, data: FloatArray, names: list[str]) -> None:
    """Refuse NaN and infinite values, naming the first one's line and column."""
    bad = np.argwhere(~np.isfinite(data))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        raise recording_error(
            path,
            f"line {_line_of_row(path, row)}, column '{names[col]}': "
            f"value is {describe_non_finite(data[row, col])}",
        )
