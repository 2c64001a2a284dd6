import numpy as np
import pytest

from emsbox.metering.wiring import wiring_map
from emsbox.samples import OPTIONAL_SIGNALS, REQUIRED_SIGNALS, Wiring


@pytest.mark.parametrize("wiring", list(Wiring))
def test_every_wiring_builds_from_its_required_signals(wiring):
    wm = wiring_map(wiring, set(REQUIRED_SIGNALS[wiring]))
    assert set(wm.voltages) | set(wm.currents) <= set(REQUIRED_SIGNALS[wiring]) | set(
        OPTIONAL_SIGNALS[wiring]
    )
    assert wm.phases == tuple(wm.phase_currents)


@pytest.mark.parametrize("wiring", list(Wiring))
def test_missing_signal_is_named(wiring):
    signals = set(REQUIRED_SIGNALS[wiring])
    dropped = REQUIRED_SIGNALS[wiring][-1]
    with pytest.raises(ValueError, match=dropped):
        wiring_map(wiring, signals - {dropped})


def test_three_wire_virtual_star_voltages_sum_to_zero_and_rebuild_line_voltages():
    wm = wiring_map(Wiring.THREE_PHASE_3W, {"v_l12", "v_l23", "i_l1", "i_l3"})
    ln = wm.line_to_neutral
    assert np.allclose(ln["l1"] + ln["l2"] + ln["l3"], 0.0)
    assert np.allclose(ln["l1"] - ln["l2"], wm.line_to_line["l12"])
    assert np.allclose(ln["l2"] - ln["l3"], wm.line_to_line["l23"])
    assert np.allclose(ln["l3"] - ln["l1"], wm.line_to_line["l31"])
    # Without a measured L2 current it is minus the sum of the other two.
    assert np.allclose(
        wm.phase_currents["l2"], -(wm.phase_currents["l1"] + wm.phase_currents["l3"])
    )
    assert wm.neutral is None and len(wm.aron) == 2


def test_measured_neutral_is_used_when_present():
    wm = wiring_map(Wiring.THREE_PHASE_4W, set(REQUIRED_SIGNALS[Wiring.THREE_PHASE_4W]) | {"i_n"})
    assert wm.neutral_measured and wm.neutral is None
    assert (6, 6) in wm.product_pairs()


def test_product_pairs_cover_only_what_values_need():
    wm = wiring_map(Wiring.THREE_PHASE_4W, set(REQUIRED_SIGNALS[Wiring.THREE_PHASE_4W]))
    pairs = wm.product_pairs()
    # L-N and L-L voltages (6), currents and neutral sum (6), matching V·I (3).
    assert len(pairs) == 15
    assert (0, 4) not in pairs  # v_l1 · i_l2 is never needed
