"""Helpers of the MQTT tests: a subscriber (a real MQTT client), readings, and an in-process
gateway publishing a bus and a log store's outbox to a real broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from emsbox.bus import Bus, Reading
from emsbox.gateways.mqtt.config import MqttConfig
from emsbox.gateways.mqtt.discovery import DeviceInfo
from emsbox.gateways.mqtt.gateway import MqttGateway
from emsbox.samples import Wiring
from emsbox.store.config import StoreConfig, Tier
from emsbox.store.log import LogStore
from emsbox.testing.mosquitto import Broker

DEVICE = "dev1"
INFO = DeviceInfo("emsbox-default", "Test site", "9.9")
LOADS = ["main", "hvac"]


@dataclass(frozen=True)
class Message:
    """One message a subscriber received."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float

    def json(self) -> Any:
        """The payload as JSON."""
        return json.loads(self.payload)


class Subscriber:
    """A real MQTT client subscribed to ``topics`` on ``broker``, keeping every message."""

    def __init__(
        self,
        broker: Broker,
        *topics: str,
        client_id: str = "test-sub",
        login: tuple[str, str] | None = None,
        keep_session: bool = False,
        **tls: Any,
    ):
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not keep_session
        )
        if login is not None:
            self.client.username_pw_set(*login)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_message = self._message
        self.client.on_connect = lambda c, *_: [c.subscribe(t, 1) for t in topics]
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        assert self._ready.wait(10), "the subscriber could not subscribe"
        time.sleep(0.1)  # every subscription acknowledged before the test publishes

    def _message(self, _c: object, _u: object, m: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(m.topic, bytes(m.payload), m.retain, m.qos, time.time()))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Message]:
        """The messages received on ``topic`` (MQTT wildcards allowed)."""
        with self._cond:
            return [m for m in self.messages if paho.topic_matches_sub(topic, m.topic)]

    def wait_for(
        self,
        topic: str,
        count: int = 1,
        timeout_s: float = 15.0,
        where: Callable[[Message], bool] | None = None,
    ) -> list[Message]:
        """Wait until ``count`` messages on ``topic`` (matching ``where``) arrived."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = [
                    m
                    for m in self.messages
                    if paho.topic_matches_sub(topic, m.topic) and (where is None or where(m))
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0, (
                    f"{len(found)} of {count} messages on {topic} after {timeout_s} s; "
                    f"topics seen: {sorted({m.topic for m in self.messages})[:20]}"
                )
                self._cond.wait(remaining)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish as another client would."""
        self.client.publish(topic, payload, 1, retain).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect (every message received is in ``messages`` when this returns)."""
        self.client.disconnect()
        self.client.loop_stop()


def reading(load: str, t: float, p: float = 1000.0, kwh: float = 1.0) -> Reading:
    """A single-phase reading of ``load`` ending at ``t``."""
    values = {"v_l1": 230.1, "i_l1": p / 230.1, "p_l1": p, "p_sys": p, "pf_sys": 0.95, "freq": 50.0}
    return Reading(
        load=load,
        wiring=Wiring.SINGLE_PHASE,
        timestamp_s=t,
        duration_s=1.0,
        windows=5,
        values=values,
        minimum=values,
        maximum=values,
        counters={"kwh_imp": kwh, "kwh_exp": 0.0, "hours_on": 1.5},
    )


@dataclass
class Commands:
    """A commander that records what it is asked and answers like the service."""

    calls: list[tuple[str, str, int | None, str]] = field(default_factory=list)

    def __call__(self, load: str, action: str, tariff: int | None, by: str) -> Future[object]:
        self.calls.append((load, action, tariff, by))
        future: Future[object] = Future()
        future.set_result({"partial_running": action != "stop", "tariff": tariff or 1})
        return future


class Harness:
    """A bus, a log store with 1-s logging and an MQTT gateway publishing both."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.bus = Bus()
        tiers = [Tier(resolution_s=1), Tier(resolution_s=60)]
        config = StoreConfig(tiers=tiers, logging_interval_s=1, commit_interval_s=0.2)
        self.store = LogStore(directory / "log.sqlite3", config)
        self.store.start()
        self.commands = Commands()
        self.output: list[tuple[bool, str]] = []
        self.gateway = MqttGateway(
            self.bus,
            self.store,
            directory,
            self.commands,
            clock=clock,
            switch_output=self._switch,
        )
        self.t = float(int(time.time()) - 100)

    def _switch(self, on: bool, by: str) -> dict[str, object]:
        """The digital output, as the service switches it: refused while it is not remote."""
        if not self.output_remote:
            raise ValueError("the digital output's function is off, not remote")
        self.output.append((on, by))
        return {"output_on": on}

    output_remote = True

    def apply(self, config: MqttConfig, loads: list[str] | None = None) -> None:
        """Run the gateway with ``config``."""
        self.gateway.apply(config, loads or LOADS, INFO)

    def measure(self, seconds: int = 1, loads: list[str] | None = None) -> None:
        """``seconds`` readings of each load, to the bus and the store (then committed)."""
        for _ in range(seconds):
            self.t += 1.0
            for load in loads or LOADS:
                r = reading(load, self.t, kwh=self.t / 1e6)
                self.bus.publish(r)
                self.store.submit(r)
        self.store.flush()

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        """Until the gateway is connected."""
        deadline = time.monotonic() + timeout_s
        while not self.gateway.status().connected:
            assert time.monotonic() < deadline, self.gateway.status()
            time.sleep(0.05)

    def wait_status(self, what: Callable[[Any], bool], timeout_s: float = 15.0) -> Any:
        """Until the gateway's status satisfies ``what``; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.gateway.status()
            if what(status):
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the gateway and the store."""
        self.gateway.stop()
        self.store.close()


def plain(broker: Broker, **settings: Any) -> MqttConfig:
    """An enabled configuration for ``broker`` without TLS."""
    base: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": broker.port,
        "tls": False,
        "device_id": DEVICE,
        "state_interval_s": 1.0,
        "reconnect_max_s": 1.0,
    }
    return MqttConfig.model_validate(base | settings)
