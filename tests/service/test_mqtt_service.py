"""The MQTT gateway in a real `emsbox run`: the last will when the process dies, and the
outage test: the broker stops under 1-s logging, emsbox is killed during the outage, both
come back, and every logged record arrives, once after de-duplication by seq, in order."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateways"))
from mqtt_support import Subscriber

from emsbox.testing.mosquitto import Broker
from emsbox.testing.service_run import ServedProcess

DEVICE = "site-7"


def emsbox(data_dir: Path, broker: Broker) -> ServedProcess:
    settings = {
        "mqtt.enabled": "true",
        "mqtt.host": "127.0.0.1",
        "mqtt.port": str(broker.port),
        "mqtt.tls": "false",
        "mqtt.device_id": DEVICE,
        "mqtt.state_interval_s": "1",
        "mqtt.reconnect_max_s": "2",
        "store.logging_interval_s": "1",
        "store.commit_interval_s": "1",
    }
    options = [x for k, v in settings.items() for x in ("--set", f"{k}={v}")]
    return ServedProcess(data_dir, *options)


def kill_9(process: ServedProcess) -> None:
    process.proc.send_signal(signal.SIGKILL)
    process.proc.wait(10)


def test_the_last_will_says_offline_when_emsbox_dies(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, f"emsbox/{DEVICE}/status")
    process = emsbox(tmp_path / "data", broker)
    try:
        sub.wait_for(
            f"emsbox/{DEVICE}/status", where=lambda m: m.payload == b"online", timeout_s=30
        )
        kill_9(process)
        sub.wait_for(f"emsbox/{DEVICE}/status", where=lambda m: m.payload == b"offline")
    finally:
        process.stop()
        sub.close()
        broker.stop()


def logged_buckets(log: Path) -> set[tuple[str, int]]:
    """Every (load, bucket start) of the 1-s tier of the log."""
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT l.name, r.bucket_s FROM log_1s_rows r JOIN loads l ON l.id = r.load_id"
        ).fetchall()
        return {(str(name), int(b)) for name, b in rows}
    finally:
        conn.close()


def still_in_outbox(log: Path) -> dict[int, tuple[str, int]]:
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, load, bucket_s FROM outbox").fetchall()
        return {int(seq): (str(load), int(b)) for seq, load, b in rows}
    finally:
        conn.close()


def test_an_outage_with_a_kill_loses_no_logged_record(tmp_path):
    data = tmp_path / "data"
    # A broker that keeps its subscribers' sessions across its restart, and a subscriber with
    # a persistent session: what the broker acknowledged to emsbox reaches the subscriber even
    # if the broker stops before delivering it.
    broker = Broker(tmp_path / "broker", persistent=True).start()
    topic = f"emsbox/{DEVICE}/+/record"
    sub = Subscriber(broker, topic, client_id="observer", keep_session=True)
    process = emsbox(data, broker)
    try:
        sub.wait_for(topic, 5, timeout_s=30)
        time.sleep(3)
        broker.stop()  # the outage
        sub.close()
        received = list(sub.messages)
        time.sleep(8)  # records pile up in the outbox
        kill_9(process)  # ... and emsbox dies during the outage
        killed_at = time.time()
        time.sleep(1)
        broker = Broker(tmp_path / "broker", port=broker.port, persistent=True).start()
        sub = Subscriber(broker, topic, client_id="observer", keep_session=True)
        process = emsbox(data, broker)
        # The backlog drains, then new records follow.
        time.sleep(10)
        assert process.stop() == 0
        time.sleep(0.5)
        sub.close()
        after = list(sub.messages)
        received += after
    finally:
        process.stop()
        sub.close()
        broker.stop()

    log = data / "log.sqlite3"
    first: dict[int, dict] = {}
    order = []
    for message in received:
        body = json.loads(message.payload)
        if body["seq"] not in first:
            first[body["seq"]] = body
            order.append(body["seq"])
    # In order: each record first arrives after every record numbered before it.
    assert order == sorted(order)
    left = still_in_outbox(log)
    numbers = sorted(set(first) | set(left))
    assert numbers == list(range(1, numbers[-1] + 1)), "a record is missing"
    # A record the subscriber got may still be in the outbox: the broker's acknowledgement
    # had not reached emsbox when it stopped, so it is sent again later (at least once). It is
    # the same record, under the same number.
    by_seq = {seq: (b["load"], b["ts"]) for seq, b in first.items()}
    for seq, bucket in left.items():
        assert by_seq.setdefault(seq, bucket) == bucket, seq
    # Exactly once: one record per logged interval, and every logged interval has one.
    published = list(by_seq.values())
    assert len(published) == len(set(published))
    assert set(published) == logged_buckets(log)
    # What was logged during the outage, before the kill, arrived after the restart; so did
    # what was logged after it.
    stamps_after = [json.loads(m.payload)["ts"] for m in after]
    assert sum(ts < killed_at - 3 for ts in stamps_after) >= 5
    assert sum(ts > killed_at + 3 for ts in stamps_after) >= 5
