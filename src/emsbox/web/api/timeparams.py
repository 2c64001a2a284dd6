"""Times in query parameters: ISO 8601 (with or without zone) or seconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from fastapi import HTTPException, status


def parse_time(value: str | None, name: str, default: float, zone: tzinfo) -> float:
    """Epoch seconds of a query parameter; times without a zone are the site's local time."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{name}: {value!r} is neither an ISO 8601 time nor seconds since the epoch",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


def iso(t_s: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time with milliseconds."""
    return datetime.fromtimestamp(t_s, UTC).isoformat(timespec="milliseconds")
