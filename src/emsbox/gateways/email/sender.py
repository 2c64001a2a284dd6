"""The alarm e-mail notifier: its own thread and event loop, retries and status.

Every message goes through the spool first (``spool``) and leaves it only once the server has
accepted it (``smtp``), so a server that is away or a restart loses nothing. Messages that
cannot be sent are tried again, waits doubling from 10 s to 10 min, for ``retry_max_age_h``;
then they are dropped and the failure logged. A message the server refuses for good (a 5xx
answer to its recipients or its content) is dropped at once with the reason, and the notifier
is unhealthy until a later message is accepted: trying again would change nothing, but nobody
got it. A refused sign-in or sender, and a 5.7.x refusal (policy or authorisation, "relaying
denied"), are a matter of settings, not of the message, and are retried like an outage. The
events of a flapping alarm are folded into fewer messages (``coalesce``).

While e-mail is off nothing connects; messages already spooled stay until it is on again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from emsbox.gateways.email.coalesce import COALESCE_S, Coalescer
from emsbox.gateways.email.config import EmailConfig, SmtpSecurity
from emsbox.gateways.email.message import Folded, Letterhead, alarm_message, trial_message
from emsbox.gateways.email.smtp import (
    EmailError,
    SmtpConnection,
    cancelling,
    reason,
    refused_for_good,
    resolve_path,
    send_once,
    tls_context,
)
from emsbox.gateways.email.spool import SPOOL_DIR, Spool, Spooled, creation_time
from emsbox.gateways.errors import SetupError

__all__ = [
    "SPOOL_DIR",
    "EmailDisabledError",
    "EmailError",
    "EmailNotifier",
    "EmailStatus",
]

log = logging.getLogger(__name__)

RETRY_MIN_S = 10.0
RETRY_MAX_S = 600.0
# A message waiting longer than this makes the notifier unhealthy, even between attempts.
STUCK_S = 900.0
# Longest wait for the sending thread to stop (it abandons any connection at once).
STOP_WAIT_S = 10.0
# The test message gives up after twice the time-out of one step, and at most after this.
TEST_LIMIT_S = 60.0


class EmailDisabledError(EmailError):
    """E-mail notifications are off."""


@dataclass(frozen=True)
class EmailStatus:
    """What the notifier has done and what waits, for health and diagnostics."""

    enabled: bool
    waiting: int  # messages in the spool
    oldest_waiting_s: float | None  # age of the oldest of them
    sent: int
    refused: int  # dropped at once after a permanent refusal
    given_up: int  # dropped after retry_max_age_h
    last_success_s: float | None
    last_error: str | None
    failing: bool  # the last attempt failed, or the server refused the last message for good
    dropped: int = 0  # the oldest, dropped while the spool was full
    folded: int = 0  # events of a flapping alarm folded into a later message

    @property
    def healthy(self) -> bool:
        """The last attempt worked and nothing has been waiting long."""
        stuck = self.oldest_waiting_s is not None and self.oldest_waiting_s > STUCK_S
        return not self.failing and not stuck

    @property
    def detail(self) -> str:
        """One line for the health report."""
        parts = [f"{self.sent} sent", f"{self.waiting} waiting"]
        if self.refused:
            parts.append(f"{self.refused} refused")
        if self.given_up:
            parts.append(f"{self.given_up} given up")
        if self.dropped:
            parts.append(f"{self.dropped} dropped (spool full)")
        if self.folded:
            parts.append(f"{self.folded} events folded (alarm changing often)")
        if self.failing and self.last_error:
            parts.append(f"last error: {self.last_error}")
        return ", ".join(parts)


class EmailNotifier:
    """Sends alarm e-mails as configured, from its own thread; ``apply`` switches settings."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        ticks: Callable[[], float] = time.monotonic,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        self._data_dir = data_dir
        self._spool = Spool(data_dir / SPOOL_DIR)
        self._clock = clock
        self._ticks = ticks  # elapsed time, for how long a message has been tried
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._lock = threading.Lock()
        self._config = EmailConfig()
        self._head = Letterhead("", (), "emsbox", ZoneInfo("UTC"))
        self._thread: threading.Thread | None = None
        self._stopping = False  # the thread was told to stop but had not when last seen
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._failures = 0
        self._retry_at = 0.0  # on the loop's clock: no attempt before
        self._trying_since: dict[str, float] = {}  # file name: its first failure, in ticks
        self._sent = 0
        self._refused = 0
        self._given_up = 0
        self._last_success_s: float | None = None
        self._last_error: str | None = None
        self._failing = False
        # The alarms mailed a short while ago (on the loop only).
        self._coalescer = Coalescer(self._spool_notice, coalesce_s)

    # -- control -------------------------------------------------------------------------------

    def check(self, config: EmailConfig) -> None:
        """SetupError if ``config`` is enabled and its CA file cannot be used."""
        if not config.enabled or config.security is SmtpSecurity.NONE:
            return
        path = resolve_path(self._data_dir, config.ca_file)
        if path is not None and not path.is_file():
            raise SetupError("email.ca_file", f"no file {path}")
        try:
            tls_context(path, config.check_hostname)
        except EmailError as exc:
            raise SetupError("email.ca_file", str(exc)) from None

    def apply(self, config: EmailConfig, site_name: str, zone: ZoneInfo) -> None:
        """Send with ``config`` from now on; SetupError, keeping what ran, if it cannot."""
        self.check(config)
        if config.enabled:
            self._reap()
        head = Letterhead(
            config.sender, tuple(config.recipients), site_name, zone, config.subject_prefix
        )
        with self._lock:
            changed = config != self._config
            self._config, self._head = config, head
        if not config.enabled:
            self._stop_thread()
            if self._thread is None:
                self._spool.load()  # what waits, for status()
            return
        self._start_thread()
        # New settings may be what the server wanted: waiting messages are tried at once.
        self._poke(retry_now=changed)

    def stop(self) -> None:
        """Stop sending; what was not sent stays in the spool for the next start."""
        self._stop_thread()

    def notify(self, notice: Mapping[str, object]) -> None:
        """Send an alarm event (an ``AlarmNotice`` as a dict) if e-mail is on and the event
        is one of those configured; never waits for the disk or the server, never raises."""
        with self._lock:
            config, head, loop = self._config, self._head, self._loop
        if not config.enabled or str(notice.get("event")) not in config.events:
            return
        created_s = self._clock()
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._coalescer.accept, dict(notice), head, created_s)
                return
        self._spool_notice(dict(notice), head, created_s, None)

    def send_test(self) -> list[str]:
        """Send a test message now with the running settings; the recipients on success.

        Gives up after twice ``timeout_s``, at most after TEST_LIMIT_S. EmailDisabledError if
        e-mail is off, EmailError with the reason if it fails (whatever the failure).
        """
        with self._lock:
            config, head, loop = self._config, self._head, self._loop
        if not config.enabled or loop is None:
            raise EmailDisabledError("e-mail notifications are off")
        try:
            message = trial_message(head, self._clock())
        except ValueError as exc:
            raise EmailError(f"the message cannot be made: {exc}") from None
        limit_s = min(2.0 * config.timeout_s, TEST_LIMIT_S)
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._test_once(config, message, limit_s), loop
            )
        except RuntimeError:  # the loop closed meanwhile
            raise EmailError("stopped before the message was sent") from None
        try:
            # The coroutine times itself out; this only guards against a loop that stopped.
            future.result(timeout=limit_s + STOP_WAIT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise EmailError(f"no answer within {limit_s:g} s (timed out)") from None
        except concurrent.futures.CancelledError:
            raise EmailError("stopped before the message was sent") from None
        except EmailError:
            raise
        except Exception as exc:  # said in one line, never a crash of the caller
            raise EmailError(reason(exc)) from None
        with self._lock:
            # The server took a message for every recipient: whatever failed before works.
            self._last_success_s = self._clock()
            self._failing = False
        self._poke(retry_now=True)  # the server works: waiting messages need not wait
        return list(config.recipients)

    def status(self) -> EmailStatus:
        """What was sent, what waits and the last error (from memory: cheap)."""
        with self._lock:
            spool = self._spool.counts()
            oldest = spool.oldest_created_s
            return EmailStatus(
                self._config.enabled,
                spool.waiting,
                None if oldest is None else max(0.0, self._clock() - oldest),
                self._sent,
                self._refused,
                self._given_up,
                self._last_success_s,
                self._last_error,
                self._failing,
                spool.dropped,
                self._coalescer.folded,
            )

    # -- the thread ------------------------------------------------------------------------------

    def _reap(self) -> None:
        """Wait for a thread told to stop before; SetupError if it still runs, as two threads
        must never send from the same spool."""
        thread = self._thread
        if thread is None or not self._stopping:
            return
        thread.join(STOP_WAIT_S)
        if thread.is_alive():
            log.error("the previous e-mail thread has still not stopped: e-mail not started")
            raise SetupError(
                "email.enabled", "the previous e-mail thread has not stopped yet; try again later"
            )
        self._thread, self._stopping = None, False

    def _start_thread(self) -> None:
        if self._thread is not None:
            return
        self._spool.load()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="email", daemon=True)
        self._thread.start()
        ready.wait()

    def _stop_thread(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            # Queued after any message handed over by notify(): those reach the spool first.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_WAIT_S)
        if thread.is_alive():
            # Kept: no new thread is started until this one has gone (see _reap).
            log.error("the e-mail thread did not stop within %.0f s", STOP_WAIT_S)
            self._stopping = True
            return
        self._thread, self._stopping = None, False

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._wake = asyncio.Event()
        pump = loop.create_task(self._pump())
        with self._lock:
            self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._loop = None
            # Events held back for a flapping alarm go to the spool: nothing is lost.
            self._coalescer.flush()
            pump.cancel()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _poke(self, retry_now: bool) -> None:
        """Wake the sender; with ``retry_now`` the back-off is forgotten."""
        with self._lock:
            loop = self._loop
        if loop is None:
            return

        def wake() -> None:
            if retry_now:
                self._failures, self._retry_at = 0, 0.0
            if self._wake is not None:
                self._wake.set()

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake)

    def _spool_notice(
        self,
        notice: Mapping[str, object],
        head: Letterhead,
        created_s: float,
        folded: Folded | None,
    ) -> None:
        """The message of an alarm event into the spool, and the sender woken."""
        try:
            message = alarm_message(notice, head, folded)
        except ValueError as exc:  # a header the e-mail library refuses
            log.error("e-mail of alarm %r cannot be made: %s", notice.get("name"), exc)
            return
        with self._lock:
            max_waiting = self._config.max_waiting
        self._spool.add(message, created_s, max_waiting)
        if self._wake is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _pump(self) -> None:
        """Send what the spool holds whenever it is time; sleep until then or a new message.
        Outlives any failure: whatever goes wrong is a failed attempt, tried again."""
        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        while not cancelling():
            wake.clear()
            delay: float | None = None
            waiting: list[Path] = []
            try:
                with self._lock:
                    config = self._config
                waiting = self._spool.waiting()
                if not config.enabled:
                    self._trying_since.clear()  # time switched off is no time spent trying
                elif waiting:
                    delay = self._retry_at - loop.time()
                    if delay <= 0:
                        await self._deliver(waiting, config)
                        continue
            except Exception as exc:  # the pump must not die
                log.debug("e-mail: unexpected failure", exc_info=True)
                self._failed(EmailError(reason(exc)), waiting)
                delay = max(0.0, self._retry_at - loop.time())
            # asyncio.timeout, not wait_for: Python 3.11's wait_for may swallow a cancellation
            # that comes as the wake-up does, and stopping would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    # -- sending -----------------------------------------------------------------------------

    def _ca_file(self, config: EmailConfig) -> Path | None:
        """The CA file ``config`` names, relative ones in the data directory."""
        return resolve_path(self._data_dir, config.ca_file)

    async def _test_once(self, config: EmailConfig, message: EmailMessage, limit_s: float) -> None:
        """``send_once`` within ``limit_s`` overall."""
        try:
            async with asyncio.timeout(limit_s):
                await send_once(config, self._ca_file(config), message)
        except TimeoutError:
            raise EmailError(f"no answer within {limit_s:g} s (timed out)") from None

    async def _deliver(self, names: list[Path], config: EmailConfig) -> None:
        """One connection for every waiting message, in order; a failure ends the round."""
        try:
            connection = await SmtpConnection.open(config, self._ca_file(config))
        except EmailError as exc:
            self._failed(exc, names)
            return
        try:
            for path in names:
                if cancelling():
                    return
                spooled = self._spool.read(path)
                if spooled is None:
                    continue
                to = spooled.to if spooled.to is not None else list(config.recipients)
                if spooled.to is None:
                    del spooled.message["To"]
                    spooled.message["To"] = ", ".join(to)
                try:
                    refused = await connection.transmit(spooled.message, to)
                except EmailError as exc:
                    if not exc.permanent:
                        self._failed(exc, names[names.index(path) :])
                        return
                    self._refused_for_good(spooled, exc)
                    continue
                self._delivered(spooled, refused)
        finally:
            await connection.leave()

    def _refused_for_good(self, spooled: Spooled, exc: EmailError) -> None:
        """Dropped (trying again would change nothing), but nobody got it: unhealthy until a
        later message is accepted."""
        why = f"refused by the server: {exc}"
        self._drop(spooled, why)
        with self._lock:
            self._refused += 1
            self._failing, self._last_error = True, why

    def _delivered(self, spooled: Spooled, refused: dict[str, str]) -> None:
        """The server took the message (maybe not for every recipient)."""
        subject = spooled.message["Subject"]
        later = [a for a, why in refused.items() if not refused_for_good(why)]
        for address, why in refused.items():
            log.error("e-mail %r: recipient %s refused: %s", subject, address, why)
        self._spool.settle(spooled, later)
        with self._lock:
            self._sent += 1
            self._last_success_s = self._clock()
            self._failing = False
        self._spool.delivered()
        self._failures = 0
        log.info("e-mail sent: %s", subject)

    def _failed(self, exc: EmailError, names: list[Path]) -> None:
        """An attempt failed: wait longer next time; messages too old are given up."""
        loop = asyncio.get_running_loop()
        self._failures += 1
        wait_s = min(self._retry_max_s, self._retry_min_s * 2 ** min(self._failures - 1, 30))
        self._retry_at = loop.time() + wait_s
        with self._lock:
            first = not self._failing or self._last_error != str(exc)
            self._failing, self._last_error = True, str(exc)
            max_age_s = self._config.retry_max_age_h * 3600.0
        # Said once per new reason, not at every retry.
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, "e-mail not sent, tried again in %.0f s: %s", wait_s, exc)
        now, ticks = self._clock(), self._ticks()
        # A message is given up when it is old by the wall clock and has also been tried for
        # that long in this run: a clock set by NTP (by days, at the boot of a device without
        # a battery-backed clock) must not make fresh messages look old, nor a restart after
        # a long stop drop what was waiting without a single try.
        tried = {p.name: self._trying_since.get(p.name, ticks) for p in names}
        if names:  # none when the spool could not even be listed: nothing to forget then
            self._trying_since = tried
        for path in names:
            created = creation_time(path)
            old = created is not None and now - created > max_age_s
            if old and ticks - tried[path.name] > max_age_s:
                spooled = self._spool.read(path)
                if spooled is not None:
                    self._drop(spooled, f"given up after {max_age_s / 3600.0:g} h: {exc}")
                    with self._lock:
                        self._given_up += 1

    def _drop(self, spooled: Spooled, why: str) -> None:
        log.error("e-mail %r dropped, %s", spooled.message["Subject"], why)
        self._spool.remove(spooled)
