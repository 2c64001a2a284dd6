"""Replaying CSV recordings: round trips for every wiring, gapless blocks, looping."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.samples import OPTIONAL_SIGNALS, REQUIRED_SIGNALS, SIGNALS, ChannelId, LoadInfo, Wiring
from emsbox.sources.base import SampleSource
from emsbox.sources.recording import RecordingSource, open_recording

RATE = 6400.0


def waves(signals, n=640, rate=RATE, t0=0.0):
    """Sample times and a distinct sine per signal (V around 325 V peak, A around 14 A)."""
    t = t0 + np.arange(n) / rate
    out = {}
    for k, s in enumerate(signals):
        amp = 325.0 if s.startswith("v") else 14.0 + k
        out[s] = amp * np.sin(2 * np.pi * 50.0 * t - 0.7 * k)
    return t, out


def write_csv(path: Path, t, columns: dict, *, fmt="%.17g", header=None) -> Path:
    names = ["t", *columns]
    data = np.column_stack([t, *columns.values()])
    np.savetxt(path, data, delimiter=",", header=header or ",".join(names), comments="", fmt=fmt)
    return path


def read_all(source, block=10**9):
    blocks = []
    while (b := source.read(block)) is not None:
        blocks.append(b)
    return blocks


@pytest.mark.parametrize("wiring", list(Wiring))
def test_csv_round_trip_for_every_wiring(tmp_path, wiring):
    signals = [*REQUIRED_SIGNALS[wiring], *OPTIONAL_SIGNALS[wiring]]
    t, cols = waves(signals, t0=12.5)
    # Columns in reverse order, with an unknown column and one the wiring does not use.
    unused = next(s for s in SIGNALS if s not in signals)
    extra = {"temperature": np.full(t.size, 21.0), unused: np.ones(t.size)}
    shuffled = dict(reversed(list({**cols, **extra}.items())))
    source = open_recording(write_csv(tmp_path / "rec.csv", t, shuffled), wiring, load_name="pv")

    expected = [s for s in SIGNALS if s in signals]
    assert source.channels == tuple(ChannelId("pv", s) for s in expected)
    assert source.loads == (LoadInfo("pv", wiring, 50.0),)
    assert source.sample_rate_hz == pytest.approx(RATE, rel=1e-12)
    assert source.n_samples == t.size
    assert source.duration_s == pytest.approx(t.size / RATE)
    [block] = read_all(source)
    assert block.start_s == 12.5
    assert block.samples.dtype == np.float64
    np.testing.assert_array_equal(block.samples, np.array([cols[s] for s in expected]))
    assert source.read(100) is None


def test_recording_source_satisfies_the_protocol(tmp_path):
    t, cols = waves(["v_l1", "i_l1"])
    source: SampleSource = open_recording(write_csv(tmp_path / "r.csv", t, cols), Wiring("1P2W"))
    assert isinstance(source, RecordingSource)
    source.close()


def test_optional_signal_is_a_channel_only_when_present(tmp_path):
    t, cols = waves(["v_l12", "v_l23", "i_l1", "i_l3"])
    source = open_recording(write_csv(tmp_path / "r.csv", t, cols), Wiring.THREE_PHASE_3W)
    assert [c.signal for c in source.channels] == ["v_l12", "v_l23", "i_l1", "i_l3"]


def test_nominal_frequency_goes_to_the_load(tmp_path):
    t, cols = waves(["v_l1", "i_l1"])
    path = write_csv(tmp_path / "r.csv", t, cols)
    source = open_recording(path, Wiring.SINGLE_PHASE, nominal_frequency_hz=60.0)
    assert source.loads[0].nominal_frequency_hz == 60.0


def test_unused_columns_may_hold_anything(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "note,t,v_l2,v_l1,i_l1\n"
        "start,0.0,abc,1.5,-2\n"
        "é ü,0.001,,2.5,-3\n"
        '"a, quoted",0.002,x,3.5,-4\n'
    )
    [block] = read_all(open_recording(path, Wiring.SINGLE_PHASE))
    np.testing.assert_array_equal(block.samples, [[1.5, 2.5, 3.5], [-2, -3, -4]])
    assert block.sample_rate_hz == pytest.approx(1000.0)


def test_header_case_quotes_bom_blank_lines_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "r.CSV"
    path.write_bytes(
        b'\xef\xbb\xbf"T", V_L1 , "I_L1"\r\n0,1,2\r\n\r\n1e-3,"3",4\r\n0.002,5,6\r\n\r\n'
    )
    [block] = read_all(open_recording(path, Wiring.SINGLE_PHASE))
    np.testing.assert_array_equal(block.samples, [[1, 3, 5], [2, 4, 6]])


def test_times_rounded_to_a_microsecond_are_even_enough(tmp_path):
    t, cols = waves(["v_l1", "i_l1"], n=6400)
    path = write_csv(tmp_path / "r.csv", np.round(t, 6), cols)
    source = open_recording(path, Wiring.SINGLE_PHASE)
    assert source.sample_rate_hz == pytest.approx(RATE, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=30))
def test_blocks_of_any_size_are_gapless_and_add_up_to_the_recording(tmp_path_factory, sizes):
    path = tmp_path_factory.getbasetemp() / "gapless.csv"
    t, cols = waves(["v_l1", "v_l2", "i_l1", "i_l2"], n=1000, t0=3.0)
    if not path.exists():
        write_csv(path, t, cols)
    source = open_recording(path, Wiring.SPLIT_PHASE)
    blocks = []
    for size in sizes:
        block = source.read(size)
        if block is None:
            break
        assert block.n_samples == min(size, 1000 - sum(b.n_samples for b in blocks))
        blocks.append(block)
    rest = read_all(source, 333)
    blocks += rest
    assert blocks[0].start_s == 3.0
    for before, after in itertools.pairwise(blocks):
        assert after.start_s == before.end_s
    whole = np.concatenate([b.samples for b in blocks], axis=1)
    np.testing.assert_array_equal(
        whole, np.array([cols[s] for s in ("v_l1", "v_l2", "i_l1", "i_l2")])
    )


@pytest.mark.parametrize("block", [1, 7, 100, 250, 999, 100_003])
def test_looped_replay_repeats_the_samples_while_time_runs_on(tmp_path, block):
    t, cols = waves(["v_l1", "i_l1"], n=250, t0=1.0)
    source = open_recording(write_csv(tmp_path / "r.csv", t, cols), Wiring.SINGLE_PHASE, loop=True)
    blocks = [source.read(block) for _ in range(max(3, 2000 // block))]
    blocks += [source.read(1)]
    assert all(b is not None and b.n_samples == block for b in blocks[:-1])
    assert blocks[0].start_s == 1.0
    for before, after in itertools.pairwise(blocks):
        assert after.start_s == before.end_s
    whole = np.concatenate([b.samples for b in blocks], axis=1)
    once = np.array([cols["v_l1"], cols["i_l1"]])
    reps = -(-whole.shape[1] // 250)
    np.testing.assert_array_equal(whole, np.tile(once, reps)[:, : whole.shape[1]])
    assert blocks[-1].end_s == pytest.approx(1.0 + whole.shape[1] / RATE, abs=1e-9)


def test_blocks_are_copies(tmp_path):
    t, cols = waves(["v_l1", "i_l1"], n=10)
    path = write_csv(tmp_path / "r.csv", t, cols)
    source = open_recording(path, Wiring.SINGLE_PHASE, loop=True)
    first = source.read(10)
    first.samples[:] = 0.0
    assert np.array_equal(source.read(10).samples[0], cols["v_l1"])


def test_close_ends_the_replay_and_bad_block_sizes_are_refused(tmp_path):
    t, cols = waves(["v_l1", "i_l1"], n=10)
    source = open_recording(write_csv(tmp_path / "r.csv", t, cols), Wiring.SINGLE_PHASE, loop=True)
    with pytest.raises(ValueError):
        source.read(0)
    assert source.read(3) is not None
    source.close()
    assert source.read(3) is None


@pytest.mark.slow
def test_a_minute_at_6400_samples_per_second_reads_in_well_under_seconds(tmp_path):
    n = 60 * 6400
    t, cols = waves(["v_l1", "v_l2", "v_l3", "i_l1", "i_l2", "i_l3", "i_n"], n=n)
    cols["pf"] = np.full(n, 0.9)
    path = write_csv(tmp_path / "big.csv", t, cols, fmt="%.9g")
    started = time.perf_counter()
    source = open_recording(path, Wiring.THREE_PHASE_4W)
    elapsed = time.perf_counter() - started
    assert source.n_samples == n and len(source.channels) == 7
    assert elapsed < 4.0, f"reading {path.stat().st_size / 1e6:.0f} MB took {elapsed:.2f} s"
