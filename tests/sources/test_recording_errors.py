"""Bad recordings: each one raises SourceError with one line naming the file and the problem."""

import os
from pathlib import Path

import numpy as np
import pytest

from emsbox.samples import Wiring
from emsbox.sources.base import SourceError
from emsbox.sources.recording import open_recording
from emsbox.testing.comtrade_writer import write_comtrade

RATE = 6400.0


def error_of(path: Path, wiring: Wiring = Wiring.SINGLE_PHASE) -> str:
    with pytest.raises(SourceError) as info:
        open_recording(path, wiring)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and message == message.strip()
    assert path.name in message or path.stem in message
    return message


def csv_text(rows: int = 20, rate: float = 1000.0) -> list[str]:
    lines = ["t,v_l1,i_l1"]
    lines += [f"{k / rate!r},{230 * np.sin(k):.6f},{5 * np.cos(k):.6f}" for k in range(rows)]
    return lines


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def with_line(lines: list[str], number: int, text: str) -> list[str]:
    """The lines with file line ``number`` (1-based) replaced."""
    return [*lines[: number - 1], text, *lines[number:]]


# (what the file holds, words the message must contain)
CSV_CASES = {
    "empty": ("", ["file is empty"]),
    "header only": ("t,v_l1,i_l1\n", ["0 samples", "at least 2"]),
    "one sample": ("t,v_l1,i_l1\n0,1,2\n", ["1 sample;", "at least 2"]),
    "blank first line": ("\nt,v_l1,i_l1\n0,1,2\n", ["first line must be the header"]),
    "no time column": ("time,v_l1,i_l1\n0,1,2\n", ["no time column 't'", "time, v_l1, i_l1"]),
    "semicolons": ("t;v_l1;i_l1\n0;1;2\n", ["no time column", "separated by commas"]),
    "tabs": ("t\tv_l1\ti_l1\n0\t1\t2\n", ["no time column", "separated by commas"]),
    "twice": ("t,v_l1,i_l1,V_L1\n0,1,2,3\n", ["column 'v_l1' appears 2 times"]),
    "missing": ("t,v_l1,i_l2\n0,1,2\n", ["recording lacks channel i_l1 needed for 1P2W wiring"]),
    "binary junk": ("\x00\x01\x02\xff\xfe", ["not a header of column names: not text"]),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_bad_csv_files(tmp_path, case):
    content, words = CSV_CASES[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode("latin-1"))
    message = error_of(path)
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("number", "text", "words"),
    [
        (4, "0.002,abc,1", "line 4, column 'v_l1': 'abc' is not a number"),
        (7, "0.005,1,", "line 7, column 'i_l1': '' is not a number"),
        (5, "0.003,1", "line 5 has 2 fields, but the header has 3"),
        (9, "0.007,nan,1", "line 9, column 'v_l1': value is NaN"),
        (3, "0.001,1,-inf", "line 3, column 'i_l1': value is infinite"),
        (6, "inf,1,1", "line 6, column 't': value is infinite"),
        (10, "0.007,1,1", "line 10: time 0.007 s is not after the previous time 0.007 s"),
        (10, "0.006,1,1", "time must be strictly increasing"),
        (12, "0.0105,1,1", "line 12: uneven sampling"),
    ],
)
def test_bad_csv_values_name_the_line_and_column(tmp_path, number, text, words):
    path = write_lines(tmp_path / "bad.csv", with_line(csv_text(), number, text))
    assert words in error_of(path)


def test_line_numbers_count_blank_lines(tmp_path):
    lines = csv_text()
    lines = [*lines[:3], "", "", *lines[3:]]
    lines[8] = "0.005,1,nan"
    assert "line 9, column 'i_l1': value is NaN" in error_of(write_lines(tmp_path / "b.csv", lines))


def test_a_lost_sample_is_uneven_sampling_with_its_tolerance(tmp_path):
    lines = csv_text(rows=30)
    del lines[15]
    message = error_of(write_lines(tmp_path / "gap.csv", lines))
    assert "line 16: uneven sampling" in message
    assert "step to time 0.015 s is 0.002 s" in message
    assert "median step is 0.001 s" in message and "1%" in message


def test_missing_channels_are_named_with_the_wiring(tmp_path):
    path = write_lines(
        tmp_path / "r.csv", ["t,v_l1,v_l2,i_l1,i_l2,i_n", "0,1,2,3,4,5", "1,1,2,3,4,5"]
    )
    message = error_of(path, Wiring.THREE_PHASE_4W)
    assert "recording lacks channels v_l3, i_l3 needed for 3P4W wiring" in message
    message = error_of(path, Wiring.THREE_PHASE_3W)
    assert "lacks channels v_l12, v_l23, i_l3 needed for 3P3W wiring" in message


