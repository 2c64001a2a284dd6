"""``emsbox analyze`` end to end: a real process, real files, its exact output and exit status."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emsbox.testing.comtrade_writer import write_comtrade

RATE = 6400.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emsbox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def three_phase(seconds=1.0, freq=50.5, rate=RATE, v=230.0, i=10.0, phi=0.5):
    t = np.arange(int(seconds * rate)) / rate
    out = {"t": t}
    for k, ph in enumerate(("l1", "l2", "l3")):
        th = 2 * np.pi * freq * t - 2 * np.pi * k / 3
        out[f"v_{ph}"] = np.sqrt(2) * v * np.cos(th)
        out[f"i_{ph}"] = np.sqrt(2) * i * np.cos(th - phi) + np.sqrt(2) * 0.1 * i * np.cos(5 * th)
    return out


def write_csv(path: Path, cols: dict[str, np.ndarray]) -> Path:
    names = list(cols)
    data = np.column_stack([cols[n] for n in names])
    np.savetxt(path, data, delimiter=",", header=",".join(names), comments="", fmt="%.10g")
    return path


def test_json_output_is_one_object_with_the_expected_values(tmp_path):
    f = write_csv(tmp_path / "rec.csv", three_phase(seconds=2.0))
    res = run("analyze", str(f), "--wiring", "3P4W", "--format", "json")
    assert res.returncode == 0, res.stderr
    values = json.loads(res.stdout)
    assert isinstance(values, dict)
    assert values["v_l1"] == pytest.approx(230.0, rel=1e-4)
    i_rms = 10.0 * np.sqrt(1.01)
    assert values["i_l2"] == pytest.approx(i_rms, rel=1e-4)
    assert values["p_sys"] == pytest.approx(3 * 230 * 10 * np.cos(0.5), rel=1e-4)
    assert values["q_sys"] == pytest.approx(3 * 230 * 10 * np.sin(0.5), rel=1e-4)
    assert values["thd_i_l3"] == pytest.approx(10.0, abs=0.02)
    assert values["freq"] == pytest.approx(50.5, abs=0.002)
    # Energy over the whole recording (2 s), in kWh.
    assert values["kwh_imp"] == pytest.approx(values["p_sys"] * 2.0 / 3.6e6, rel=1e-4)
    assert values["kwh_exp"] == 0.0
    assert values["kvarh_q1"] == pytest.approx(values["q_sys"] * 2.0 / 3.6e6, rel=1e-4)
    assert values["hours_on"] == pytest.approx(2.0 / 3600, rel=1e-9)


def test_values_that_do_not_exist_for_the_wiring_are_absent(tmp_path):
    cols = three_phase()
    f = write_csv(tmp_path / "rec.csv", cols)
    values = json.loads(run("analyze", str(f), "--wiring", "1P2W", "--format", "json").stdout)
    assert "v_l1" in values and "kwh_imp_l1" in values
    for absent in ("v_l2", "v_l3", "v_l12", "i_l2", "thd_v_l12", "kwh_imp_l2", "v_ll_sys"):
        assert absent not in values


def test_table_format_names_every_variable_with_its_unit(tmp_path):
    f = write_csv(tmp_path / "rec.csv", three_phase())
    res = run("analyze", str(f), "--wiring", "3P4W")
    assert res.returncode == 0
    assert "p_sys" in res.stdout and " W" in res.stdout and "kWh" in res.stdout


def test_comtrade_written_by_our_writer_is_analysed(tmp_path):
    cols = three_phase(seconds=1.0, freq=60.0)
    cfg = tmp_path / "rec.cfg"
    write_comtrade(
        cfg,
        cols["t"],
        {k: v for k, v in cols.items() if k != "t"},
        revision="2013",
        data_format="FLOAT32",
    )
    res = run(
        "analyze", str(cfg), "--wiring", "3P4W", "--nominal-frequency", "60", "--format", "json"
    )
    assert res.returncode == 0, res.stderr
    values = json.loads(res.stdout)
    assert values["freq"] == pytest.approx(60.0, abs=0.002)
    assert values["v_l2"] == pytest.approx(230.0, rel=1e-4)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda c: c.pop("v_l3"), "v_l3"),
        (lambda c: c["i_l1"].__setitem__(100, np.nan), "NaN"),
        (lambda c: c["t"].__setitem__(50, c["t"][49]), "increasing"),
        (lambda c: c["t"].__setitem__(slice(3000, None), c["t"][3000:] + 0.01), "uneven"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, mutate, words):
    cols = three_phase()
    mutate(cols)
    f = write_csv(tmp_path / "bad.csv", cols)
    res = run("analyze", str(f), "--wiring", "3P4W", "--format", "json")
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words.lower() in lines[0].lower()


def test_too_short_recording_exits_2(tmp_path):
    f = write_csv(tmp_path / "short.csv", three_phase(seconds=0.1))
    res = run("analyze", str(f), "--wiring", "3P4W")
    assert res.returncode == 2
    assert "too short" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith(f"emsbox analyze: {f}: recording too short"), res.stderr


def test_non_numeric_and_missing_files_exit_2(tmp_path):
    bad = tmp_path / "text.csv"
    bad.write_text("t,v_l1,i_l1\n0,1,2\n0.001,abc,2\n")
    for path in (bad, tmp_path / "missing.csv", tmp_path / "missing.cfg"):
        res = run("analyze", str(path), "--wiring", "1P2W")
        assert res.returncode == 2, path
        assert len(res.stderr.strip().splitlines()) == 1
