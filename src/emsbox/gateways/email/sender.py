"""Sends the alarm e-mails over aiosmtplib (the only module that imports it).

Every message goes through an on-disk spool first (``<data dir>/mail-spool/``, one file per
message, readable by emsbox only) and leaves it only once the server has accepted it, so a
server that is away or a restart loses nothing. Messages that cannot be sent are tried again,
waits doubling from 10 s to 10 min, for ``retry_max_age_h``; then they are dropped and the
failure logged. A message the server refuses for good (a 5xx answer to its recipients or its
content) is dropped at once with the reason: trying again would change nothing. A refused
sign-in or sender is a matter of settings, not of the message, and is retried like an outage.

While e-mail is off nothing connects; messages already spooled stay until it is on again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email
import email.policy
import json
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib

from emsbox.gateways.email.config import EmailConfig, SmtpSecurity
from emsbox.gateways.email.message import Letterhead, alarm_message, trial_message
from emsbox.gateways.errors import SetupError
from emsbox.private_files import write_private

log = logging.getLogger(__name__)

SPOOL_DIR = "mail-spool"  # in the data directory
RETRY_MIN_S = 10.0
RETRY_MAX_S = 600.0
# A message waiting longer than this makes the notifier unhealthy, even between attempts.
STUCK_S = 900.0
# Longest wait for the sending thread to stop (it abandons any connection at once).
STOP_WAIT_S = 10.0
# The first permanent-failure code of SMTP (RFC 5321 §4.2.1: 5yz is a permanent negative reply).
PERMANENT = 500


class EmailError(Exception):
    """A message could not be sent; the message is one line for the user."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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
    failing: bool  # the last attempt failed

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
        if self.failing and self.last_error:
            parts.append(f"last error: {self.last_error}")
        return ", ".join(parts)


def resolve_path(data_dir: Path, name: str) -> Path | None:
    """A file setting as a path: relative ones are in the data directory; empty is None."""
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else data_dir / path


def tls_context(ca_file: Path | None, check_hostname: bool) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2 or later, the server's certificate checked.

    EmailError naming the file if the CA file cannot be used.
    """
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise EmailError(f"CA file {ca_file}: {reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    return context


def reason(exc: BaseException) -> str:
    """One line saying why a connection or a message failed."""
    # The library wraps what the system said (a refused connection, a TLS failure): the
    # cause is what the user needs.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS failed: the server's certificate is not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or seen}"
        if isinstance(seen, socket.gaierror):
            return f"unknown host ({seen.strerror})"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused (is the server running, and is this its port?)"
        seen = seen.__cause__
    return _smtp_reason(exc)


def _answer(code: int, text: str) -> str:
    return f"{code} {' '.join(text.split())}".strip()


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"authentication refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(_smtp_reason(each) for each in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return f"recipient {exc.recipient} refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return f"message refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"the server answered {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPException):
        return " ".join(exc.message.split())
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _permanent(exc: BaseException) -> bool:
    """Whether the server refused this message for good (5xx to all its recipients or to
    its content); a refused sign-in or sender is a setting to fix, tried again."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(each.code >= PERMANENT for each in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return exc.code >= PERMANENT
    return False


@dataclass
class _Spooled:
    """A message in the spool: its file, when it was made and whom it still has to reach."""

    path: Path
    created_s: float
    message: EmailMessage
    to: list[str] | None  # None: the configured recipients


