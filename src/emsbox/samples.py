"""Blocks of sampled waveforms: the one data type shared by sources and the meter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Signal names a load's channels may carry (L-N voltages, L-L voltages for 3P3W, currents).
SIGNALS: tuple[str, ...] = ("v_l1", "v_l2", "v_l3", "v_l12", "v_l23", "i_l1", "i_l2", "i_l3", "i_n")


@dataclass(frozen=True)
class ChannelId:
    """One sampled channel: which load it belongs to and which signal it carries."""

    load: str
    signal: str


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples of every channel of a source, in physical units (V, A).

    ``samples[c, k]`` is channel ``channels[c]`` at time ``start_s + k / sample_rate_hz``.
    Blocks from one source are gapless: each starts where the previous one ended.
    """

    start_s: float
    sample_rate_hz: float
    channels: tuple[ChannelId, ...]
    samples: FloatArray

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[0] != len(self.channels):
            raise ValueError(
                f"samples must be (channels={len(self.channels)}, n), got {self.samples.shape}"
            )

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.samples.shape[1])

    @property
    def end_s(self) -> float:
        """Time just after the last sample (the start of the next block)."""
        return self.start_s + self.n_samples / self.sample_rate_hz


class Wiring(StrEnum):
    """Wiring systems of a load (shared PRODUCT.md §1)."""

    SINGLE_PHASE = "1P2W"
    SPLIT_PHASE = "2P3W"
    THREE_PHASE_3W = "3P3W"
    THREE_PHASE_4W = "3P4W"
    WILD_LEG = "3P4W-WL"


# Signals a wiring system needs (required) and may use (optional) from a source.
REQUIRED_SIGNALS: dict[Wiring, tuple[str, ...]] = {
    Wiring.SINGLE_PHASE: ("v_l1", "i_l1"),
    Wiring.SPLIT_PHASE: ("v_l1", "v_l2", "i_l1", "i_l2"),
    Wiring.THREE_PHASE_3W: ("v_l12", "v_l23", "i_l1", "i_l3"),
    Wiring.THREE_PHASE_4W: ("v_l1", "v_l2", "v_l3", "i_l1", "i_l2", "i_l3"),
    Wiring.WILD_LEG: ("v_l1", "v_l2", "v_l3", "i_l1", "i_l2", "i_l3"),
}
OPTIONAL_SIGNALS: dict[Wiring, tuple[str, ...]] = {
    Wiring.SINGLE_PHASE: ("i_n",),
    Wiring.SPLIT_PHASE: ("i_n",),
    Wiring.THREE_PHASE_3W: ("i_l2",),
    Wiring.THREE_PHASE_4W: ("i_n",),
    Wiring.WILD_LEG: ("i_n",),
}


@dataclass(frozen=True)
class LoadInfo:
    """What a source knows of one load it delivers samples for."""

    name: str
    wiring: Wiring
    nominal_frequency_hz: float = 50.0
