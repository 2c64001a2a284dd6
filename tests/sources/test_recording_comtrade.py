"""Replaying COMTRADE recordings written by our writer, and matching channels to signals."""

import comtrade
import numpy as np
import pytest

from emsbox.samples import Wiring
from emsbox.sources.comtrade_channels import BY_ID, BY_PHASE, EXACT, AnalogChannel, signal_match
from emsbox.sources.recording import open_recording
from emsbox.testing.comtrade_writer import RAW_LIMIT, write_comtrade

RATE = 6400.0
FORMATS = ["ASCII", "BINARY", "BINARY32", "FLOAT32"]
PHASE_IDS = {"v_l1": "VA", "v_l2": "VB", "v_l3": "VC", "i_l1": "IA", "i_l2": "IB", "i_l3": "IC"}


def waves(n=640, rate=RATE):
    t = np.arange(n) / rate
    out = {}
    for k, (signal, ident) in enumerate(PHASE_IDS.items()):
        amp = 325.0 if signal.startswith("v") else 14.0
        out[ident] = amp * np.sin(2 * np.pi * 50.0 * t - 2 * np.pi * (k % 3) / 3) + k
    return t, out


def tolerance(values, data_format):
    """The writer's quantisation bound for one channel (see its module docstring)."""
    if data_format == "FLOAT32":
        return np.abs(values).max() * 2.0**-24
    span = values.max() - values.min()
    return span / (4 * RAW_LIMIT[data_format]) * (1 + 1e-9) + 1e-12


def read_whole(path, wiring=Wiring.THREE_PHASE_4W, **kwargs):
    source = open_recording(path, wiring, **kwargs)
    block = source.read(10**9)
    assert source.read(1) is None
    return source, block


@pytest.mark.parametrize("revision", ["1999", "2013"])
@pytest.mark.parametrize("data_format", FORMATS)
def test_every_revision_and_data_format_reads_back(tmp_path, revision, data_format):
    t, chans = waves()
    written = write_comtrade(
        tmp_path / "rec.cfg", RATE, chans, revision=revision, data_format=data_format
    )
    assert [p.name for p in written] == ["rec.cfg", "rec.dat"]
    source, block = read_whole(written[0])
    assert source.sample_rate_hz == RATE
    assert source.n_samples == t.size and block.start_s == 0.0
    assert [c.signal for c in source.channels] == list(PHASE_IDS)
    for row, ident in enumerate(PHASE_IDS.values()):
        err = np.abs(block.samples[row] - chans[ident]).max()
        assert err <= tolerance(chans[ident], data_format), ident


@pytest.mark.parametrize("data_format", FORMATS)
def test_either_half_of_the_pair_opens_it_in_any_case(tmp_path, data_format):
    _, chans = waves(n=100)
    cfg, dat = write_comtrade(tmp_path / "REC.CFG", RATE, chans, data_format=data_format)
    assert dat.name == "REC.DAT"
    a = read_whole(cfg)[1].samples
    b = read_whole(dat)[1].samples
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("data_format", FORMATS)
def test_single_file_cff_reads_back_and_the_package_agrees(tmp_path, data_format):
    _, chans = waves(n=300)
    [cff] = write_comtrade(tmp_path / "rec.cff", RATE, chans, data_format=data_format)
    source, block = read_whole(cff)
    assert source.sample_rate_hz == RATE and block.n_samples == 300
    theirs = comtrade.load(str(cff), use_numpy_arrays=True, use_double_precision=True)
    assert theirs.analog_channel_ids == list(chans)
    np.testing.assert_allclose(block.samples, np.array(theirs.analog), rtol=0, atol=1e-12)


def test_cfg_lines_follow_the_standard_layout(tmp_path):
    t, chans = waves(n=10)
    cfg_1999, _ = write_comtrade(
        tmp_path / "a.cfg",
        RATE,
        chans,
        revision="1999",
        data_format="BINARY",
        status={"trip": t > 0},
        station_name="Sub 1",
        rec_dev_id="DFR 7",
        line_frequency_hz=60.0,
    )
    lines = cfg_1999.read_bytes().decode().split("\r\n")
    assert lines[0] == "Sub 1,DFR 7,1999"
    assert lines[1] == "7,6A,1D"
    fields = lines[2].split(",")
    assert len(fields) == 13
    assert fields[:5] == ["1", "VA", "", "", "V"]
    assert fields[8:10] == ["-32767", "32767"] and fields[12] == "P"
    assert lines[8] == "1,trip,,,0"
    assert lines[9:12] == ["60", "1", "6400.0,10"]
    assert lines[12] == lines[13] == "01/01/2024,00:00:00.000000"
    assert lines[14:] == ["BINARY", "1", ""]
    cfg_2013, _ = write_comtrade(tmp_path / "b.cfg", RATE, chans, revision="2013")
    assert cfg_2013.read_text().splitlines()[-3:] == ["1", "0,0", "0,0"]


