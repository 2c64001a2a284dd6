"""The MQTT gateway against a real Mosquitto broker: live state, logged records through the
outbox, outages, the last will, commands and reconnection."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time

import pytest
from mqtt_support import DEVICE, Harness, Subscriber, plain

from emsbox.gateways.errors import SetupError
from emsbox.gateways.mqtt.alarm_queue import ALARM_QUEUE_FILE, AlarmQueue
from emsbox.testing.mosquitto import Broker

BASE = f"emsbox/{DEVICE}"


def test_live_state_goes_to_one_json_topic_per_load_retained(broker, harness):
    sub = Subscriber(broker, f"{BASE}/#")
    harness.apply(plain(broker, per_variable_topics=True))
    harness.wait_connected()
    harness.measure(3)
    state = sub.wait_for(f"{BASE}/main/state")[-1]
    body = state.json()
    assert state.qos == 0
    assert body["device"] == DEVICE and body["load"] == "main"
    assert body["p_sys"] == 1000.0 and body["v_l1"] == 230.1 and body["kwh_imp"] > 0
    assert body["tariff"] == 1 and body["partial_running"] is True
    assert body["time"].endswith("Z") and abs(body["ts"] - harness.t) <= 3
    assert sub.wait_for(f"{BASE}/hvac/state")
    assert float(sub.wait_for(f"{BASE}/main/p_sys")[-1].payload) == 1000.0
    assert sub.wait_for(f"{BASE}/main/partial_running")[-1].payload == b"true"
    assert sub.wait_for(f"{BASE}/status")[-1].payload == b"online"
    sub.close()
    # Retained: a subscriber that comes later gets the last state and the status at once.
    late = Subscriber(broker, f"{BASE}/main/state", f"{BASE}/status", client_id="late")
    assert late.wait_for(f"{BASE}/main/state")[0].retain
    assert late.wait_for(f"{BASE}/status")[0].payload == b"online"
    late.close()


def test_state_is_published_at_the_configured_rate(broker, harness):
    sub = Subscriber(broker, f"{BASE}/main/state")
    harness.apply(plain(broker, state_interval_s=5.0, retain_state=False, qos=1))
    harness.wait_connected()
    harness.measure(1)
    sub.wait_for(f"{BASE}/main/state")
    first = len(sub.on(f"{BASE}/main/state"))
    harness.measure(9)  # 9 more seconds of readings
    sub.wait_for(f"{BASE}/main/state", first + 1)
    states = sub.on(f"{BASE}/main/state")
    assert len(states) - first in (1, 2)
    assert states[-1].qos == 1
    stamps = [m.json()["ts"] for m in states]
    assert all(b - a >= 4.75 for a, b in itertools.pairwise(stamps))
    sub.close()


def test_logged_records_arrive_in_order_and_leave_the_outbox_once_acknowledged(broker, harness):
    sub = Subscriber(broker, f"{BASE}/+/record")
    harness.apply(plain(broker))
    harness.measure(20)
    records = sub.wait_for(f"{BASE}/+/record", 38)  # the last second of each load is still open
    bodies = [m.json() for m in records]
    seqs = [b["seq"] for b in bodies]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(m.qos == 1 and not m.retain for m in records)
    for load in ("main", "hvac"):
        mine = [b for b in bodies if b["load"] == load]
        assert [b["ts"] for b in mine] == sorted({b["ts"] for b in mine})
        assert all(m.topic == f"{BASE}/{load}/record" for m in records if m.json()["load"] == load)
    first = bodies[0]
    assert first["device"] == DEVICE and first["interval_s"] == 1
    assert first["p_sys"] == first["p_sys_min"] == first["p_sys_max"] == 1000.0
    assert "kwh_imp" in first and "kwh_imp_min" not in first
    # Acknowledged records are deleted at the store's next pass.
    sub.wait_for(f"{BASE}/+/record", 40)  # flush closed the last second too
    deadline = time.monotonic() + 10
    while harness.store.outbox_stats().records:
        assert time.monotonic() < deadline, harness.store.outbox_stats()
        harness.store.flush()
        time.sleep(0.05)
    sub.close()


def test_an_outage_keeps_the_records_and_delivers_them_in_order_when_the_broker_returns(
    broker, harness
):
    sub_dir = broker.directory
    harness.apply(plain(broker))
    harness.wait_connected()
    harness.measure(5)
    broker.stop()
    harness.wait_status(lambda s: not s.connected)
    harness.measure(30)  # 30 s of readings during the outage
    assert harness.store.outbox_stats().records >= 55
    status = harness.gateway.status()
    assert not status.connected and "retrying" in status.detail
    again = Broker(sub_dir, port=broker.port).start()
    try:
        sub = Subscriber(again, f"{BASE}/+/record")
        harness.wait_connected(30)
        harness.measure(2)
        received = sub.wait_for(f"{BASE}/+/record", 60, timeout_s=30)
        seqs = sorted({m.json()["seq"] for m in received})
        # What was sent before the outage and not acknowledged may come again: never a gap.
        assert seqs == list(range(seqs[0], seqs[-1] + 1))
        in_order = [m.json()["seq"] for m in received]
        assert in_order == sorted(in_order)
        assert seqs[-1] >= 70
        sub.close()
    finally:
        again.stop()


def test_a_full_outbox_drops_the_oldest_records_and_says_so(tmp_path, broker, harness):
    harness.apply(plain(broker, outbox_max_records=100))
    harness.wait_connected()
    broker.stop()
    harness.wait_status(lambda s: not s.connected)
    harness.measure(70)  # 140 records for a box of 100
    stats = harness.store.outbox_stats()
    assert stats.records == 100 and stats.dropped >= 40
    assert harness.gateway.status().records_dropped == stats.dropped
    assert "outbox full" in (harness.store.stats().last_error or "")


def test_records_are_not_put_in_the_outbox_when_publishing_them_is_off(broker, harness):
    harness.apply(plain(broker, publish_records=False))
    harness.wait_connected()
    harness.measure(5)
    assert harness.store.outbox_stats().records == 0


def test_a_clean_stop_says_offline_on_the_status_topic(broker, harness):
    sub = Subscriber(broker, f"{BASE}/status")
    harness.apply(plain(broker))
    sub.wait_for(f"{BASE}/status", where=lambda m: m.payload == b"online")
    harness.gateway.stop()
    sub.wait_for(f"{BASE}/status", where=lambda m: m.payload == b"offline")
    sub.close()
    late = Subscriber(broker, f"{BASE}/status", client_id="late")
    assert late.wait_for(f"{BASE}/status")[0].payload == b"offline"
    late.close()


def test_changing_the_settings_reconnects_with_the_new_ones(broker, harness):
    sub = Subscriber(broker, "#")
    harness.apply(plain(broker))
    harness.wait_connected()
    harness.apply(plain(broker, topic_prefix="site/a", device_id="box-7"))
    harness.wait_connected()
    harness.measure(2)
    assert sub.wait_for("site/a/box-7/main/state")
    assert sub.wait_for("site/a/box-7/status", where=lambda m: m.payload == b"online")
    harness.apply(plain(broker, enabled=False))
    assert harness.gateway.status().detail == "off"
    sub.close()


def test_mqtt5_is_spoken_when_asked(broker, harness):
    harness.apply(plain(broker, protocol="5", client_id="v5-client"))
    harness.wait_connected()
    assert "as v5-client (p5" in broker.log()


def test_an_unreachable_broker_is_reported_and_retried(tmp_path, harness):
    nobody = Broker(tmp_path / "never-started")  # a free port where nothing listens
    harness.apply(plain(nobody))
    status = harness.wait_status(lambda s: s.last_error is not None)
    assert not status.connected
    assert "connection refused" in status.last_error and "retrying" in status.detail


def test_a_missing_certificate_file_is_refused_before_anything_changes(tmp_path, harness):
    from emsbox.gateways.mqtt.config import MqttConfig

    config = MqttConfig(enabled=True, host="127.0.0.1", ca_file="nowhere/ca.pem")
    try:
        harness.apply(config)
    except SetupError as exc:
        assert exc.key == "mqtt.ca_file" and "nowhere/ca.pem" in str(exc)
    else:
        raise AssertionError("a missing CA file was accepted")
    assert harness.gateway.status().detail == "off"
    garbage = tmp_path / "emsbox" / "garbage.pem"
    garbage.write_text("not a certificate")
    try:
        harness.apply(config.model_copy(update={"ca_file": "garbage.pem"}))
    except SetupError as exc:
        assert exc.key == "mqtt.ca_file" and "CA file" in str(exc)
    else:
        raise AssertionError("an unusable CA file was accepted")


def test_commands_are_ignored_unless_enabled(broker, harness):
    sub = Subscriber(broker, f"{BASE}/command/result")
    harness.apply(plain(broker))
    harness.wait_connected()
    sub.publish(f"{BASE}/command", json.dumps({"action": "reset_partial", "load": "main"}))
    harness.measure(2)
    assert harness.commands.calls == [] and sub.on(f"{BASE}/command/result") == []
    sub.close()


def test_commands_are_validated_carried_out_and_answered(broker, harness):
    sub = Subscriber(broker, f"{BASE}/command/result")
    harness.apply(plain(broker, commands_enabled=True))
    harness.wait_connected()
    command = f"{BASE}/command"
    sub.publish(command, json.dumps({"action": "reset_partial", "load": "main", "id": "a1"}))
    sub.publish(command, json.dumps({"action": "set_tariff", "load": "hvac", "tariff": 2}))
    sub.publish(command, json.dumps({"action": "set_tariff", "load": "hvac", "tariff": 3}))
    sub.publish(command, b"\xff not json")
    sub.publish(command, json.dumps({"action": "explode", "load": "main", "id": "a4"}))
    answers = [m.json() for m in sub.wait_for(f"{BASE}/command/result", 5)]
    assert answers[0] == {
        "id": "a1",
        "ok": True,
        "action": "reset_partial",
        "load": "main",
        "result": {"partial_running": True, "tariff": 1},
    }
    assert answers[1]["ok"] and answers[1]["load"] == "hvac"
    assert not answers[2]["ok"] and "tariff must be 1 or 2" in answers[2]["error"]
    assert not answers[3]["ok"] and "not a JSON object" in answers[3]["error"]
    assert answers[4]["id"] == "a4" and "action must be one of" in answers[4]["error"]
    assert harness.commands.calls == [
        ("main", "reset", None, "mqtt"),
        ("hvac", "tariff", 2, "mqtt"),
    ]
    sub.close()


def test_a_retained_command_is_never_carried_out(broker, harness):
    sub = Subscriber(broker, f"{BASE}/command/result")
    sub.publish(
        f"{BASE}/command", json.dumps({"action": "reset_partial", "load": "main"}), retain=True
    )
    harness.apply(plain(broker, commands_enabled=True))
    answer = sub.wait_for(f"{BASE}/command/result")[0].json()
    assert not answer["ok"] and "retained" in answer["error"]
    assert harness.commands.calls == []
    sub.close()


def test_the_digital_output_is_switched_when_it_is_remote(broker, harness):
    sub = Subscriber(broker, f"{BASE}/command/result")
    harness.apply(plain(broker, commands_enabled=True))
    harness.wait_connected()
    command = f"{BASE}/command"
    sub.publish(command, json.dumps({"action": "set_output", "on": True, "id": "o1"}))
    sub.publish(command, json.dumps({"action": "set_output", "on": "yes"}))
    sub.publish(command, json.dumps({"action": "set_output", "on": False, "load": "main"}))
    answers = [m.json() for m in sub.wait_for(f"{BASE}/command/result", 3)]
    assert answers[0] == {
        "id": "o1",
        "ok": True,
        "action": "set_output",
        "result": {"output_on": True},
    }
    assert "on must be true or false" in answers[1]["error"]
    assert "takes only on" in answers[2]["error"]
    harness.output_remote = False
    sub.publish(command, json.dumps({"action": "set_output", "on": False}))
    refused = sub.wait_for(f"{BASE}/command/result", 4)[-1].json()
    assert not refused["ok"] and "not remote" in refused["error"]
    assert harness.output == [(True, "mqtt")]
    sub.close()


def test_alarm_events_are_published_and_kept_through_an_outage(broker, harness):
    sub = Subscriber(broker, f"{BASE}/alarm")
    harness.apply(plain(broker))
    harness.wait_connected()
    event = {"name": "Too much", "event": "raised", "load": "main", "value": 1500.0}
    harness.gateway.notify_alarm(event)
    got = sub.wait_for(f"{BASE}/alarm")[0]
    assert got.json() == {"device": DEVICE, **event} and got.qos == 1
    sub.close()
    broker.stop()
    harness.wait_status(lambda s: not s.connected)
    harness.gateway.notify_alarm(event | {"event": "cleared", "value": None})
    again = Broker(broker.directory, port=broker.port).start()
    try:
        sub = Subscriber(again, f"{BASE}/alarm")
        cleared = sub.wait_for(f"{BASE}/alarm", timeout_s=30)[0].json()
        assert cleared["event"] == "cleared" and cleared["value"] is None
        sub.close()
    finally:
        again.stop()


def test_alarm_events_wait_on_disk_through_a_restart_and_leave_once_acknowledged(broker, harness):
    harness.apply(plain(broker))
    harness.wait_connected()
    broker.stop()
    harness.wait_status(lambda s: not s.connected)
    events = [{"name": f"A{k}", "event": "raised", "load": "main", "value": k} for k in range(3)]
    for event in events:
        harness.gateway.notify_alarm(event)
    harness.close()  # emsbox stops while the broker is away
    again = Broker(broker.directory, port=broker.port).start()
    restarted = Harness(harness.directory)
    try:
        sub = Subscriber(again, f"{BASE}/alarm")
        restarted.apply(plain(again))
        got = [m.json() for m in sub.wait_for(f"{BASE}/alarm", 3, timeout_s=30)]
        assert got == [{"device": DEVICE, **e} for e in events]
        queue = AlarmQueue(harness.directory / ALARM_QUEUE_FILE, 10)
        deadline = time.monotonic() + 10
        while queue.count():
            assert time.monotonic() < deadline, "acknowledged events still waiting"
            time.sleep(0.05)
        queue.close()
        sub.close()
    finally:
        restarted.close()
        again.stop()


def test_a_damaged_alarm_queue_is_set_aside_and_alarms_still_go_out(tmp_path, broker):
    directory = tmp_path / "damaged"
    directory.mkdir()
    (directory / ALARM_QUEUE_FILE).write_bytes(b"not a database" * 100)
    damaged = Harness(directory)
    try:
        sub = Subscriber(broker, f"{BASE}/alarm")
        damaged.apply(plain(broker))
        damaged.wait_connected()
        damaged.gateway.notify_alarm({"name": "A", "event": "raised"})
        assert sub.wait_for(f"{BASE}/alarm")[0].json()["name"] == "A"
        (aside,) = directory.glob(f"{ALARM_QUEUE_FILE}.damaged-*")
        assert aside.read_bytes().startswith(b"not a database")
        sub.close()
    finally:
        damaged.close()


def test_the_alarm_queue_keeps_the_newest_events(tmp_path):
    queue = AlarmQueue(tmp_path / "q.sqlite3", max_events=3)
    for k in range(5):
        queue.add({"name": f"A{k}", "value": float(k)})
    assert queue.dropped == 2 and queue.count() == 3
    pending = queue.pending(0, 10)
    assert [e["name"] for _, e in pending] == ["A2", "A3", "A4"]
    assert [e["name"] for _, e in queue.pending(pending[0][0], 1)] == ["A3"]
    queue.remove([pending[0][0], pending[2][0]])
    assert [e["name"] for _, e in queue.pending(0, 10)] == ["A3"]
    with pytest.raises(ValueError):
        queue.add({"value": float("nan")})
    queue.close()


def test_an_alarm_queue_that_cannot_be_written_keeps_alarms_in_memory(tmp_path, broker, caplog):
    directory = tmp_path / "unwritable"
    directory.mkdir()
    (directory / ALARM_QUEUE_FILE).mkdir()  # no database can be opened there
    h = Harness(directory)
    try:
        sub = Subscriber(broker, f"{BASE}/alarm")
        h.apply(plain(broker))
        h.wait_connected()
        for k in range(3):
            h.gateway.notify_alarm({"name": f"A{k}", "event": "raised"})
        got = [m.json()["name"] for m in sub.wait_for(f"{BASE}/alarm", 3)]
        assert got == ["A0", "A1", "A2"]
        assert "alarm events wait in memory until emsbox restarts" in caplog.text
        assert (directory / ALARM_QUEUE_FILE).is_dir()  # nothing set aside
        assert h.gateway.status().connected
        sub.close()
    finally:
        h.close()


def test_the_alarm_queue_falls_back_to_memory_when_its_file_fails(tmp_path, caplog):
    queue = AlarmQueue(tmp_path / "q.sqlite3", max_events=3)
    queue.add({"name": "on disk"})
    ((first_id, _),) = queue.pending(0, 10)
    queue.close()
    # A database another process holds locked is not damaged: it is left alone.
    holder = sqlite3.connect(tmp_path / "q.sqlite3")
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        queue.add({"name": "in memory"})
        pending = queue.pending(first_id, 10)
        assert [e["name"] for _, e in pending] == ["in memory"] and pending[0][0] > first_id
        queue.remove([pending[0][0]])
        assert queue.count() == 0
        for k in range(5):
            queue.add({"name": f"M{k}"})
        assert [e["name"] for _, e in queue.pending(0, 10)] == ["M2", "M3", "M4"]
        assert queue.dropped == 2
    finally:
        holder.rollback()
        holder.close()
    assert "cannot be used" in caplog.text and not list(tmp_path.glob("*.damaged*"))
    again = AlarmQueue(tmp_path / "q.sqlite3", max_events=3)
    assert [e["name"] for _, e in again.pending(0, 10)] == ["on disk"]
    again.close()
