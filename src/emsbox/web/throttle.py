"""Throttling of failed logins, per account and per client address, in memory.

After a few failures in a row, each further attempt must wait twice as long as the one
before; after more, the account (or address) is locked for a while. Every attempt is counted
as a failure *before* its password is checked and forgiven if it succeeds, so that many
parallel requests cannot all slip through before the first failure is recorded.

The state lives in memory: a restart forgets it, which costs an attacker a restart of the
device per round and is not worth a write to flash on every failed login.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failures in a row are punished, for one kind of key (account or address)."""

    free_failures: int
    """Failures forgiven at once: typing mistakes."""
    first_delay_s: float
    """Wait after the first failure past the free ones; doubles with each further failure."""
    max_delay_s: float
    """Longest wait before the lockout."""
    lockout_failures: int
    """Failures in a row that lock the key for ``lockout_s``, and again after each further one."""
    lockout_s: float
    """Length of a lockout."""
    forget_after_s: float
    """Quiet time after the last failure after which the failures are forgotten."""

    def wait_s(self, failures: int) -> float:
        """How long to wait after ``failures`` failures in a row before the next attempt."""
        if failures >= self.lockout_failures:
            return self.lockout_s
        if failures < self.free_failures:
            return 0.0
        return min(self.first_delay_s * 2.0 ** (failures - self.free_failures), self.max_delay_s)


# Per account: 3 free tries, then waits of 1, 2, 4 ... 60 s, and the 10th failure locks the
# account for 15 minutes (again after every further failure). A password guesser gets about
# 10 + 96 tries a day per account (OWASP's authentication guidance suggests this order of
# magnitude); a user who mistypes waits seconds, not minutes.
ACCOUNT_POLICY = ThrottlePolicy(
    free_failures=3,
    first_delay_s=1.0,
    max_delay_s=60.0,
    lockout_failures=10,
    lockout_s=15 * 60.0,
    forget_after_s=24 * 3600.0,
)
# Per client address: more lenient, because several people may share one address (an office
# behind NAT, or every client when behind a reverse proxy); it stops one address from
# spraying guesses over many account names.
CLIENT_POLICY = ThrottlePolicy(
    free_failures=5,
    first_delay_s=1.0,
    max_delay_s=60.0,
    lockout_failures=30,
    lockout_s=15 * 60.0,
    forget_after_s=24 * 3600.0,
)
# Keys tracked per kind before the longest-quiet ones are dropped: bounds memory (about 100
# bytes a key) when an attacker sprays made-up names or addresses.
MAX_TRACKED_KEYS = 100_000


class Throttled(Exception):  # noqa: N818 - a refusal, not a failure of the program
    """An attempt refused without being checked; ``retry_after_s`` says when to come back."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins: try again in {math.ceil(retry_after_s)} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Record:
    failures: int
    last_failure_s: float


class _Book:
    """Failures in a row per key under one policy; keys ordered by their last failure."""

    def __init__(self, policy: ThrottlePolicy, max_keys: int) -> None:
        self.policy = policy
        self._max_keys = max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def wait_s(self, key: str, now_s: float) -> float:
        record = self._current(key, now_s)
        if record is None:
            return 0.0
        return max(0.0, record.last_failure_s + self.policy.wait_s(record.failures) - now_s)

    def count(self, key: str, now_s: float) -> _Record | None:
        """Count a failure for ``key``; return its record from before (None if none)."""
        previous = self._current(key, now_s)
        self._records.pop(key, None)
        failures = previous.failures + 1 if previous is not None else 1
        self._records[key] = _Record(failures, now_s)
        self._prune(now_s)
        return previous

    def undo(self, key: str, previous: _Record | None, counted_at_s: float) -> None:
        """Take back one counted failure (the attempt succeeded)."""
        record = self._records.get(key)
        if record is None:
            return
        expected = previous.failures + 1 if previous is not None else 1
        if record.failures == expected and record.last_failure_s == counted_at_s:
            # Nothing else was counted since: restore the record exactly as it was.
            if previous is None:
                del self._records[key]
            else:
                self._records[key] = previous
        elif record.failures <= 1:
            del self._records[key]
        else:
            self._records[key] = _Record(record.failures - 1, record.last_failure_s)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)

    def _current(self, key: str, now_s: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now_s - record.last_failure_s >= self.policy.forget_after_s:
            del self._records[key]
            return None
        return record

    def _prune(self, now_s: float) -> None:
        while self._records:
            key, oldest = next(iter(self._records.items()))
            quiet = now_s - oldest.last_failure_s >= self.policy.forget_after_s
            if not quiet and len(self._records) <= self._max_keys:
                break
            del self._records[key]


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt let through by ``LoginThrottle.begin`` and already counted as a failure."""

    account: str
    client: str
    started_s: float
    client_before: _Record | None
    """The client's record before this attempt was counted, to restore on success."""


class LoginThrottle:
    """Failed-login throttling per account and per client address. Thread-safe.

    Use: ``attempt = begin(account, client)`` (raises Throttled), check the password, then
    ``succeeded(attempt)`` or ``wait_after(attempt)`` for the wait now imposed. ``clock`` is
    monotonic seconds; tests pass a fake one.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        account_policy: ThrottlePolicy = ACCOUNT_POLICY,
        client_policy: ThrottlePolicy = CLIENT_POLICY,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._clock = clock
        self._accounts = _Book(account_policy, max_keys)
        self._clients = _Book(client_policy, max_keys)
        self._lock = threading.Lock()

    def retry_after_s(self, account: str, client: str) -> float:
        """How long until an attempt for ``account`` from ``client`` would be let through."""
        with self._lock:
            now_s = self._clock()
            return max(self._accounts.wait_s(account, now_s), self._clients.wait_s(client, now_s))

    def begin(self, account: str, client: str) -> LoginAttempt:
        """Let an attempt through, counted as a failure until it succeeds; else Throttled.

        A refused attempt is not counted: it was not checked, so it taught the caller nothing.
        """
        with self._lock:
            now_s = self._clock()
            wait = max(self._accounts.wait_s(account, now_s), self._clients.wait_s(client, now_s))
            if wait > 0.0:
                raise Throttled(wait)
            self._accounts.count(account, now_s)
            return LoginAttempt(account, client, now_s, self._clients.count(client, now_s))

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The attempt's password was right: clear the account's failures, forgive the client's.

        The client's earlier failures stay: otherwise logging in to one's own account between
        guesses at others would wipe the address's record.
        """
        with self._lock:
            self._accounts.forget(attempt.account)
            self._clients.undo(attempt.client, attempt.client_before, attempt.started_s)

    def wait_after(self, attempt: LoginAttempt) -> float:
        """The wait imposed now that ``attempt`` failed (0 if the next try may come at once)."""
        return self.retry_after_s(attempt.account, attempt.client)

    def forget_account(self, account: str) -> None:
        """Clear an account's failures (an administrator set a new password)."""
        with self._lock:
            self._accounts.forget(account)