def test_status_channels_do_not_disturb_the_analog_ones(tmp_path):
    _, chans = waves(n=200)
    status = {f"d{k}": (np.arange(200) % (k + 2)) == 0 for k in range(17)}
    for data_format in FORMATS:
        cfg, _ = write_comtrade(
            tmp_path / f"s_{data_format}.cfg", RATE, chans, data_format=data_format, status=status
        )
        theirs = comtrade.load(str(cfg), use_numpy_arrays=True)
        np.testing.assert_array_equal(theirs.status[16], status["d16"].astype(int))
        block = read_whole(cfg)[1]
        assert np.abs(block.samples[0] - chans["VA"]).max() <= tolerance(chans["VA"], data_format)


@pytest.mark.parametrize("data_format", ["ASCII", "BINARY"])
def test_timestamps_only_recordings_take_the_rate_from_the_time_stamps(tmp_path, data_format):
    t, chans = waves(n=6400)
    cfg, _ = write_comtrade(
        tmp_path / "ts.cfg", t + 0.25, chans, data_format=data_format, timestamps_only=True
    )
    assert cfg.read_text().splitlines()[9:11] == ["0", "0,6400"]
    source, block = read_whole(cfg)
    # Time stamps count whole microseconds: 156.25 µs steps are stored as 156 or 157.
    assert source.sample_rate_hz == pytest.approx(RATE, rel=1e-6)
    assert block.start_s == 0.0


def test_uniform_time_arrays_give_one_sample_rate(tmp_path):
    t, chans = waves(n=50)
    cfg, _ = write_comtrade(tmp_path / "r.cfg", t, chans)
    assert cfg.read_text().splitlines()[9:11] == ["1", "6400.0,50"]