class EmailNotifier:
    """Sends alarm e-mails as configured, from its own thread; ``apply`` switches settings."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._data_dir = data_dir
        self._spool = data_dir / SPOOL_DIR
        self._clock = clock
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._lock = threading.Lock()
        self._config = EmailConfig()
        self._head = Letterhead("", (), "emsbox", ZoneInfo("UTC"))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._failures = 0
        self._retry_at = 0.0  # on the loop's clock: no attempt before
        self._sent = 0
        self._refused = 0
        self._given_up = 0
        self._last_success_s: float | None = None
        self._last_error: str | None = None
        self._failing = False
        self._sequence = 0  # of the spool files named in this run
        # Spool files that could be neither sent nor set aside (a read-only spool): skipped, so
        # that they are not read, or worse sent, again and again.
        self._stuck: set[str] = set()

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
        head = Letterhead(
            config.sender, tuple(config.recipients), site_name, zone, config.subject_prefix
        )
        with self._lock:
            changed = config != self._config
            self._config, self._head = config, head
        if not config.enabled:
            self._stop_thread()
            return
        self._start_thread()
        # New settings may be what the server wanted: waiting messages are tried at once.
        self._poke(retry_now=changed)

    def stop(self) -> None:
        """Stop sending; what was not sent stays in the spool for the next start."""
        self._stop_thread()

    def notify(self, notice: Mapping[str, object]) -> None:
        """Send an alarm event (an ``AlarmNotice`` as a dict) if e-mail is on and the event
        is one of those configured; never waits for the disk or the server."""
        with self._lock:
            config, head, loop = self._config, self._head, self._loop
        if not config.enabled or str(notice.get("event")) not in config.events:
            return
        message = alarm_message(notice, head)
        created_s = self._clock()
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._accept, message, created_s)
                return
        self._spool_message(message, created_s)

    def send_test(self) -> list[str]:
        """Send a test message now with the running settings; the recipients on success.

        EmailDisabledError if e-mail is off, EmailError with the reason if it fails.
        """
        with self._lock:
            config, head, loop = self._config, self._head, self._loop
        if not config.enabled or loop is None:
            raise EmailDisabledError("e-mail notifications are off")
        message = trial_message(head, self._clock())
        future = asyncio.run_coroutine_threadsafe(self._send_once(config, message), loop)
        try:
            # Connection, TLS, sign-in and the message: each step waits at most timeout_s.
            future.result(timeout=config.timeout_s * 6)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise EmailError("no answer (timed out)") from None
        except concurrent.futures.CancelledError:
            raise EmailError("stopped before the message was sent") from None
        self._poke(retry_now=True)  # the server works: waiting messages need not wait
        return list(config.recipients)

    def status(self) -> EmailStatus:
        """What was sent, what waits and the last error."""
        waiting = self._spool_names()
        oldest = _created_s(waiting[0]) if waiting else None
        with self._lock:
            return EmailStatus(
                self._config.enabled,
                len(waiting),
                None if oldest is None else max(0.0, self._clock() - oldest),
                self._sent,
                self._refused,
                self._given_up,
                self._last_success_s,
                self._last_error,
                self._failing,
            )

    # -- the thread ------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="email", daemon=True)
        self._thread.start()
        ready.wait()

    def _stop_thread(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        # Queued after any message handed over by notify(): those reach the spool first.
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_WAIT_S)
        if thread.is_alive():
            log.error("the e-mail thread did not stop within %.0f s; left behind", STOP_WAIT_S)
        self._thread = None

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

    def _accept(self, message: EmailMessage, created_s: float) -> None:
        """On the loop: a new message goes to the spool, then on its way."""
        self._spool_message(message, created_s)
        if self._wake is not None:
            self._wake.set()

    async def _pump(self) -> None:
        """Send what the spool holds whenever it is time; sleep until then or a new message."""
        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        while not _cancelling():
            wake.clear()
            with self._lock:
                config = self._config
            waiting = self._spool_names()
            delay: float | None = None
            if waiting and config.enabled:
                delay = self._retry_at - loop.time()
                if delay <= 0:
                    await self._deliver(waiting, config)
                    continue
            # asyncio.timeout, not wait_for: Python 3.11's wait_for may swallow a cancellation
            # that comes as the wake-up does, and stopping would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    # -- sending -----------------------------------------------------------------------------

    async def _connect(self, config: EmailConfig) -> aiosmtplib.SMTP:
        """A connection, secured and signed in as ``config`` says; EmailError otherwise."""
        context = None
        if config.security is not SmtpSecurity.NONE:
            context = tls_context(
                resolve_path(self._data_dir, config.ca_file), config.check_hostname
            )
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password.get_secret_value() if config.username else None,
            timeout=config.timeout_s,
            use_tls=config.security is SmtpSecurity.TLS,
            # None would upgrade only if offered; asked for, STARTTLS is required, and with
            # "none" it is never attempted (a relay's self-signed certificate must not fail).
            start_tls=config.security is SmtpSecurity.STARTTLS,
            tls_context=context,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise EmailError(reason(exc), _permanent(exc)) from exc
        return client

    async def _send_once(self, config: EmailConfig, message: EmailMessage) -> None:
        """Connect, send one message to the configured recipients and leave; EmailError
        (with every refused recipient) if anything fails."""
        client = await self._connect(config)
        try:
            refused = await self._transmit(client, config, message, list(config.recipients))
        finally:
            await _leave(client)
        if refused:
            # The others got it; the test is there to find exactly this.
            raise EmailError(
                "; ".join(f"recipient {who} refused: {why}" for who, why in refused.items())
            )

    async def _transmit(
        self,
        client: aiosmtplib.SMTP,
        config: EmailConfig,
        message: EmailMessage,
        to: Sequence[str],
    ) -> dict[str, str]:
        """Send ``message`` to ``to``; the recipients refused while others were accepted, with
        the reasons. EmailError if nobody got it."""
        # The running settings name the sender: a message spooled before a fix goes with it.
        del message["From"]
        message["From"] = config.sender
        try:
            refused, _ = await client.send_message(message, sender=config.sender, recipients=to)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise EmailError(reason(exc), _permanent(exc)) from exc
        return {
            address: _answer(answer.code, answer.message) for address, answer in refused.items()
        }

    async def _deliver(self, names: list[Path], config: EmailConfig) -> None:
        """One connection for every waiting message, in order; a failure ends the round."""
        try:
            client = await self._connect(config)
        except EmailError as exc:
            self._failed(exc, names)
            return
        try:
            for path in names:
                if _cancelling():
                    return
                spooled = self._read(path)
                if spooled is None:
                    continue
                to = spooled.to if spooled.to is not None else list(config.recipients)
                if spooled.to is None:
                    del spooled.message["To"]
                    spooled.message["To"] = ", ".join(to)
                try:
                    refused = await self._transmit(client, config, spooled.message, to)
                except EmailError as exc:
                    if not exc.permanent:
                        self._failed(exc, names[names.index(path) :])
                        return
                    self._drop(spooled, f"refused by the server: {exc}")
                    with self._lock:
                        self._refused += 1
                    continue
                self._delivered(spooled, refused)
        finally:
            await _leave(client)

    def _delivered(self, spooled: _Spooled, refused: dict[str, str]) -> None:
        """The server took the message (maybe not for every recipient)."""
        subject = spooled.message["Subject"]
        later = [a for a, why in refused.items() if not why.startswith("5")]
        for address, why in refused.items():
            log.error("e-mail %r: recipient %s refused: %s", subject, address, why)
        try:
            if later:
                # Refused for now only: kept for those, not sent again to the others.
                self._write(spooled.path, spooled.message, spooled.created_s, later)
            else:
                spooled.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("mail spool: cannot update %s: %s", spooled.path, exc)
            self._stuck.add(spooled.path.name)
        with self._lock:
            self._sent += 1
            self._last_success_s = self._clock()
            self._failing = False
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
        now = self._clock()
        for path in names:
            created = _created_s(path)
            if created is not None and now - created > max_age_s:
                spooled = self._read(path)
                if spooled is not None:
                    self._drop(spooled, f"given up after {max_age_s / 3600.0:g} h: {exc}")
                    with self._lock:
                        self._given_up += 1

    def _drop(self, spooled: _Spooled, why: str) -> None:
        log.error("e-mail %r dropped, %s", spooled.message["Subject"], why)
        try:
            spooled.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("mail spool: cannot remove %s: %s", spooled.path, exc)
            self._stuck.add(spooled.path.name)

    # -- the spool -----------------------------------------------------------------------------

    def _spool_message(self, message: EmailMessage, created_s: float) -> None:
        # Named by time, then by a counter for messages of the same millisecond: sorted
        # names are the order the events happened in.
        self._sequence += 1
        name = f"{round(created_s * 1000):013d}-{self._sequence:06d}-{secrets.token_hex(2)}.json"
        try:
            self._spool.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._write(self._spool / name, message, created_s, None)
        except OSError as exc:
            log.error("e-mail %r lost: the spool cannot be written: %s", message["Subject"], exc)

    def _write(
        self, path: Path, message: EmailMessage, created_s: float, to: list[str] | None
    ) -> None:
        record: dict[str, object] = {
            "created_s": created_s,
            "message": message.as_string(policy=email.policy.SMTP),
        }
        if to is not None:
            record["to"] = to
        write_private(path, json.dumps(record).encode())

    def _spool_names(self) -> list[Path]:
        """The spooled messages, oldest first (names start with the time they were made)."""
        try:
            with os.scandir(self._spool) as entries:
                names = [e.name for e in entries if e.name.endswith(".json") and e.is_file()]
        except OSError:
            return []
        names = [n for n in names if not n.startswith(".") and n not in self._stuck]
        return [self._spool / name for name in sorted(names)]

    def _read(self, path: Path) -> _Spooled | None:
        """A spooled message; None if it is gone or unreadable (then set aside as .bad)."""
        try:
            record = json.loads(path.read_bytes())
            message = email.message_from_string(record["message"], policy=email.policy.SMTP)
            assert isinstance(message, EmailMessage)
            to = record.get("to")
            return _Spooled(
                path,
                float(record["created_s"]),
                message,
                [str(a) for a in to] if isinstance(to, list) else None,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
            log.error("mail spool: %s is unreadable, set aside: %s", path.name, exc)
            try:
                path.rename(path.with_suffix(".bad"))
            except OSError:
                self._stuck.add(path.name)
            return None


def _created_s(path: Path) -> float | None:
    stamp = path.name.partition("-")[0]
    return int(stamp) / 1000.0 if stamp.isdigit() else None


def _cancelling() -> bool:
    """Whether the running task is being cancelled (the notifier stops), even if a library
    caught the CancelledError on its way."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _leave(client: aiosmtplib.SMTP) -> None:
    """Say goodbye; a server that went away meanwhile needs none."""
    if _cancelling():
        client.close()  # stopping: no waiting for a slow server's answer
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
