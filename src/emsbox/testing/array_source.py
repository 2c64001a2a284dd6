"""A source that replays arrays held in memory: the signal-source fake for tests and plugins."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from emsbox.samples import ChannelId, FloatArray, LoadInfo, SampleBlock, Wiring


class ArraySource:
    """Replays ``signals`` (signal name → samples) of one load as gapless blocks, once."""

    def __init__(
        self,
        signals: Mapping[str, FloatArray],
        sample_rate_hz: float,
        wiring: Wiring,
        *,
        load: str = "main",
        nominal_frequency_hz: float = 50.0,
        start_s: float = 0.0,
    ) -> None:
        names = list(signals)
        self._samples = np.array([np.asarray(signals[n], dtype=np.float64) for n in names])
        self._rate = float(sample_rate_hz)
        self._channels = tuple(ChannelId(load, n) for n in names)
        self._loads = (LoadInfo(load, wiring, nominal_frequency_hz),)
        self._start_s = start_s
        self._pos = 0

    @property
    def sample_rate_hz(self) -> float:
        """Samples per second per channel."""
        return self._rate

    @property
    def channels(self) -> tuple[ChannelId, ...]:
        """One channel per signal, in the order given."""
        return self._channels

    @property
    def loads(self) -> tuple[LoadInfo, ...]:
        """The single load."""
        return self._loads

    def read(self, max_samples: int) -> SampleBlock | None:
        """The next block, or None once every sample was delivered."""
        if self._pos >= self._samples.shape[1]:
            return None
        end = min(self._pos + max_samples, self._samples.shape[1])
        block = SampleBlock(
            self._start_s + self._pos / self._rate,
            self._rate,
            self._channels,
            self._samples[:, self._pos : end].copy(),
        )
        self._pos = end
        return block

    def close(self) -> None:
        """Nothing to release."""