@pytest.mark.parametrize("name", ["nowhere.csv", "nowhere.cfg", "nowhere.dat", "nowhere.cff"])
def test_files_not_found(tmp_path, name):
    assert "file not found" in error_of(tmp_path / name)


def test_a_directory_and_an_unknown_extension(tmp_path):
    folder = tmp_path / "rec.csv"
    folder.mkdir()
    assert "is a directory" in error_of(folder)
    other = tmp_path / "rec.txt"
    other.write_text("t,v_l1,i_l1\n")
    assert "unknown recording format '.txt'" in error_of(other)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_files(tmp_path):
    path = write_lines(tmp_path / "locked.csv", csv_text())
    path.chmod(0)
    try:
        assert "cannot read the file (Permission denied)" in error_of(path)
    finally:
        path.chmod(0o600)


# --- COMTRADE ---------------------------------------------------------------------------


def good_comtrade(tmp_path: Path, data_format="BINARY", n=64, name="rec.cfg", **kwargs):
    t = np.arange(n) / RATE
    chans = {"VA": 325 * np.sin(2 * np.pi * 50 * t), "IA": 14 * np.cos(2 * np.pi * 50 * t)}
    return write_comtrade(
        tmp_path / name, kwargs.pop("time", RATE), chans, data_format=data_format, **kwargs
    )


def edit_cfg(cfg: Path, line: int, text: str) -> None:
    lines = cfg.read_text().splitlines()
    lines[line] = text
    cfg.write_text("\r\n".join(lines) + "\r\n")


def test_a_pair_missing_its_other_half(tmp_path):
    cfg, dat = good_comtrade(tmp_path)
    dat.unlink()
    assert "the COMTRADE data file rec.dat is missing beside it" in error_of(cfg)
    cfg2, dat2 = good_comtrade(tmp_path, name="two.cfg")
    cfg2.unlink()
    assert "the COMTRADE configuration file two.cfg is missing beside it" in error_of(dat2)


def test_empty_and_corrupt_configurations(tmp_path):
    cfg, _ = good_comtrade(tmp_path)
    cfg.write_text("")
    assert "rec.cfg: the COMTRADE configuration is empty" in error_of(cfg)
    cfg.write_text("this is not,a configuration\nat all\n")
    message = error_of(cfg)
    assert "rec.cfg: malformed COMTRADE configuration at line 2 'at all': " in message
    assert message.endswith("'at all' is not a whole number"), message
    cfg.write_text("station\n")
    assert error_of(cfg).endswith("the line has fewer fields than it must")
    cfg.write_text("station,device,1999\n,2A,0D\n")
    assert error_of(cfg).endswith("an empty field where a whole number must be")
    cfg.write_text("station,device,1999\n2,2A,0D\n")
    assert "malformed COMTRADE configuration at line 3 (missing)" in error_of(cfg)
    cfg.write_bytes(os.urandom(300))
    assert "rec.cfg" in error_of(cfg)


def test_a_corrupt_analog_channel_line(tmp_path):
    cfg, _ = good_comtrade(tmp_path)
    edit_cfg(cfg, 2, "1,VA,,,V,not-a-number,0,0,-32767,32767,1,1,P")
    message = error_of(cfg)
    assert "malformed COMTRADE configuration at line 3 '1,VA,,,V,not-a-number," in message
    assert "'not-a-number' is not a number" in message and "convert" not in message


def test_an_unsupported_data_file_type(tmp_path):
    cfg, _ = good_comtrade(tmp_path)
    edit_cfg(cfg, 9, "BINARY64")
    message = error_of(cfg)
    assert "data file type 'BINARY64' is not supported" in message
    assert "ASCII, BINARY, BINARY32 or FLOAT32" in message


@pytest.mark.parametrize("data_format", ["BINARY", "BINARY32", "FLOAT32"])
def test_truncated_binary_data(tmp_path, data_format):
    _, dat = good_comtrade(tmp_path, data_format)
    dat.write_bytes(dat.read_bytes()[:-5])
    message = error_of(dat)
    assert "rec.dat: data are truncated" in message
    assert "hold 63 of the 64 samples the configuration announces" in message


def test_truncated_and_empty_ascii_data(tmp_path):
    cfg, dat = good_comtrade(tmp_path, "ASCII")
    dat.write_bytes(b"\r\n".join(dat.read_bytes().split(b"\r\n")[:40]) + b"\r\n\x1a")
    assert (
        "rec.dat: data are truncated: 40 lines for the 64 samples the configuration announces"
        in error_of(cfg)
    )
    dat.write_bytes(b"")
    assert "rec.dat: the COMTRADE data file is empty" in error_of(cfg)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("3,312,12x,5", "line 3, field 3 (channel 1 'VA'): '12x' is not a number"),
        ("3,312,12", "line 3 has 3 fields"),
        ("3,,12,five", "line 3, field 4 (channel 2 'IA'): 'five' is not a number"),
        ("x,312,1,2", "line 3, field 1 (sample number): 'x' is not an integer"),
        ("3.5,312,1,2", "line 3, field 1 (sample number): '3.5' is not an integer"),
    ],
)
def test_malformed_ascii_data_name_the_line_and_field(tmp_path, row, words):
    cfg, dat = good_comtrade(tmp_path, "ASCII")
    lines = dat.read_text().splitlines()
    lines[2] = row
    dat.write_text("\r\n".join(lines) + "\r\n")
    assert words in error_of(cfg)


