"""Replay of recorded waveforms (CSV or COMTRADE files) as a source of samples.

``open_recording`` reads the whole file at once (a minute at 6400 S/s is a few MB per
channel), checks it, and returns a :class:`RecordingSource` that hands it out in blocks,
once or, for demonstrations, in an endless loop. Every problem with the file is raised as
``SourceError`` with a one-line message naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from emsbox.samples import ChannelId, LoadInfo, SampleBlock, Wiring
from emsbox.sources.comtrade_file import read_comtrade
from emsbox.sources.csv_file import read_csv
from emsbox.sources.recorded import Recorded, recording_error

Reader = Callable[[Path, Wiring], Recorded]

# Reader by file extension (in lower case).
READERS: dict[str, Reader] = {
    ".csv": read_csv,
    ".cfg": read_comtrade,
    ".dat": read_comtrade,
    ".cff": read_comtrade,
}


class RecordingSource:
    """Replays recorded signals of one load as gapless blocks, once or in a loop.

    Channels come in the order of ``emsbox.samples.SIGNALS``. With ``loop`` the recording
    restarts at its beginning when exhausted while time runs on, so that every block starts
    exactly where the previous one ended.
    """

    def __init__(
        self,
        recorded: Recorded,
        wiring: Wiring,
        *,
        load_name: str = "main",
        nominal_frequency_hz: float = 50.0,
        loop: bool = False,
    ) -> None:
        names = list(recorded.signals)
        self._samples = np.ascontiguousarray(
            np.stack([np.asarray(recorded.signals[n], dtype=np.float64) for n in names])
        )
        self._n_samples = int(self._samples.shape[1])
        self._rate = float(recorded.sample_rate_hz)
        self._channels = tuple(ChannelId(load_name, n) for n in names)
        self._loads = (LoadInfo(load_name, wiring, nominal_frequency_hz),)
        self._loop = loop
        self._position = 0
        self._next_start_s = float(recorded.start_s)
        self._closed = False

    @property
    def sample_rate_hz(self) -> float:
        """Samples per second per channel."""
        return self._rate

    @property
    def channels(self) -> tuple[ChannelId, ...]:
        """The channels of every block, in row order."""
        return self._channels

    @property
    def loads(self) -> tuple[LoadInfo, ...]:
        """The single load the recording is of."""
        return self._loads

    @property
    def n_samples(self) -> int:
        """Samples per channel in the recording (one pass, whether looping or not)."""
        return self._n_samples

    @property
    def duration_s(self) -> float:
        """Seconds of signal in one pass: ``n_samples / sample_rate_hz``."""
        return self._n_samples / self._rate

    def read(self, max_samples: int) -> SampleBlock | None:
        """The next block of at most ``max_samples`` samples, or None when exhausted.

        Looping, every block holds exactly ``max_samples`` samples and is never None.
        After ``close`` the source is exhausted.
        """
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        pieces = []
        wanted = max_samples
        while wanted and not self._closed:
            if self._position == self._n_samples:
                if not self._loop:
                    break
                self._position = 0
            if self._loop and self._position == 0 and wanted >= self._n_samples:
                # Whole passes at once, so that big blocks of a short recording stay cheap.
                passes = wanted // self._n_samples
                pieces.append(np.tile(self._samples, passes))
                wanted -= passes * self._n_samples
                continue
            end = min(self._position + wanted, self._n_samples)
            pieces.append(self._samples[:, self._position : end])
            wanted -= end - self._position
            self._position = end
        if not pieces:
            return None
        # Copies, so that a consumer changing a block cannot change the recording.
        samples = np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0].copy()
        block = SampleBlock(self._next_start_s, self._rate, self._channels, samples)
        self._next_start_s = block.end_s
        return block

    def close(self) -> None:
        """Drop the recorded samples; later reads return None."""
        self._closed = True
        self._samples = np.empty((len(self._channels), 0))


def open_recording(
    path: Path,
    wiring: Wiring,
    *,
    load_name: str = "main",
    nominal_frequency_hz: float = 50.0,
    loop: bool = False,
) -> RecordingSource:
    """Open a recording for replay; the extension tells the format.

    ``.csv`` is CSV (see ``emsbox.sources.csv_file``); ``.cfg`` or ``.dat`` (either half of
    the pair) and ``.cff`` are COMTRADE (see ``emsbox.sources.comtrade_file``). Raises
    SourceError when the file cannot be read or lacks what the wiring needs.
    """
    path = Path(path)
    _check_is_file(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise recording_error(
            path,
            f"unknown recording format '{path.suffix}' (expected .csv, or COMTRADE .cfg, "
            ".dat or .cff)",
        )
    return RecordingSource(
        _read(reader, path, wiring),
        wiring,
        load_name=load_name,
        nominal_frequency_hz=nominal_frequency_hz,
        loop=loop,
    )


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        raise recording_error(path, "is a directory, not a recording file")
    if not path.exists():
        raise recording_error(path, "file not found")


def _read(reader: Reader, path: Path, wiring: Wiring) -> Recorded:
    try:
        return reader(path, wiring)
    except OSError as exc:
        # Unreadable files (permissions, I/O errors) surface wherever a reader opens them.
        where = Path(exc.filename) if exc.filename else path
        raise recording_error(where, f"cannot read the file ({exc.strerror or exc})") from None