@pytest.mark.parametrize(("unit", "factor"), [("kV", 1e3), ("KV", 1e3), ("mV", 1e-3), ("V", 1)])
def test_units_with_prefixes_are_scaled_to_volts_and_amperes(tmp_path, unit, factor):
    _, chans = waves(n=100)
    current_unit = unit[:-1] + "A"
    units = {ident: unit if ident[0] == "V" else current_unit for ident in chans}
    cfg, _ = write_comtrade(tmp_path / "k.cfg", RATE, chans, units=units, data_format="FLOAT32")
    stored = comtrade.load(str(cfg), use_numpy_arrays=True, use_double_precision=True).analog
    np.testing.assert_allclose(stored[0], chans["VA"] / factor, rtol=1e-6)
    block = read_whole(cfg)[1]
    np.testing.assert_allclose(block.samples[0], chans["VA"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(block.samples[3], chans["IA"], rtol=1e-6, atol=1e-6)


def test_secondary_values_are_converted_with_the_transformer_ratio(tmp_path):
    _, chans = waves(n=100)
    ratios = {ident: (20000.0, 100.0) if ident[0] == "V" else (400.0, 5.0) for ident in chans}
    cfg, _ = write_comtrade(
        tmp_path / "s.cfg", RATE, chans, ratios=ratios, secondary=True, data_format="FLOAT32"
    )
    assert cfg.read_text().splitlines()[2].endswith(",20000.0,100.0,S")
    stored = comtrade.load(str(cfg), use_numpy_arrays=True, use_double_precision=True).analog
    np.testing.assert_allclose(stored[3], chans["IA"] / 80.0, rtol=1e-6)
    block = read_whole(cfg)[1]
    np.testing.assert_allclose(block.samples[3], chans["IA"], rtol=1e-6, atol=1e-6)


def channel(ident, unit="", phase=""):
    return AnalogChannel(number=1, ident=ident, phase=phase, unit=unit)


@pytest.mark.parametrize(
    ("ident", "unit", "signal"),
    [
        *((i, "V", "v_l1") for i in ("VA", "Va", "UL1", "U1", "V1", "VAN", "V_A", " va ", "U L1")),
        *((i, "kV", "v_l2") for i in ("VB", "UL2", "V2", "ub")),
        *((i, "V", "v_l3") for i in ("VC", "UL3", "U3", "VCN")),
        *((i, "V", "v_l12") for i in ("VAB", "UL12", "V12", "U_L1L2")),
        *((i, "V", "v_l23") for i in ("VBC", "UL23", "V23")),
        *((i, "A", "i_l1") for i in ("IA", "IL1", "I1", "ia")),
        *((i, "kA", "i_l3") for i in ("IC", "IL3", "I3")),
        *((i, "A", "i_n") for i in ("IN", "IN ", "I-N", "in")),
        *((i, "", "i_l2") for i in ("IB", "IL2")),
    ],
)
def test_channel_ids_follow_common_conventions(ident, unit, signal):
    assert signal_match(channel(ident, unit)) == (signal, BY_ID)


@pytest.mark.parametrize(
    ("ident", "unit"),
    [
        ("I0", "A"),
        ("3I0", "A"),
        ("VN", "V"),
        ("ICA", "A"),
        ("VA", "VA"),
        ("IA", "V"),
        ("VA", "Hz"),
        ("Freq", "Hz"),
        ("P", "W"),
    ],
)
def test_other_channels_match_no_signal(ident, unit):
    assert signal_match(channel(ident, unit)) is None


def test_exact_names_and_phase_fields_match_too():
    assert signal_match(channel("I_L2", "A")) == ("i_l2", EXACT)
    assert signal_match(channel("I_N ", "A")) == ("i_n", EXACT)
    assert signal_match(channel("Feeder 4 current", "A", "B")) == ("i_l2", BY_PHASE)
    assert signal_match(channel("Bus voltage", "kV", "AB")) == ("v_l12", BY_PHASE)
    assert signal_match(channel("Neutral", "A", "N")) == ("i_n", BY_PHASE)
    assert signal_match(channel("Something", "", "A")) is None


def test_phase_fields_and_units_map_a_recording_without_telling_ids(tmp_path):
    _, chans = waves(n=100)
    renamed = {f"Ch {k}": v for k, v in enumerate(chans.values())}
    phases = dict(zip(renamed, "ABCABC", strict=True))
    units = dict(zip(renamed, ["kV"] * 3 + ["A"] * 3, strict=True))
    cfg, _ = write_comtrade(
        tmp_path / "p.cfg", RATE, renamed, phases=phases, units=units, data_format="FLOAT32"
    )
    block = read_whole(cfg)[1]
    np.testing.assert_allclose(block.samples, np.array(list(chans.values())), rtol=1e-6)


def test_an_exact_signal_name_wins_over_a_convention(tmp_path):
    _, chans = waves(n=100)
    chans = {"VA": -chans["VA"], "v_l1": chans["VA"], "IA": chans["IA"]}
    cfg, _ = write_comtrade(tmp_path / "e.cfg", RATE, chans, data_format="FLOAT32")
    block = read_whole(cfg, Wiring.SINGLE_PHASE)[1]
    np.testing.assert_allclose(block.samples[0], chans["v_l1"], rtol=1e-6)


def test_unused_channels_with_odd_names_and_units_are_ignored(tmp_path):
    _, chans = waves(n=100)
    extra = {"VA_power": np.ones(100), "Freq": np.full(100, 50.0), "IA": chans["IA"]}
    units = {"VA_power": "VA", "Freq": "Hz"}
    cfg, _ = write_comtrade(
        tmp_path / "x.cfg", RATE, {"VA": chans["VA"], **extra}, units=units, data_format="FLOAT32"
    )
    source, _ = read_whole(cfg, Wiring.SINGLE_PHASE)
    assert [c.signal for c in source.channels] == ["v_l1", "i_l1"]


def test_loop_works_for_comtrade_too(tmp_path):
    _, chans = waves(n=100)
    cfg, _ = write_comtrade(tmp_path / "l.cfg", RATE, chans, data_format="BINARY32")
    source = open_recording(cfg, Wiring.THREE_PHASE_4W, loop=True)
    blocks = [source.read(64) for _ in range(5)]
    assert blocks[-1].start_s == blocks[-2].end_s
    np.testing.assert_array_equal(blocks[1].samples[:, 36:], blocks[0].samples[:, :28])
