"""Times in query parameters: ISO 8601 (with or without zone) or seconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo

from fastapi import HTTPException, status

# Times the API accepts: from the Unix epoch to the end of year 9999 (ISO 8601's range).
EARLIEST_S = 0.0
LATEST_S = 253_402_300_799.0


def _bad(name: str, value: str, why: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, f"{name}: {value!r} {why}")


def parse_time(value: str | None, name: str, default: float, zone: tzinfo) -> float:
    """Epoch seconds of a query parameter; times without a zone are the site's local time."""
    if value is None or value == "":
        return default
    try:
        t_s = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
            t_s = parsed.timestamp()
        except (ValueError, OverflowError):
            raise _bad(
                name, value, "is neither an ISO 8601 time nor seconds since the epoch"
            ) from None
    if not EARLIEST_S <= t_s <= LATEST_S:  # also refuses nan and inf
        raise _bad(name, value, "is outside 1970-01-01 … 9999-12-31")
    return t_s


def time_range(
    start: str | None, end: str | None, default_span_s: float, zone: tzinfo
) -> tuple[float, float]:
    """``start`` and ``end`` as epoch seconds: end defaults to now, start to a span before it."""
    end_s = parse_time(end, "end", time.time(), zone)
    start_s = parse_time(start, "start", end_s - default_span_s, zone)
    if start_s >= end_s:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "start must be before end")
    return start_s, end_s


def iso(t_s: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time with milliseconds."""
    return datetime.fromtimestamp(t_s, UTC).isoformat(timespec="milliseconds")
