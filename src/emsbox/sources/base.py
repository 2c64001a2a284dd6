"""The interface every source of samples implements."""

from __future__ import annotations

from typing import Protocol

from emsbox.samples import ChannelId, LoadInfo, SampleBlock


class SourceError(Exception):
    """A source cannot deliver samples; the message names the problem in one line."""


class SampleSource(Protocol):
    """A producer of gapless sample blocks for one or more loads."""

    @property
    def sample_rate_hz(self) -> float:
        """Samples per second per channel."""
        ...

    @property
    def channels(self) -> tuple[ChannelId, ...]:
        """The channels of every block, in row order."""
        ...

    @property
    def loads(self) -> tuple[LoadInfo, ...]:
        """The loads the channels belong to."""
        ...

    def read(self, max_samples: int) -> SampleBlock | None:
        """Return the next block of at most ``max_samples`` samples, or None when exhausted."""
        ...

    def close(self) -> None:
        """Release files or devices held by the source."""
        ...
