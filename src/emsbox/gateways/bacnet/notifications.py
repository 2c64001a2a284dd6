"""COV notifications (clauses 13.1, 13.14): subscribing, telling subscribers of changes, and
retrying confirmed notifications until their SimpleACK (5.4.2, 13.7)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from emsbox.gateways.bacnet import frames, services
from emsbox.gateways.bacnet.control import Control
from emsbox.gateways.bacnet.cov import CovTable, Subscription
from emsbox.gateways.bacnet.database import (
    APDU_RETRIES,
    APDU_TIMEOUT_MS,
    Database,
    PropertyError,
)
from emsbox.gateways.bacnet.encoding import DecodeError
from emsbox.gateways.bacnet.identifiers import (
    ConfirmedService,
    EnableDisable,
    ErrorClass,
    ErrorCode,
    ObjectType,
    UnconfirmedService,
)
from emsbox.gateways.bacnet.peer import Peer, Send

MAX_PENDING_NOTIFICATIONS = 128  # confirmed COV notifications waiting for their ACK


@dataclass
class _Pending:
    """A confirmed COV notification waiting for its SimpleACK (5.4.2, 13.7)."""

    peer: Peer
    apdu: bytes
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None


class Notifications:
    """The device's COV subscriptions and the notifications they are sent."""

    def __init__(self, send: Send, db: Database, control: Control) -> None:
        self.db = db  # replaced with the device's when the object table changes
        self.cov = CovTable()
        self.sent = 0
        self.lost = 0  # confirmed ones never acknowledged, or over the limit of pending ones
        self._send = send
        self._control = control
        self._pending: dict[tuple[Peer, int], _Pending] = {}
        self._next_invoke = 0

    def subscribe(self, peer: Peer, request: services.SubscribeCov) -> None:
        """Add, renew or cancel a subscription as a SubscribeCOV asks; raises PropertyError
        when it is refused."""
        db = self.db
        if not db.exists(request.key):
            raise PropertyError(ErrorClass.OBJECT, ErrorCode.UNKNOWN_OBJECT)
        if request.confirmed is None:
            self.cov.cancel(peer, request.process_id, request.key)
            return
        if request.key[0] == ObjectType.DEVICE:
            # 13.1: COV reporting is defined for value objects, not the device object.
            raise PropertyError(ErrorClass.OBJECT, ErrorCode.OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED)
        sub = self.cov.subscribe(
            peer,
            request.process_id,
            request.key,
            confirmed=request.confirmed,
            lifetime_s=request.lifetime_s,
            now=time.monotonic(),
        )
        if sub is None:
            raise PropertyError(ErrorClass.RESOURCES, ErrorCode.COV_SUBSCRIPTION_FAILED)

    def initial(self, peer: Peer, body: bytes) -> None:
        """Tell a new or renewed subscription (the SubscribeCOV's ``body``) the current value
        at once (13.14.2)."""
        try:
            parsed = services.parse_subscribe_cov(self.db, body)
        except DecodeError:
            return
        for sub in self.cov:
            if sub.peer == peer and sub.process_id == parsed.process_id and sub.key == parsed.key:
                sub.reported_value = None
                self._check(sub)

    def check_all(self) -> None:
        """End expired subscriptions; notify every subscriber whose object changed enough."""
        self.cov.expire(time.monotonic())
        for sub in self.cov:
            self._check(sub)

    def check_load(self, load: str) -> None:
        """Notify the subscribers of one load's objects."""
        for sub in self.cov:
            spec = self.db.by_key.get(sub.key)
            if spec is not None and spec.load == load:
                self._check(sub)

    def acknowledged(self, peer: Peer, invoke_id: int) -> None:
        """A peer's answer to a confirmed notification: it is not sent again."""
        pending = self._pending.pop((peer, invoke_id), None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()

    def close(self) -> None:
        """Cancel the retries."""
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()

    def _check(self, sub: Subscription) -> None:
        spec = self.db.by_key.get(sub.key)
        if spec is None:
            return
        value, fault, values = self.db.cov_values(spec)
        if not sub.is_change(value, fault, spec.cov_increment):
            return
        if self._control.current(time.monotonic()) != EnableDisable.ENABLE:
            return  # 16.1: initiation disabled: nothing is sent, the change stays unreported
        sub.reported(value, fault)
        peer = sub.peer
        assert isinstance(peer, Peer)
        body = services.cov_notification(
            sub.process_id,
            self.db.device_key,
            sub.key,
            sub.time_remaining_s(time.monotonic()),
            values,
        )
        self.sent += 1
        if not sub.confirmed:
            self._send(
                peer, frames.unconfirmed(UnconfirmedService.UNCONFIRMED_COV_NOTIFICATION, body)
            )
            return
        if len(self._pending) >= MAX_PENDING_NOTIFICATIONS:
            self.lost += 1
            return
        invoke = self._invoke_id(peer)
        apdu = frames.confirmed(invoke, ConfirmedService.CONFIRMED_COV_NOTIFICATION, body)
        pending = _Pending(peer, apdu)
        self._pending[(peer, invoke)] = pending
        self._send_pending(peer, invoke, pending)

    def _invoke_id(self, peer: Peer) -> int:
        for _ in range(256):
            invoke = self._next_invoke
            self._next_invoke = (self._next_invoke + 1) % 256
            if (peer, invoke) not in self._pending:
                return invoke
        return self._next_invoke  # not reached: pending is bounded below 256

    def _send_pending(self, peer: Peer, invoke: int, pending: _Pending) -> None:
        pending.attempts += 1
        self._send(peer, pending.apdu, expecting_reply=True)
        pending.timer = asyncio.get_running_loop().call_later(
            APDU_TIMEOUT_MS / 1000, self._timeout, peer, invoke, pending
        )

    def _timeout(self, peer: Peer, invoke: int, pending: _Pending) -> None:
        if self._pending.get((peer, invoke)) is not pending:
            return
        if pending.attempts > APDU_RETRIES:  # 5.4.2: retried, then given up
            del self._pending[(peer, invoke)]
            self.lost += 1
            return
        self._send_pending(peer, invoke, pending)
