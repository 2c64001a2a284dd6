"""COV notifications (clauses 13.1, 13.14): subscribing, telling subscribers of changes, and
retrying confirmed notifications until their SimpleACK (5.4.2, 13.7).

A change counts as reported only once its notification is sent: one that cannot go yet
(initiation disabled, a confirmed notification of the same subscription still unanswered, or
too many unanswered ones) goes at a later check. Unanswered confirmed notifications are
bounded in total and per peer, so that dead subscribers cannot hold up live ones; a
subscription whose confirmed notifications are given up MAX_GIVE_UPS times in a row ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
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

log = logging.getLogger(__name__)

MAX_PENDING_NOTIFICATIONS = 128  # confirmed COV notifications waiting for their ACK
MAX_PENDING_PER_PEER = 16  # of them to one peer (address and route)
MAX_GIVE_UPS = 3  # confirmed notifications given up in a row that end a subscription


@dataclass
class _Pending:
    """A confirmed COV notification waiting for its SimpleACK (5.4.2, 13.7)."""

    peer: Peer
    apdu: bytes
    sub: Subscription
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None


class Notifications:
    """The device's COV subscriptions and the notifications they are sent."""

    def __init__(self, send: Send, db: Database, control: Control) -> None:
        self.db = db  # replaced with the device's when the object table changes
        self.cov = CovTable()
        self.sent = 0
        self.lost = 0  # confirmed ones never acknowledged
        self.reaped = 0  # subscriptions ended because their subscriber never answered
        self._send = send
        self._control = control
        self._pending: dict[tuple[Peer, int], _Pending] = {}
        self._per_peer: Counter[Peer] = Counter()
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
            # The table is full: the error of a list with no room for another element.
            raise PropertyError(ErrorClass.RESOURCES, ErrorCode.NO_SPACE_TO_ADD_LIST_ELEMENT)

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
        pending = self._pop((peer, invoke_id))
        if pending is not None:
            pending.sub.give_ups = 0

    def close(self) -> None:
        """Cancel the retries."""
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
        self._per_peer.clear()

    def _pop(self, key: tuple[Peer, int]) -> _Pending | None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return None
        if pending.timer is not None:
            pending.timer.cancel()
        pending.sub.pending = False
        self._per_peer[pending.peer] -= 1
        if self._per_peer[pending.peer] <= 0:
            del self._per_peer[pending.peer]
        return pending

    def _check(self, sub: Subscription) -> None:
        spec = self.db.by_key.get(sub.key)
        if spec is None:
            return
        value, fault, values = self.db.cov_values(spec)
        if not sub.is_change(value, fault, spec.cov_increment):
            return
        if self._control.current(time.monotonic()) != EnableDisable.ENABLE:
            return  # 16.1: initiation disabled: nothing is sent, the change stays unreported
        peer = sub.peer
        assert isinstance(peer, Peer)
        if sub.confirmed and (
            sub.pending
            or len(self._pending) >= MAX_PENDING_NOTIFICATIONS
            or self._per_peer[peer] >= MAX_PENDING_PER_PEER
        ):
            return  # not now: the change stays unreported, a later check sends it
        sub.reported(value, fault)
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
        invoke = self._invoke_id(peer)
        apdu = frames.confirmed(invoke, ConfirmedService.CONFIRMED_COV_NOTIFICATION, body)
        pending = _Pending(peer, apdu, sub)
        self._pending[(peer, invoke)] = pending
        self._per_peer[peer] += 1
        sub.pending = True
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
            self._pop((peer, invoke))
            self.lost += 1
            sub = pending.sub
            sub.give_ups += 1
            sub.reported_value = None  # the current value goes again at the next check
            if sub.give_ups >= MAX_GIVE_UPS:
                self.cov.remove(sub)
                self.reaped += 1
                log.info(
                    "bacnet: COV subscription of %s:%d ended: its notifications went "
                    "unanswered %d times",
                    *peer.address,
                    sub.give_ups,
                )
            return
        self._send_pending(peer, invoke, pending)
