"""COV subscriptions (ASHRAE 135 clause 13.1, 13.14): who watches which object, until when,
and whether a new value is a change to report. Pure: times are passed in."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from emsbox.gateways.bacnet.database import PresentValue

MAX_SUBSCRIPTIONS = 512  # beyond this SubscribeCOV is refused (resources), not grown forever

Key = tuple[int, int]


@dataclass
class Subscription:
    """One client's subscription to one object's changes."""

    peer: Hashable  # where notifications go (address and route), as the server knows it
    process_id: int
    key: Key
    confirmed: bool
    lifetime_s: int  # 0: indefinite
    expires_at: float | None  # monotonic seconds; None: indefinite
    reported_value: PresentValue | None = None
    reported_fault: bool | None = None
    pending: bool = False  # a confirmed notification waits for its acknowledgement
    give_ups: int = 0  # confirmed notifications given up in a row

    def time_remaining_s(self, now: float) -> int:
        """The notification's timeRemaining: whole seconds left, 0 for indefinite (13.7.1.4)."""
        if self.expires_at is None:
            return 0
        return max(0, int(self.expires_at - now + 0.5))

    def is_change(self, value: PresentValue, fault: bool, increment: float | None) -> bool:
        """Whether (value, fault) is to be reported (13.1.2-13.1.4): the status flags changed,
        or the present value moved by the COV increment or more since the last report (an
        analog object), or changed at all (a binary or multi-state one)."""
        if self.reported_value is None or fault != self.reported_fault:
            return True
        if increment is None or isinstance(value, bool):
            return value != self.reported_value
        return abs(float(value) - float(self.reported_value)) >= increment

    def reported(self, value: PresentValue, fault: bool) -> None:
        """Remember what the last notification said."""
        self.reported_value, self.reported_fault = value, fault


class CovTable:
    """The device's subscriptions, keyed by (peer, process id, object) (13.14.1.1)."""

    def __init__(self, limit: int = MAX_SUBSCRIPTIONS) -> None:
        self.limit = limit
        self._items: dict[tuple[Hashable, int, Key], Subscription] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._items.values()))

    def subscribe(
        self,
        peer: Hashable,
        process_id: int,
        key: Key,
        *,
        confirmed: bool,
        lifetime_s: int,
        now: float,
    ) -> Subscription | None:
        """Add or renew a subscription (a renewal replaces the old one, 13.14.2); None when
        the table is full."""
        ident = (peer, process_id, key)
        if ident not in self._items and len(self._items) >= self.limit:
            return None
        expires = None if lifetime_s == 0 else now + lifetime_s
        sub = Subscription(peer, process_id, key, confirmed, lifetime_s, expires)
        self._items[ident] = sub
        return sub

    def cancel(self, peer: Hashable, process_id: int, key: Key) -> None:
        """Remove a subscription; cancelling one that is not there is no error (13.14.2)."""
        self._items.pop((peer, process_id, key), None)

    def remove(self, sub: Subscription) -> None:
        """Remove ``sub`` itself (not a renewal that replaced it)."""
        ident = (sub.peer, sub.process_id, sub.key)
        if self._items.get(ident) is sub:
            del self._items[ident]

    def expire(self, now: float) -> None:
        """Drop the subscriptions whose lifetime is over."""
        for ident, sub in list(self._items.items()):
            if sub.expires_at is not None and sub.expires_at <= now:
                del self._items[ident]

    def drop_object(self, keep: set[Key]) -> None:
        """Drop subscriptions to objects that are gone (a new object table)."""
        for ident, sub in list(self._items.items()):
            if sub.key not in keep:
                del self._items[ident]

    def clear(self) -> None:
        """Drop every subscription."""
        self._items.clear()