@pytest.mark.parametrize("data_format", ["ASCII", "BINARY", "BINARY32", "FLOAT32"])
def test_missing_values(tmp_path, data_format):
    t = np.arange(64) / RATE
    va = 325 * np.sin(2 * np.pi * 50 * t)
    va[17] = np.nan
    cfg, _ = write_comtrade(
        tmp_path / "m.cfg", RATE, {"VA": va, "IA": va / 20}, data_format=data_format
    )
    assert "sample 18 of channel 1 'VA' is missing or not finite (NaN)" in error_of(cfg)


def test_channels_missing_for_the_wiring_are_named(tmp_path):
    cfg, _ = good_comtrade(tmp_path)
    message = error_of(cfg, Wiring.THREE_PHASE_4W)
    assert "recording lacks channels v_l2, v_l3, i_l2, i_l3 needed for 3P4W wiring" in message
    assert "its analog channels: VA [V], IA [A]" in message


def test_two_channels_that_look_alike_are_ambiguous(tmp_path):
    t = np.arange(64) / RATE
    cfg, _ = write_comtrade(tmp_path / "a.cfg", RATE, {"VA": t, "IA": t, "I A": t})
    assert "channel 2 'IA' and channel 3 'I A' both look like i_l1" in error_of(cfg)


def test_a_named_channel_with_the_wrong_unit(tmp_path):
    t = np.arange(64) / RATE
    cfg, _ = write_comtrade(tmp_path / "u.cfg", RATE, {"v_l1": t, "i_l1": t}, units={"v_l1": "A"})
    assert "channel 1 'v_l1' has unit 'A', which does not fit v_l1" in error_of(cfg)


def test_secondary_values_without_a_usable_ratio(tmp_path):
    cfg, _ = good_comtrade(tmp_path, secondary=True, ratios={"VA": (20000.0, 100.0)})
    line = cfg.read_text().splitlines()[2]
    edit_cfg(cfg, 2, line.replace(",20000.0,100.0,S", ",0,100.0,S"))
    assert "channel 1 'VA' holds secondary values (PS 'S')" in error_of(cfg)


def test_several_sample_rates_and_a_zero_rate(tmp_path):
    cfg, _ = good_comtrade(tmp_path)
    lines = cfg.read_text().splitlines()
    cfg.write_text("\r\n".join([*lines[:5], "2", "6400,32", "3200,64", *lines[7:]]) + "\r\n")
    message = error_of(cfg)
    assert "switches between 2 sample rates (3200, 6400 Hz)" in message
    cfg.write_text("\r\n".join([*lines[:6], "0,64", *lines[7:]]) + "\r\n")
    assert "sample rate 0 Hz in the COMTRADE configuration is not positive" in error_of(cfg)


def test_fewer_than_two_samples(tmp_path):
    cfg, _ = good_comtrade(tmp_path, n=1)
    assert "recording holds 1 sample; at least 2 samples are needed" in error_of(cfg)


def test_time_stamps_that_go_back_or_jump(tmp_path):
    t = np.arange(64) / RATE
    t[20] = t[18]
    cfg, _ = good_comtrade(tmp_path, time=t, timestamps_only=True)
    assert "rec.dat: sample 21: time" in error_of(cfg) and "strictly increasing" in error_of(cfg)
    t = np.arange(64) / RATE
    t[40:] += 0.5 / RATE
    cfg, _ = good_comtrade(tmp_path, time=t, timestamps_only=True, name="jump.cfg")
    message = error_of(cfg)
    assert "jump.dat: sample 41: uneven sampling" in message
    assert "1% of it plus 1e-06 s time resolution" in message


def test_bad_single_files(tmp_path):
    [cff] = good_comtrade(tmp_path, name="rec.cff")
    content = cff.read_bytes()
    cff.write_bytes(content.replace(b"--- file type: CFG ---", b"--- file type: XYZ ---"))
    assert "no '--- file type: CFG ---' line" in error_of(cff)
    cut = content.index(b"--- file type: DAT")
    cff.write_bytes(content[:cut])
    assert "no '--- file type: DAT ... ---' section" in error_of(cff)
    cff.write_bytes(content[:-10])
    assert "rec.cff (DAT section): data are truncated" in error_of(cff)
    cff.write_bytes(os.urandom(2000))
    assert "not a COMTRADE .cff file" in error_of(cff)
